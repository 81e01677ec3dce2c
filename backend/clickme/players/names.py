"""Friendly generated display names for anonymous players."""

import secrets

ADJECTIVES = (
    "Bold",
    "Brisk",
    "Calm",
    "Clever",
    "Curious",
    "Daring",
    "Eager",
    "Gentle",
    "Keen",
    "Lucky",
    "Nimble",
    "Quick",
    "Quiet",
    "Sharp",
    "Sly",
    "Steady",
    "Sunny",
    "Swift",
    "Witty",
    "Zesty",
)
ANIMALS = (
    "Badger",
    "Crane",
    "Dolphin",
    "Falcon",
    "Fox",
    "Gecko",
    "Heron",
    "Ibex",
    "Koala",
    "Lynx",
    "Marten",
    "Otter",
    "Owl",
    "Panda",
    "Puffin",
    "Raven",
    "Seal",
    "Tiger",
    "Wombat",
    "Yak",
)


def generate_display_name() -> str:
    number = secrets.randbelow(900) + 100
    return f"{secrets.choice(ADJECTIVES)}{secrets.choice(ANIMALS)}{number}"
