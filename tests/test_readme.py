"""The README's pictures: every image it links to is in the repository, and small."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
MAX_BYTES = 150_000


def test_every_picture_the_readme_shows_is_a_small_file_in_the_repository() -> None:
    links = IMAGE_LINK.findall((ROOT / "README.md").read_text())
    assert {"docs/images/game-desktop.png", "docs/images/game-phone.png",
            "docs/images/campaign-page.png"} <= set(links)  # fmt: skip
    for link in links:
        path = ROOT / link
        assert path.is_file(), f"README shows {link}, which is not in the repository"
        assert path.stat().st_size < MAX_BYTES, f"{link} is {path.stat().st_size} bytes"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{link} is not a PNG"
