"""Simulated players painting each image's own known map (``clickme.maps.simulate``)."""

from collections.abc import Callable

import numpy as np

from clickme.game.points import pack_points
from clickme.images.models import Image
from clickme.maps.simulate import ground_truth_map, simulate_rounds
from tests.exports.fill import POINTS_PER_ROUND

Painter = Callable[[Image, np.random.Generator], bytes]


def painter(careless: bool = False) -> Painter:
    """Packed points of one round: drawn from the image's truth map (seeded by its id), or
    uniformly over the image when ``careless``."""

    def paint(image: Image, rng: np.random.Generator) -> bytes:
        truth = ground_truth_map(np.random.default_rng(image.id), image.width, image.height)
        xy = simulate_rounds(rng, truth, 1, POINTS_PER_ROUND, careless_share=float(careless))[0]
        return pack_points([(float(x), float(y), 20 * i) for i, (x, y) in enumerate(xy)])

    return paint
