"""One model's alignment with a campaign's human maps, computed and stored: what `clickme align`
and the console's alignment jobs run."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from sqlalchemy.orm import Session

from clickme.alignment.schemas import AlignmentResult
from clickme.alignment.score import Explainer, campaign_alignment
from clickme.alignment.service import alignment_result, save_result
from clickme.campaigns.models import Campaign
from clickme.core.config import Settings
from clickme.maps.aggregate import MapSettings
from clickme.maps.valid import ImageRounds
from clickme.scoring.registry import ModelSpec


@dataclass(frozen=True)
class AlignOptions:
    """What every model of one alignment run is scored with."""

    maps: MapSettings
    device: str
    method: str
    batch_size: int
    accuracy_set: str | None
    seed: int


def default_device() -> str:
    """cuda if any, else cpu."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def build_explainer(spec: ModelSpec, device: str, method: str, batch_size: int) -> Explainer:
    """The model on the device, in eval mode, explained by the saliency method."""
    model = spec.build().to(torch.device(device)).eval()
    return Explainer(model, spec.preprocessing, method, batch_size)


def align_model(
    session: Session,
    settings: Settings,
    campaign: Campaign,
    images: Sequence[ImageRounds],
    spec: ModelSpec,
    ceiling: float | None,
    options: AlignOptions,
    progress: bool = False,
    advance: Callable[[], None] | None = None,
) -> AlignmentResult:
    """The model's alignment on the campaign's images, saved for the console (``save_result``);
    ``advance`` is called once per image explained."""
    explainer = build_explainer(spec, options.device, options.method, options.batch_size)
    score = campaign_alignment(
        session, images, explainer, settings.images_dir, options.maps, ceiling,
        np.random.default_rng(options.seed), progress=progress, advance=advance,
    )  # fmt: skip
    result = alignment_result(
        campaign.id, campaign.slug, spec.name, spec.version, options.method, options.maps, score,
    )  # fmt: skip
    save_result(settings.data_dir, result)
    return result
