"""The package's layers: every module imports only from its own domain and the layers below.

The layers, bottom to top, are written once in ``LAYERS``. A "unit" is a subpackage of
``clickme`` (``clickme.game``) or a top-level module (``clickme.cli``); the package root
(``clickme/__init__.py``, the version) counts as ``core``. Every import is read with ``ast``:
module-level ones, those inside functions and ``if`` blocks, ``from . import`` and relative ones.
An import of a unit in a higher layer fails the test, named (module, line, imported module); so
does an import between two units of one layer unless ``SIBLING_IMPORTS`` lists that direction.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "backend" / "clickme"
ROOT = "clickme"

# Bottom to top; a unit may import any unit of a lower layer.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"core"}),  # settings, database, errors, shared types, HTTP plumbing
    frozenset({"accounts", "images", "scoring"}),  # staff; image sets; the DNNs and the reveal
    frozenset({"players"}),  # identity, recruitment ids, rate limits, exclusions
    frozenset({"campaigns"}),  # settings, versions, states, assignment
    frozenset({"game"}),  # rounds, points, scores, leaderboards
    frozenset({"maps"}),  # the published map processing, validity, reliability, retirement
    frozenset({"insights"}),  # what staff look at: progress, pictures, quality, flags, review
    frozenset({"exports", "data", "alignment"}),  # research outputs
    # The assembly at the top:
    frozenset({"runtime", "tables"}),  # what an API process holds; every domain's tables
    frozenset({"ops"}),  # health, readiness, metrics and the request log
    frozenset({"app"}),  # the app factory: middleware and one list of routers
    frozenset({"cli"}),  # the commands: each domain's, assembled
)

# Imports allowed between two units of one layer (importer, imported), each with its reason.
# Any pair not listed is forbidden, in both directions.
SIBLING_IMPORTS: dict[tuple[str, str], str] = {
    ("images", "accounts"): "the image-set admin routes are for signed-in staff",
    ("scoring", "accounts"): "the model admin routes are for signed-in staff",
    ("scoring", "images"): "the DNNs see an image through the images' evaluation transform",
    ("data", "exports"): "the training dataset reads an export's WebDataset shards",
    ("alignment", "data"): "the harmonizer trains on the export dataset",
}


@dataclass(frozen=True)
class Import:
    module: str  # the importer, dotted
    line: int
    imported: str  # the imported module, dotted and absolute


def _layer_of() -> dict[str, int]:
    layer_of: dict[str, int] = {}
    for index, units in enumerate(LAYERS):
        for unit in units:
            assert unit not in layer_of, f"{unit} is written in two layers"
            layer_of[unit] = index
    return layer_of


LAYER_OF = _layer_of()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str:
    """The layer unit of a dotted module in the package (``clickme.game.routes`` -> game)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "core"


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The absolute modules a ``from ... import ...`` reads (each name may be a submodule)."""
    if node.level == 0:
        base = node.module or ""
    else:
        here = module.split(".") if is_package else module.split(".")[:-1]
        anchor = here[: len(here) - node.level + 1]
        base = ".".join(anchor + ([node.module] if node.module else []))
    if node.module is None:  # from . import x: x is a module of the package
        return [f"{base}.{alias.name}" for alias in node.names]
    return [base]


def imports_in(module: str, is_package: bool, source: str) -> list[Import]:
    """Every import of the package in a module's text, at any depth of its syntax tree."""
    found: list[Import] = []
    for node in ast.walk(ast.parse(source, module)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = _absolute(module, is_package, node)
        else:
            continue
        for name in names:
            if name == ROOT or name.startswith(ROOT + "."):
                found.append(Import(module, node.lineno, name))
    return found


def all_imports() -> list[Import]:
    return [
        found
        for path in sorted(PACKAGE_DIR.rglob("*.py"))
        for found in imports_in(module_name(path), path.name == "__init__.py", path.read_text())
    ]


def is_allowed(importer: str, imported: str) -> bool:
    source, target = unit_of(importer), unit_of(imported)
    if source == target:
        return True
    if LAYER_OF[target] < LAYER_OF[source]:
        return True
    return LAYER_OF[target] == LAYER_OF[source] and (source, target) in SIBLING_IMPORTS


def test_every_unit_has_a_layer() -> None:
    units = {unit_of(module_name(path)) for path in PACKAGE_DIR.rglob("*.py")}
    assert sorted(units - LAYER_OF.keys()) == [], "place these in LAYERS"
    assert sorted(LAYER_OF.keys() - units) == [], "these units no longer exist"


def test_sibling_imports_are_within_one_layer() -> None:
    for source, target in SIBLING_IMPORTS:
        assert LAYER_OF[source] == LAYER_OF[target], (source, target)


def test_no_upward_import() -> None:
    violations = [
        f"{found.module}:{found.line} imports {found.imported} "
        f"({unit_of(found.module)} -> {unit_of(found.imported)})"
        for found in all_imports()
        if unit_of(found.module) in LAYER_OF
        and unit_of(found.imported) in LAYER_OF
        and not is_allowed(found.module, found.imported)
    ]
    assert violations == [], "imports against the layers:\n" + "\n".join(violations)


def test_the_checker_sees_every_kind_of_import() -> None:
    """Absolute, relative, ``from . import`` and function-level imports are all found."""
    source = (
        "import clickme.game.models\n"
        "from ..maps import aggregate\n"
        "from . import service\n"
        "import numpy\n"
        "def late():\n"
        "    from clickme.exports.writers import write\n"
    )
    found = [(i.line, i.imported) for i in imports_in("clickme.campaigns.probe", False, source)]
    assert sorted(found) == [
        (1, "clickme.game.models"),
        (2, "clickme.maps"),
        (3, "clickme.campaigns.service"),
        (6, "clickme.exports.writers"),
    ]
    package = imports_in("clickme.campaigns", True, "from .models import Campaign\n")
    assert [i.imported for i in package] == ["clickme.campaigns.models"]


def test_the_rules_tell_up_from_down() -> None:
    assert not is_allowed("clickme.campaigns.probe", "clickme.game.models")
    assert not is_allowed("clickme.core.probe", "clickme.exports.writers")
    assert not is_allowed("clickme.accounts.deps", "clickme.images.models")  # siblings
    assert is_allowed("clickme.game.service", "clickme.campaigns.models")
    assert is_allowed("clickme.scoring.scorer", "clickme.images.transform")  # listed sibling
    assert is_allowed("clickme.cli", "clickme.exports.cli")
