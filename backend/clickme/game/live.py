"""What a live round keeps in this process between its reveals (the runtime's caches)."""

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from clickme.scoring.reveal import PreparedImage


class Drawn(NamedTuple):
    """A round's reveal drawn for the DNN: its mask, the mask's ``row_sums``, the image the
    DNN saw, and the prepared photo they were drawn from (kept: not looked up at each batch)."""

    mask: np.ndarray
    sums: np.ndarray
    image: np.ndarray
    prepared: PreparedImage


@dataclass
class LiveReveal:
    """A round's reveal in this process after batch ``seq``: every point so far (native pixels,
    float32 (N, 2)) and, with in-process scoring, what it drew (scoring workers draw
    themselves)."""

    seq: int
    points: np.ndarray
    drawn: Drawn | None = None


@dataclass(frozen=True)
class Answer:
    """What a round's last reveal answered: the DNN's guesses and the revealed share."""

    guesses: list[dict]
    revealed: float
