"""The game page's files: self-contained (no external resources), consistent, accessible."""

import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"
TEST_IDS = {
    "consent-accept",
    "game-canvas",
    "dnn-guesses",
    "round-timer",
    "skip-button",
    "round-result",
    "next-button",
    "player-score",
    "leaderboard",
}
EXTERNAL = re.compile(r"(https?:)?//[\w.-]+\.[a-z]{2,}|@import|@font-face", re.IGNORECASE)


class PageOutline(HTMLParser):
    """Ids, test ids, local references and buttons (with their accessible names) of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.test_ids: set[str] = set()
        self.references: list[str] = []
        self.buttons: list[str] = []
        self._button_text: list[str] | None = None
        self._button_label = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if "id" in attributes:
            self.ids.add(attributes["id"])
        if "data-testid" in attributes:
            self.test_ids.add(attributes["data-testid"])
        for name in ("src", "href"):
            if name in attributes:
                self.references.append(attributes[name])
        if tag == "button":
            self._button_text = []
            self._button_label = attributes.get("aria-label", "")

    def handle_data(self, data: str) -> None:
        if self._button_text is not None:
            self._button_text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "button" and self._button_text is not None:
            self.buttons.append(self._button_label or "".join(self._button_text).strip())
            self._button_text = None


@pytest.fixture(scope="module")
def page() -> PageOutline:
    outline = PageOutline()
    outline.feed((FRONTEND_DIR / "index.html").read_text())
    return outline


def test_page_has_every_element_the_tests_and_players_use(page: PageOutline) -> None:
    assert page.test_ids >= TEST_IDS


def test_script_only_looks_up_elements_the_page_has(page: PageOutline) -> None:
    script = (FRONTEND_DIR / "game.js").read_text()
    looked_up = set(re.findall(r"byId\(\"([\w-]+)\"\)", script))
    looked_up |= set(re.findall(r"\"([\w-]+-screen)\"", script))
    assert looked_up, "game.js no longer looks elements up by id"
    assert looked_up <= page.ids, f"missing in index.html: {sorted(looked_up - page.ids)}"


def test_every_local_reference_and_import_exists(page: PageOutline) -> None:
    local = [ref for ref in page.references if ref.startswith("/static/")]
    assert "/static/game.js" in local and "/static/game.css" in local
    for reference in local:
        assert (FRONTEND_DIR / reference.removeprefix("/static/")).is_file(), reference
    for module in FRONTEND_DIR.glob("*.js"):
        for imported in re.findall(r"from \"\./([\w.-]+)\"", module.read_text()):
            assert (FRONTEND_DIR / imported).is_file(), f"{module.name} imports {imported}"


def test_nothing_is_loaded_from_elsewhere(page: PageOutline) -> None:
    for reference in page.references:
        assert reference.startswith(("/static/", "data:")), reference
    for file in FRONTEND_DIR.iterdir():
        if file.suffix in {".html", ".css", ".js"}:
            assert not EXTERNAL.search(file.read_text()), f"external resource in {file.name}"


def test_every_button_has_an_accessible_name(page: PageOutline) -> None:
    assert page.buttons
    assert all(name.strip() for name in page.buttons), page.buttons


def test_painting_on_the_canvas_never_scrolls_the_page() -> None:
    css = (FRONTEND_DIR / "game.css").read_text()
    canvas_rule = re.search(r"#game-canvas\s*\{([^}]*)\}", css)
    assert canvas_rule and "touch-action: none" in canvas_rule.group(1)


def stylesheets(html: Path) -> list[str]:
    return re.findall(r'<link rel="stylesheet" href="([^"]+)">', html.read_text())


def test_both_pages_link_the_shared_sheet_before_their_own() -> None:
    assert stylesheets(FRONTEND_DIR / "index.html") == ["/static/base.css", "/static/game.css"]
    console = FRONTEND_DIR / "admin" / "index.html"
    assert stylesheets(console) == ["/static/base.css", "/static/admin/admin.css"]


def css_declarations(css: str) -> set[tuple[str, str, str]]:
    """(selector, property, value) of each declaration outside @media blocks."""
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.DOTALL)
    css = re.sub(r"@media[^{]*\{(?:[^{}]*\{[^{}]*\})*[^{}]*\}", "", css)
    found = set()
    for selectors, body in re.findall(r"([^{}]+)\{([^{}]*)\}", css):
        for declaration in filter(None, (part.strip() for part in body.split(";"))):
            name, value = (" ".join(side.split()) for side in declaration.split(":", 1))
            for selector in selectors.split(","):
                found.add((" ".join(selector.split()), name, value))
    return found


@pytest.mark.parametrize("sheet", ["game.css", "admin/admin.css"])
def test_page_sheets_copy_nothing_from_the_shared_sheet(sheet: str) -> None:
    shared = css_declarations((FRONTEND_DIR / "base.css").read_text())
    copied = shared & css_declarations((FRONTEND_DIR / sheet).read_text())
    assert not copied, f"{sheet} repeats base.css: {sorted(copied)}"


def test_the_how_to_is_written_once(page: PageOutline) -> None:
    html = (FRONTEND_DIR / "index.html").read_text()
    assert html.count("How to play") == 1 and "how-to" in page.ids
    assert html.count("<div data-how-to></div>") == 2  # the consent and the preview screens
