"""What a worker composes from a view (photo, rule, points) equals what the API composes batch by
batch, within one grey level on every pixel, and the share it reports is the API's; on the device
with torch as with numpy."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from clickme.scoring.remote import ScoreRequest
from clickme.scoring.reveal import (
    PreparedImageCache,
    RevealRule,
    RevealView,
    ViewComposer,
    compose,
    compose_region,
    grow_mask,
    render_mask,
    revealed_fraction,
)
from clickme.scoring.torch_views import compose_views
from tests.scoring.test_reveal import HEIGHT, SOFT, WIDTH, random_points

HARD = RevealRule(radius=0.08, softness=0.0, background="grey", blur_sigma=0.0)
NOISE = RevealRule(radius=0.03, softness=1.0, background="noise", blur_sigma=0.0)
BATCHES = 8


def stroke(seed: int) -> np.ndarray:
    """A wandering stroke of points (native pixels), some near and past the edges."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 25, size=(BATCHES * 6, 2)).cumsum(axis=0)
    return np.add(steps, (WIDTH / 2, HEIGHT / 2)).astype(np.float32)


def composed_by_the_api(composer: ViewComposer, view: RevealView) -> np.ndarray:
    """As the API does with in-process scoring: the mask grown and the image recomposed only
    in the region each batch's bubbles touch."""
    prepared = composer.prepared(view)
    mask = np.zeros((224, 224), np.float32)
    image = compose(prepared, mask)
    for batch in np.array_split(view.points, BATCHES):
        region = grow_mask(mask, batch, prepared, view.rule)
        compose_region(prepared, mask, image, region)
    np.testing.assert_array_equal(mask, render_mask(view.points, prepared, view.rule))
    return image


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 600 x 400 photo of noise (every pixel differs from its background)."""
    rng = np.random.default_rng(11)
    pixels = rng.integers(0, 256, size=(HEIGHT, WIDTH, 3), dtype=np.uint8)
    path = tmp_path_factory.mktemp("views") / "photo.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def composer(photo_path: Path) -> ViewComposer:
    return ViewComposer(photo_path.parent, PreparedImageCache(8))


@pytest.mark.parametrize("rule", [SOFT, HARD, NOISE], ids=["soft-blur", "hard-grey", "noise"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_worker_composes_from_the_wire_what_the_api_composes(
    composer: ViewComposer, photo_path: Path, rule: RevealRule, seed: int
) -> None:
    view = RevealView(photo_path.name, rule, stroke(seed))
    fields = ScoreRequest(b"r" * 16, b"reply", 0, view).fields()
    wire = {key.encode(): value if isinstance(value, bytes) else str(value).encode()
            for key, value in fields.items()}  # fmt: skip
    assert sum(len(value) for value in wire.values()) < 2_000  # not the 147 KiB image
    received = ScoreRequest.parse(wire).image
    assert isinstance(received, RevealView) and received.rule == rule
    by_worker, share = composer.draw(received)
    by_api = composed_by_the_api(composer, view).astype(int)
    assert np.abs(by_worker.astype(int) - by_api).max() <= 1
    prepared = composer.prepared(view)
    assert share == revealed_fraction(render_mask(view.points, prepared, rule))


def test_a_view_outside_the_images_folder_is_not_a_request(photo_path: Path) -> None:
    view = RevealView("../secret.png", SOFT, random_points(0, 3))
    fields = ScoreRequest(b"r" * 16, b"reply", 0, view).fields()
    wire = {key.encode(): value if isinstance(value, bytes) else str(value).encode()
            for key, value in fields.items()}  # fmt: skip
    with pytest.raises(ValueError, match="outside the images folder"):
        ScoreRequest.parse(wire)


def torch_matches_numpy(composer: ViewComposer, photo_path: Path, device: str) -> None:
    views = [
        RevealView(photo_path.name, rule, stroke(seed))
        for seed, rule in enumerate([SOFT, HARD, NOISE, SOFT])
    ]
    views.append(RevealView(photo_path.name, SOFT, np.zeros((0, 2), np.float32)))  # no point yet
    batch, shares = compose_views([composer.prepared(v) for v in views], views, device)
    for view, on_device, share in zip(views, batch, shares, strict=True):
        expected, expected_share = composer.draw(view)
        assert np.abs(on_device.astype(int) - expected.astype(int)).max() <= 1
        assert share == pytest.approx(expected_share, abs=1e-6)


def test_a_batch_of_views_composed_with_torch_matches_numpy(
    composer: ViewComposer, photo_path: Path
) -> None:
    torch_matches_numpy(composer, photo_path, "cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA views: no CUDA device here")
def test_a_batch_of_views_composed_on_cuda_matches_numpy(
    composer: ViewComposer, photo_path: Path
) -> None:
    torch_matches_numpy(composer, photo_path, "cuda")
