"""The console's pictures of a campaign's images: their human maps over the photo, and the share
of the photo each round revealed.

A picture's map is the published one (``clickme.maps.aggregate.human_map``, as the exports
write it) of the finished rounds that were not skipped (won or timed out), excluded players
left out, in the 224 x 224 evaluation view. A round's final mask is rendered from all its points
under the reveal rule of the campaign version it was played by (``clickme.scoring.reveal``).
"""

import io
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image as PilImage
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from clickme.campaigns import service as campaigns
from clickme.campaigns.models import CampaignVersion
from clickme.core.lru import LruCache
from clickme.game.models import Round
from clickme.game.outcomes import COUNTED, PLAYED_OUTCOMES
from clickme.game.points import unpack_points, xy_of
from clickme.game.service import points_by_round
from clickme.images.models import Image
from clickme.maps.aggregate import human_map, to_eval
from clickme.players.service import excluded_player_ids
from clickme.scoring.reveal import PreparedImageCache, RevealRule, render_mask, revealed_fraction

# Heat colours from cold to hot (black, red, orange, pale yellow) at these map values.
HEAT_STOPS = np.array([0.0, 0.35, 0.7, 1.0])
HEAT_COLOURS = np.array([[0, 0, 0], [200, 20, 0], [255, 150, 0], [255, 250, 190]], dtype=float)
MAX_OPACITY = 0.75


def mapped_rounds(session: Session, campaign_id: int) -> Select[Round]:
    """The campaign's rounds that count in its maps: won or timed out, not repeats, by
    non-excluded players."""
    return select(Round).where(
        Round.campaign_id == campaign_id,
        Round.outcome.in_(PLAYED_OUTCOMES),
        COUNTED,
        Round.player_id.not_in(excluded_player_ids(session)),
    )


class RoundMasks:
    """Renders rounds' final masks, image by image, each under its campaign version's rule."""

    def __init__(self, session: Session, images: PreparedImageCache, images_dir: Path) -> None:
        self.session = session
        self.images = images
        self.images_dir = images_dir
        self._rules: dict[tuple[int, int], RevealRule] = {}

    def _rule(self, round_: Round) -> RevealRule:
        key = (round_.campaign_id, round_.campaign_version)
        if key not in self._rules:
            version = self.session.scalars(
                select(CampaignVersion).where(
                    CampaignVersion.campaign_id == round_.campaign_id,
                    CampaignVersion.version == round_.campaign_version,
                )
            ).one()
            self._rules[key] = campaigns.rules_from_settings(version.settings).reveal
        return self._rules[key]

    def of_image(
        self, image: Image, rounds: Sequence[Round]
    ) -> Iterator[tuple[Round, np.ndarray, np.ndarray]]:
        """Each round of this image with its points (structured x, y, t) and its final mask
        (all zeros for a round with no point)."""
        points = points_by_round(self.session, [round_.id for round_ in rounds])
        no_points = unpack_points([])
        for round_ in rounds:
            rule = self._rule(round_)
            prepared = self.images.get(self.images_dir / image.file_name, rule)
            painted = points.get(round_.id, no_points)
            yield round_, painted, render_mask(xy_of(painted), prepared, rule)


def image_map(session: Session, image: Image, rounds: Sequence[Round]) -> np.ndarray:
    """float32 (224, 224) in [0, 1]: the published human map of these rounds of the image, in
    the evaluation view."""
    points = points_by_round(session, [round_.id for round_ in rounds])
    no_points = unpack_points([])
    rounds_points = [xy_of(points.get(round_.id, no_points)) for round_ in rounds]
    return to_eval(human_map(rounds_points, image.width, image.height))


def revealed_areas(
    session: Session,
    rounds: Sequence[Round],
    cache: LruCache[int, float],
    images: PreparedImageCache,
    images_dir: Path,
) -> dict[int, float]:
    """round id -> the share of the crop its final mask reveals; finished rounds never change,
    so each is rendered once per process and kept in ``cache``."""
    areas = {round_.id: cache.get(round_.id) for round_ in rounds}
    missing: dict[int, list[Round]] = defaultdict(list)
    for round_ in rounds:
        if areas[round_.id] is None:
            missing[round_.image_id].append(round_)
    masks = RoundMasks(session, images, images_dir)
    for image_id, image_rounds in missing.items():
        image = session.get_one(Image, image_id)
        for round_, _points, mask in masks.of_image(image, image_rounds):
            area = revealed_fraction(mask)
            areas[round_.id] = area
            cache.put(round_.id, area)
    return {round_id: area for round_id, area in areas.items() if area is not None}


def heat_colours(values: np.ndarray) -> np.ndarray:
    """float (..., 3) RGB 0-255 of values in [0, 1] on the heat scale."""
    channels = [np.interp(values, HEAT_STOPS, HEAT_COLOURS[:, c]) for c in range(3)]
    return np.stack(channels, axis=-1)


def overlay_png(photo: np.ndarray, human: np.ndarray) -> bytes:
    """PNG of the photo (uint8 H x W x 3) under the map in heat colours, scaled to its maximum;
    the hotter, the more opaque (where nobody painted the photo shows plainly)."""
    peak = float(human.max())
    values = human / peak if peak > 0 else human
    opacity = (MAX_OPACITY * values)[:, :, None]
    blended = photo.astype(np.float64) * (1 - opacity) + heat_colours(values) * opacity
    buffer = io.BytesIO()
    PilImage.fromarray(np.rint(blended).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()
