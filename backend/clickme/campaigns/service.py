"""Campaign service functions: the default campaign, its reveal rule, fair image assignment."""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign
from clickme.core.errors import ClickmeError
from clickme.game.models import Round
from clickme.images.models import Image, ImageSet
from clickme.models.models import DnnModel
from clickme.scoring.reveal import RevealRule

DEFAULT_CAMPAIGN_SLUG = "default"


@dataclass(frozen=True)
class CampaignDefaults:
    """The game's default rules (see README: chosen so that a round is winnable in 7 s)."""

    top_k: int = 5
    time_limit_ms: int = 7000
    brush_radius: float = 0.06
    brush_softness: float = 0.5
    reveal_background: str = "blur"
    background_blur_sigma: float = 12.0


DEFAULTS = CampaignDefaults()


def reveal_rule(campaign: Campaign) -> RevealRule:
    return RevealRule(
        radius=campaign.brush_radius,
        softness=campaign.brush_softness,
        background=campaign.reveal_background,  # type: ignore[arg-type]
        blur_sigma=campaign.background_blur_sigma,
    )


def get_campaign_by_slug(session: Session, slug: str) -> Campaign:
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None:
        raise ClickmeError(404, "campaign_not_found", f"no campaign {slug!r}")
    if campaign.state != "active":
        raise ClickmeError(409, "campaign_not_active", f"campaign {slug!r} is {campaign.state}")
    return campaign


def ensure_default_campaign(session: Session, image_set: ImageSet, model: DnnModel) -> Campaign:
    """The default campaign on this image set and model, created (or re-pointed) as needed."""
    campaign = session.scalar(select(Campaign).where(Campaign.slug == DEFAULT_CAMPAIGN_SLUG))
    if campaign is None:
        campaign = Campaign(
            slug=DEFAULT_CAMPAIGN_SLUG,
            name="ClickMe",
            state="active",
            version=1,
            image_set_id=image_set.id,
            model_id=model.id,
            top_k=DEFAULTS.top_k,
            time_limit_ms=DEFAULTS.time_limit_ms,
            brush_radius=DEFAULTS.brush_radius,
            brush_softness=DEFAULTS.brush_softness,
            reveal_background=DEFAULTS.reveal_background,
            background_blur_sigma=DEFAULTS.background_blur_sigma,
        )
        session.add(campaign)
    elif (campaign.image_set_id, campaign.model_id) != (image_set.id, model.id):
        campaign.image_set_id = image_set.id
        campaign.model_id = model.id
        campaign.version += 1
    session.flush()
    return campaign


def pick_image(session: Session, campaign: Campaign, player_id: int) -> Image:
    """The least-played image of the campaign that this player has not seen (ties at random)."""
    seen = select(Round.image_id).where(
        Round.campaign_id == campaign.id, Round.player_id == player_id
    )
    plays = (
        select(Round.image_id, func.count(Round.id).label("plays"))
        .where(Round.campaign_id == campaign.id)
        .group_by(Round.image_id)
        .subquery()
    )
    image = session.scalar(
        select(Image)
        .outerjoin(plays, plays.c.image_id == Image.id)
        .where(Image.image_set_id == campaign.image_set_id, Image.id.not_in(seen))
        .order_by(func.coalesce(plays.c.plays, 0), func.random())
        .limit(1)
    )
    if image is None:
        raise ClickmeError(409, "no_images_left", "you have played every image of this campaign")
    return image
