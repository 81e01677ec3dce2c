"""What a live round keeps in this process between its reveals (the runtime's caches)."""

from dataclasses import dataclass

import numpy as np


@dataclass
class LiveReveal:
    """A round's reveal in this process after batch ``seq``: every point so far (native pixels,
    float32 (N, 2)) and, with in-process scoring, its mask, the mask's ``row_sums`` and the
    image the DNN saw (scoring workers draw those themselves)."""

    seq: int
    points: np.ndarray
    mask: np.ndarray | None = None
    sums: np.ndarray | None = None
    image: np.ndarray | None = None


@dataclass(frozen=True)
class Answer:
    """What a round's last reveal answered: the DNN's guesses and the revealed share."""

    guesses: list[dict]
    revealed: float
