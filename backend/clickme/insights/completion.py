"""What a campaign's participants see once they have played its number of images: the code and
URL that tell their recruiter (Prolific, MTurk) they finished (the description is
``clickme.campaigns.service.public_info``)."""

from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from clickme.campaigns.models import Campaign
from clickme.campaigns.schemas import Completion
from clickme.core.errors import Conflict, NotFound
from clickme.game import service as game
from clickme.game.models import Round
from clickme.game.outcomes import COUNTED, RoundRule, valid_round
from clickme.insights.flags import raise_flag, refresh_flags
from clickme.players.models import Player, PlayerExclusion, PlayerFlag
from clickme.scoring.reveal import PreparedImageCache

# Open (unresolved) flags that send a player to the screened-out code: signs of no real effort.
# "far_from_consensus" is left out: unusual maps are not proof of bad faith.
SCREENING_FLAGS = ("paints_everything", "bot_timing", "fails_catch_trials", "no_effort")
# The flag (and the reason the completion gives) of a participant with too few valid rounds.
TOO_LITTLE_EFFORT = "too_little_effort"
# Prolific reads the completion code from this query parameter of its completion URL.
CODE_PARAMETER = "cc"


def campaign_for_completion(session: Session, slug: str) -> Campaign:
    """The campaign by slug in any state but draft: a participant who finished keeps their code
    after the campaign is paused or completed."""
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None or campaign.state == "draft":
        raise NotFound("campaign_not_found", f"no campaign {slug!r}")
    return campaign


def with_code(url: str, code: str) -> str:
    """The URL with ``cc=CODE`` in its query (replacing any ``cc`` already there)."""
    parts = urlsplit(url)
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key != CODE_PARAMETER
    ]
    query.append((CODE_PARAMETER, code))
    return urlunsplit(parts._replace(query=urlencode(query)))


def _close_expired_rounds(
    session: Session,
    campaign: Campaign,
    player_id: int,
    grace_ms: int,
    rule: RoundRule,
    start_bound_s: float,
) -> None:
    """Rounds left running past their time (the player closed the page) end as timeouts (as
    abandoned when never shown)."""
    running = session.scalars(
        select(Round.id).where(
            Round.campaign_id == campaign.id,
            Round.player_id == player_id,
            Round.outcome.is_(None),
        )
    ).all()
    for round_id in running:
        facts = game.load_facts(session, round_id, player_id)
        game.read_round(session, facts, grace_ms, rule, start_bound_s)


def _rounds_ended_and_running(
    session: Session, campaign: Campaign, player_id: int
) -> tuple[int, int]:
    """The player's rounds of the campaign (repeats aside) ended and still running."""
    ended, running = session.execute(
        select(
            func.count(Round.outcome),
            func.count(Round.id) - func.count(Round.outcome),
        ).where(Round.campaign_id == campaign.id, Round.player_id == player_id, COUNTED)
    ).one()
    return ended, running


def min_valid_rounds(campaign: Campaign) -> int:
    """The valid rounds the completion code needs: the campaign's setting, else half the images
    per player, rounded up."""
    if campaign.min_valid_rounds_for_completion is not None:
        return campaign.min_valid_rounds_for_completion
    return -(-(campaign.max_images_per_player or 0) // 2)


def _valid_rounds(session: Session, campaign: Campaign, player_id: int, rule: RoundRule) -> int:
    return session.execute(
        select(func.count(Round.id)).where(
            Round.campaign_id == campaign.id, Round.player_id == player_id, valid_round(rule)
        )
    ).scalar_one()


def _check_effort(session: Session, campaign: Campaign, player_id: int, rule: RoundRule) -> None:
    """A participant below the campaign's valid rounds for completion gets a
    ``too_little_effort`` flag saying so (screening them out)."""
    needed, valid = min_valid_rounds(campaign), _valid_rounds(session, campaign, player_id, rule)
    if valid < needed:
        reason = f"{valid} valid rounds in campaign {campaign.slug!r}, {needed} needed"
        raise_flag(session, player_id, TOO_LITTLE_EFFORT, reason)


def _screening_reason(session: Session, player_id: int) -> str | None:
    """Why the player is screened out: ``excluded``, or the kind of an open screening flag
    (``too_little_effort`` first); None when they are not."""
    excluded = session.scalar(
        select(PlayerExclusion.id).where(PlayerExclusion.player_id == player_id)
    )
    if excluded is not None:
        return "excluded"
    kinds = set(
        session.scalars(
            select(PlayerFlag.kind).where(
                PlayerFlag.player_id == player_id,
                PlayerFlag.kind.in_((TOO_LITTLE_EFFORT, *SCREENING_FLAGS)),
                PlayerFlag.resolved.is_(False),
            )
        )
    )
    return next((kind for kind in (TOO_LITTLE_EFFORT, *SCREENING_FLAGS) if kind in kinds), None)


def completion(
    session: Session,
    campaign: Campaign,
    player: Player,
    images: PreparedImageCache,
    images_dir: Path,
    grace_ms: int,
    rule: RoundRule,
    start_bound_s: float,
) -> Completion:
    """The player's code once every one of the campaign's images for them has ended; 409
    ``no_completion`` for a campaign without a number of images, ``not_finished`` before.

    The player's flags are refreshed first, so a bot is screened out at once; so is a
    participant with fewer valid rounds (by ``rule``) than the campaign needs."""
    limit = campaign.max_images_per_player
    if limit is None:
        raise Conflict("no_completion", "this campaign has no number of images to play")
    _close_expired_rounds(session, campaign, player.id, grace_ms, rule, start_bound_s)
    ended, running = _rounds_ended_and_running(session, campaign, player.id)
    if running or ended < limit:
        raise Conflict("not_finished", f"{limit - ended} of your {limit} images are still to play")
    refresh_flags(session, images, images_dir, [player.id])
    _check_effort(session, campaign, player.id, rule)
    reason = _screening_reason(session, player.id)
    code = campaign.completion_code if reason is None else campaign.screened_out_code
    url = None
    if code is not None and campaign.completion_url and player.source != "mturk":
        url = with_code(campaign.completion_url, code)
    status = "completed" if reason is None else "screened_out"
    return Completion(status=status, code=code, url=url)
