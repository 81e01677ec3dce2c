"""The page's brush in Chromium: its bubbles (docs/api.md) and its pointer-to-pixel mapping."""

import mimetypes
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, Route

pytestmark = pytest.mark.browser

FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"
ORIGIN = "http://clickme.test"
BLANK_PAGE = "<!doctype html><html><body style='margin:0'></body></html>"

RENDER_ON_WHITE = """
async ({ width, height, cssWidth, pixelRatio, brush, points }) => {
  const { RevealCanvas, DIM_LEVEL } = await import("/static/brush.js");
  const photo = document.createElement("canvas");
  photo.width = width;
  photo.height = height;
  const photoContext = photo.getContext("2d");
  photoContext.fillStyle = "#fff";
  photoContext.fillRect(0, 0, width, height);
  const canvas = document.createElement("canvas");
  document.body.append(canvas);
  const reveal = new RevealCanvas(canvas);
  reveal.setPhoto(photo, width, height, brush);
  reveal.resize(cssWidth, cssWidth * height / width, pixelRatio);
  for (const [x, y] of points) reveal.addPoint(x, y);
  reveal.render();
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
  const red = Array.from(pixels.data.filter((_, index) => index % 4 === 0));
  canvas.remove();
  return { dim: DIM_LEVEL, red, canvasWidth: canvas.width, canvasHeight: canvas.height };
}
"""

MAP_POINTER = """
async ({ width, height, probes }) => {
  const { RevealCanvas } = await import("/static/brush.js");
  const canvas = document.createElement("canvas");
  canvas.style.position = "absolute";
  canvas.style.left = "37px";
  canvas.style.top = "53px";
  document.body.append(canvas);
  const reveal = new RevealCanvas(canvas);
  reveal.setPhoto(new Image(), width, height, { radius_px: 10, softness: 0.5 });
  reveal.resize(width * 0.75, height * 0.75, 2);
  return probes.map(([x, y]) => reveal.toNative(x, y));
}
"""


def _serve_frontend(route: Route) -> None:
    path = route.request.url.removeprefix(ORIGIN)
    if path.startswith("/static/"):
        file = FRONTEND_DIR / path.removeprefix("/static/")
        if file.is_file():
            content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
            route.fulfill(body=file.read_bytes(), content_type=content_type)
            return
        route.fulfill(status=404, body="")
        return
    route.fulfill(body=BLANK_PAGE, content_type="text/html")


@pytest.fixture
def blank_page(browser: Browser) -> Iterator[Page]:
    """A page on a made-up origin whose /static/ is the frontend folder (no server needed)."""
    context = browser.new_context()
    context.route(f"{ORIGIN}/**", _serve_frontend)
    page = context.new_page()
    page.goto(f"{ORIGIN}/")
    yield page
    context.close()


def expected_brightness(
    shape: tuple[int, int],
    native_per_pixel: float,
    points: list[tuple[float, float]],
    radius: float,
    softness: float,
    dim: float,
) -> np.ndarray:
    """The documented brush at each canvas pixel's centre, as a brightness over white."""
    rows, cols = shape
    ys = (np.arange(rows) + 0.5) * native_per_pixel
    xs = (np.arange(cols) + 0.5) * native_per_pixel
    mask = np.zeros(shape)
    for x, y in points:
        distance = np.hypot(xs[None, :] - x, ys[:, None] - y)
        bubble = np.clip((radius - distance) / (radius * softness), 0.0, 1.0)
        mask = np.maximum(mask, bubble)
    return dim + (1 - dim) * mask


@pytest.mark.parametrize(
    ("css_width", "pixel_ratio", "brush"),
    [
        (120, 1, {"radius_px": 14.0, "softness": 0.5}),
        (180, 2, {"radius_px": 9.0, "softness": 0.25}),
    ],
)
def test_bubbles_follow_the_documented_geometry(
    blank_page: Page, css_width: int, pixel_ratio: int, brush: dict[str, float]
) -> None:
    width, height = 120, 80
    points = [(30.0, 40.0), (41.5, 44.0), (90.0, 20.0), (118.0, 79.0)]
    drawn = blank_page.evaluate(
        RENDER_ON_WHITE,
        {
            "width": width,
            "height": height,
            "cssWidth": css_width,
            "pixelRatio": pixel_ratio,
            "brush": brush,
            "points": points,
        },
    )
    shape = (drawn["canvasHeight"], drawn["canvasWidth"])
    assert shape == (round(css_width * height / width * pixel_ratio), css_width * pixel_ratio)
    shown = np.array(drawn["red"], dtype=float).reshape(shape) / 255
    expected = expected_brightness(
        shape,
        width / shape[1],
        points,
        brush["radius_px"],
        brush["softness"],
        drawn["dim"],
    )
    error = np.abs(shown - expected)
    assert error.max() < 0.035, f"largest difference {error.max():.3f}"
    assert error.mean() < 0.006
    assert shown.min() == pytest.approx(drawn["dim"], abs=0.01)
    assert shown.max() == pytest.approx(1.0, abs=0.01)


def test_pointer_positions_map_to_native_pixels(blank_page: Page) -> None:
    width, height = 200, 100
    shown = 0.75  # CSS pixels per native pixel; the device has 2 pixels per CSS pixel
    probes = [(37, 53), (37 + 150 - 0.5, 53 + 75 - 0.5), (37 + 30, 53 + 15), (36, 60), (187, 60)]
    mapped = blank_page.evaluate(MAP_POINTER, {"width": width, "height": height, "probes": probes})
    assert mapped[0] == pytest.approx([0.0, 0.0])
    assert mapped[1] == pytest.approx([199.0 + 1 / 3, 99.0 + 1 / 3])
    assert mapped[2] == pytest.approx([30 / shown, 15 / shown])
    assert mapped[3] is None and mapped[4] is None
