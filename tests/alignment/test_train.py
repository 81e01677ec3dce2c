"""Fine-tuning with the harmonizer: the loss falls, checkpoints resume to the same weights."""

from pathlib import Path

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset

from clickme.alignment.train import (
    CHECKPOINT_NAME,
    HarmonizeConfig,
    ResumeError,
    StepLoss,
    harmonize,
    harmonized_spec,
)
from clickme.scoring.registry import Preprocessing
from tests.alignment.tiny import MapNet, TinyNet, tiny_spec

SIZE = 32  # the loss and the saliency take any size; small images keep the tests fast


class Items(Dataset):
    """(image, map, label, has_map) items like ClickMeDataset's: a blob map on noise images,
    the last item without a map."""

    def __init__(self, n: int) -> None:
        generator = torch.Generator().manual_seed(n)
        self.images = torch.rand(n, 3, SIZE, SIZE, generator=generator)
        rows, cols = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
        blob = torch.exp(-((rows - 10.0) ** 2 + (cols - 20.0) ** 2) / 50.0)
        self.maps = blob.expand(n, 1, SIZE, SIZE)
        self.labels = torch.arange(n) % 3

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
        has_map = index < len(self) - 1
        return self.images[index], self.maps[index], int(self.labels[index]), has_map


def tiny_model() -> TinyNet:
    torch.manual_seed(0)
    return TinyNet()


def train(
    out: Path, items: Items, model: nn.Module | None = None, **changes: object
) -> tuple[Path, list[StepLoss]]:
    steps: list[StepLoss] = []
    config = HarmonizeConfig(**{"batch_size": 2, "learning_rate": 1e-2, **changes})
    model = model if model is not None else tiny_model()
    weights = harmonize(model, Preprocessing(), items, out, config, on_step=steps.append)
    return weights, steps


def weights_of(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)


def assert_same_weights(first: Path, second: Path) -> None:
    one, other = weights_of(first), weights_of(second)
    assert one.keys() == other.keys()
    for name, value in one.items():
        torch.testing.assert_close(value, other[name], rtol=0, atol=0)


def test_the_harmonization_loss_falls(tmp_path: Path) -> None:
    # The saliency of a MapNet is its weights: the loss can shape it freely.
    model = MapNet(torch.rand(SIZE, SIZE, generator=torch.Generator().manual_seed(0)))
    _, steps = train(tmp_path, Items(4), model, batch_size=4, epochs=20)
    assert len(steps) == 20 and [step.step for step in steps] == list(range(1, 21))
    assert steps[-1].harmonization < 0.7 * steps[0].harmonization
    assert all(step.total > step.cross_entropy for step in steps)


def test_batch_norm_statistics_stay_frozen(tmp_path: Path) -> None:
    weights, _ = train(tmp_path, Items(4), epochs=2)
    before, after = tiny_model().state_dict(), weights_of(weights)
    torch.testing.assert_close(after["norm.running_mean"], before["norm.running_mean"])
    torch.testing.assert_close(after["norm.running_var"], before["norm.running_var"])
    assert not torch.equal(after["norm.weight"], before["norm.weight"])  # still trained


def test_a_frozen_classifier_keeps_its_weights_while_the_rest_trains(tmp_path: Path) -> None:
    weights, _ = train(tmp_path, Items(4), epochs=2, freeze_classifier=True)
    before, after = tiny_model().state_dict(), weights_of(weights)
    for name in ("head.weight", "head.bias"):
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=0)
    assert not torch.equal(after["conv.weight"], before["conv.weight"])
    trained, _ = train(tmp_path / "all", Items(4), epochs=2)
    assert not torch.equal(weights_of(trained)["head.weight"], before["head.weight"])


def test_resuming_ends_in_the_weights_of_a_run_straight_through(tmp_path: Path) -> None:
    items = Items(5)  # 3 batches an epoch, the last one short
    straight, steps = train(tmp_path / "straight", items, epochs=2)
    assert len(steps) == 6
    train(tmp_path / "resumed", items, epochs=1)
    config = HarmonizeConfig(batch_size=2, learning_rate=1e-2, epochs=2)
    resumed = harmonize(tiny_model(), Preprocessing(), items, tmp_path / "resumed", config,
                        resume=True)  # fmt: skip
    assert_same_weights(straight, resumed)


def test_an_interrupted_run_resumes_from_its_last_checkpoint(tmp_path: Path) -> None:
    items, out = Items(5), tmp_path / "interrupted"
    config = HarmonizeConfig(batch_size=2, learning_rate=1e-2, epochs=2, checkpoint_every=2)

    def stop_after_five(step: StepLoss) -> None:
        if step.step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        harmonize(tiny_model(), Preprocessing(), items, out, config, on_step=stop_after_five)
    assert (out / CHECKPOINT_NAME).is_file()  # written after step 4, mid second epoch
    steps: list[StepLoss] = []
    resumed = harmonize(tiny_model(), Preprocessing(), items, out, config, resume=True,
                        on_step=steps.append)  # fmt: skip
    assert [step.step for step in steps] == [5, 6]
    straight, _ = train(tmp_path / "straight", items, epochs=2)
    assert_same_weights(straight, resumed)


def test_a_checkpoint_of_other_settings_is_refused(tmp_path: Path) -> None:
    train(tmp_path, Items(4), epochs=1)
    config = HarmonizeConfig(batch_size=2, learning_rate=1e-3, epochs=2)
    with pytest.raises(ResumeError, match="learning_rate"):
        harmonize(tiny_model(), Preprocessing(), Items(4), tmp_path, config, resume=True)


def test_the_harmonized_spec_builds_the_fine_tuned_model(tmp_path: Path) -> None:
    base = tiny_spec(tmp_path)
    config = HarmonizeConfig(batch_size=2, learning_rate=1e-2)
    weights = harmonize(base.build(), base.preprocessing, Items(4), tmp_path / "out", config)
    spec = harmonized_spec(base, weights)
    assert spec.name == "tiny-net-harmonized" and spec.version == spec.weights_sha256[:12]
    assert spec.preprocessing == base.preprocessing
    built = spec.build()
    assert not built.training
    for name, value in built.state_dict().items():
        torch.testing.assert_close(value, weights_of(weights)[name])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_training_runs_on_cuda_with_mixed_precision(tmp_path: Path) -> None:
    _, steps = train(tmp_path, Items(4), epochs=2, device="cuda", mixed_precision=True)
    assert len(steps) == 4 and all(torch.isfinite(torch.tensor(step.total)) for step in steps)
