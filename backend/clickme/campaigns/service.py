"""Campaign service functions: settings, states, versions, fair image assignment."""

import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import (
    ColumnElement,
    Select,
    Update,
    bindparam,
    case,
    false,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session
from tqdm import tqdm

from clickme.campaigns.models import Campaign, CampaignVersion, ImagePlays
from clickme.campaigns.schemas import CampaignCreate, CampaignPublic, CampaignUpdate
from clickme.core.config import Settings
from clickme.core.db import InTransaction, RandomUnit, built
from clickme.core.errors import ClickmeError, Conflict, NotFound, Unavailable, Unprocessable
from clickme.images.display import display_file
from clickme.images.models import Image, ImageSet
from clickme.scoring.reveal import PreparedImageCache, RevealRule
from clickme.scoring.tables import DnnModel

DEFAULT_CAMPAIGN_SLUG = "default"
# The demo campaign never retires its images (the schema's largest quota).
DEFAULT_CAMPAIGN_PLAYS_WANTED = 100_000

# Changing any of these on an active or paused campaign makes a new version.
GAME_SETTINGS = (
    "image_set_id",
    "model_id",
    "top_k",
    "time_limit_ms",
    "brush_radius",
    "brush_softness",
    "reveal_background",
    "background_blur_sigma",
    "plays_wanted_per_image",
    "max_images_per_player",
    "catch_trial_share",
    "retire_at_reliability",
    "assignment_order",
    "leave_out_unwinnable",
    "repeat_when_exhausted",
)
TRANSITIONS = {
    ("draft", "active"),
    ("active", "paused"),
    ("paused", "active"),
    ("active", "completed"),
    ("paused", "completed"),
}
# Tries to reserve an image while others hold every open one, and the pause between tries.
RESERVE_ATTEMPTS = 50
RESERVE_BACKOFF_S = (0.002, 0.02)
_rng = random.SystemRandom()


@dataclass(frozen=True)
class GameRules:
    """The rules a round is played by (from its campaign version)."""

    top_k: int
    time_limit_ms: int
    reveal: RevealRule


def snapshot(campaign: Campaign) -> dict[str, Any]:
    """The campaign's game settings as stored in a version."""
    return {name: getattr(campaign, name) for name in GAME_SETTINGS}


def rules_from_settings(settings: Mapping[str, Any]) -> GameRules:
    return GameRules(
        top_k=settings["top_k"],
        time_limit_ms=settings["time_limit_ms"],
        reveal=RevealRule(
            radius=settings["brush_radius"],
            softness=settings["brush_softness"],
            background=settings["reveal_background"],
            blur_sigma=settings["background_blur_sigma"],
        ),
    )


def reveal_rule(campaign: Campaign) -> RevealRule:
    return rules_from_settings(snapshot(campaign)).reveal


def prepare_photos(
    session: Session,
    campaign: Campaign,
    images: PreparedImageCache,
    settings: Settings,
    progress: bool = False,
) -> int:
    """Prepares every photo of the campaign's image set for its reveal rule and makes its
    display version (both kept in the data dir, so no round pays for them); how many photos
    there are."""
    rule = reveal_rule(campaign)
    in_set = Image.image_set_id == campaign.image_set_id
    photos = session.scalars(select(Image).where(in_set).order_by(Image.id)).all()
    for photo in tqdm(photos, disable=not progress, unit="photo", desc="prepare"):
        images.get(settings.images_dir / photo.file_name, rule)
        display_file(settings.images_dir, settings.display_dir, photo, settings.display_max_side)
    return len(photos)


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFound("campaign_not_found", f"no campaign {campaign_id}")
    return campaign


def list_campaigns(session: Session) -> list[Campaign]:
    return list(session.scalars(select(Campaign).order_by(Campaign.id)))


# What a player is told of a campaign that is not active, by its state: (code, message).
NOT_ACTIVE = {
    "draft": ("campaign_not_started", "this study has not started yet"),
    "paused": ("campaign_paused", "this study is paused for now"),
    "completed": ("campaign_finished", "this study is finished"),
}


def get_campaign_by_slug(session: Session, slug: str) -> Campaign:
    """The campaign players reach by this slug; 409 naming its state unless it is active."""
    return get_campaign_with_model(session, slug)[0]


_CAMPAIGN_WITH_MODEL = (
    select(Campaign, DnnModel)
    .join(DnnModel, DnnModel.id == Campaign.model_id)
    .where(Campaign.slug == bindparam("slug"))
)


def get_campaign_with_model(session: Session, slug: str) -> tuple[Campaign, DnnModel]:
    """``get_campaign_by_slug`` with the DNN the campaign's new rounds play with, in one query
    (while the caller holds the DNN, the session finds it again without a query)."""
    row = session.execute(_CAMPAIGN_WITH_MODEL, {"slug": slug}).first()
    return playable(slug, None if row is None else row[0], None if row is None else row[1])


def playable(
    slug: str, campaign: Campaign | None, model: DnnModel | None
) -> tuple[Campaign, DnnModel]:
    """The campaign found by its slug, with its DNN: 404 for none, 409 naming its state unless
    it is active."""
    if campaign is None or model is None:
        raise NotFound("campaign_not_found", f"no campaign {slug!r}")
    if campaign.state != "active":
        raise Conflict(*NOT_ACTIVE[campaign.state])
    return campaign, model


def leaderboard_campaign_id(session: Session, slug: str | None) -> int | None:
    """The campaign whose leaderboard a slug asks for: None (the global board) for the demo
    campaign or no slug; 404 for an unknown or draft campaign."""
    if slug is None or slug == DEFAULT_CAMPAIGN_SLUG:
        return None
    campaign = session.scalar(select(Campaign).where(Campaign.slug == slug))
    if campaign is None or campaign.state == "draft":
        raise NotFound("campaign_not_found", f"no campaign {slug!r}")
    return campaign.id


def versions(session: Session, campaign: Campaign) -> list[CampaignVersion]:
    return list(
        session.scalars(
            select(CampaignVersion)
            .where(CampaignVersion.campaign_id == campaign.id)
            .order_by(CampaignVersion.version)
        )
    )


def _check_references(
    session: Session, values: Mapping[str, Any], campaign_id: int | None = None
) -> None:
    """422 for an unknown image set or model, 409 for a slug another campaign has."""
    if "image_set_id" in values and session.get(ImageSet, values["image_set_id"]) is None:
        raise Unprocessable("image_set_not_found", f"no image set {values['image_set_id']}")
    if "model_id" in values and session.get(DnnModel, values["model_id"]) is None:
        raise Unprocessable("model_not_found", f"no model {values['model_id']}")
    if "slug" in values:
        other = session.scalar(select(Campaign.id).where(Campaign.slug == values["slug"]))
        if other is not None and other != campaign_id:
            raise Conflict("slug_taken", f"the slug {values['slug']!r} is taken")


def create_campaign(session: Session, body: CampaignCreate) -> Campaign:
    """A new campaign in the draft state."""
    values = body.model_dump()
    _check_references(session, values)
    campaign = Campaign(state="draft", version=1, **values)
    session.add(campaign)
    session.flush()
    return campaign


def _record_version(session: Session, campaign: Campaign, staff_id: int | None) -> None:
    session.add(
        CampaignVersion(
            campaign_id=campaign.id,
            version=campaign.version,
            settings=snapshot(campaign),
            created_by=staff_id,
        )
    )
    session.flush()


def update_campaign(
    session: Session, campaign: Campaign, body: CampaignUpdate, staff_id: int | None = None
) -> Campaign:
    """Change settings; a game setting changed while live (active, paused) makes a new version."""
    if campaign.state == "completed":
        raise Conflict("campaign_completed", "a completed campaign cannot change")
    changes = {k: v for k, v in body.changes().items() if getattr(campaign, k) != v}
    _check_references(session, changes, campaign.id)
    for name, value in changes.items():
        setattr(campaign, name, value)
    if campaign.state != "draft" and changes.keys() & set(GAME_SETTINGS):
        campaign.version += 1
        _record_version(session, campaign, staff_id)
        sync_image_plays(session, campaign)
    if "retire_at_reliability" in changes:
        _apply_reliability_target(session, campaign)
    session.flush()
    return campaign


def _apply_reliability_target(session: Session, campaign: Campaign) -> None:
    """Retire by reliability exactly the images whose last measured value reaches the campaign's
    target (none without one): a changed target applies at once to the stored values."""
    target = campaign.retire_at_reliability
    reached = false() if target is None else ImagePlays.reliability >= target
    session.execute(
        update(ImagePlays)
        .where(ImagePlays.campaign_id == campaign.id)
        .values(retired_by_reliability=case((reached, True), else_=False))
        .execution_options(synchronize_session=False)
    )


def change_state(
    session: Session, campaign: Campaign, state: str, staff_id: int | None = None
) -> Campaign:
    """Move along an allowed transition; the first activation records version 1."""
    if campaign.state == state:
        return campaign
    if (campaign.state, state) not in TRANSITIONS:
        raise Conflict("invalid_transition", f"a {campaign.state} campaign cannot become {state}")
    if state == "active":
        _activate(session, campaign, staff_id)
    campaign.state = state
    session.flush()
    return campaign


def _activate(session: Session, campaign: Campaign, staff_id: int | None) -> None:
    has_images = session.scalar(
        select(func.count(Image.id)).where(
            Image.image_set_id == campaign.image_set_id, Image.is_catch.is_(False)
        )
    )
    if not has_images:
        raise Conflict("no_images", "the campaign's image set has no images to play")
    if campaign.state == "draft":
        _record_version(session, campaign, staff_id)
    sync_image_plays(session, campaign)


def sync_image_plays(session: Session, campaign: Campaign) -> None:
    """A play counter for each image of the campaign's set that has none yet."""
    missing = select(literal(campaign.id), Image.id, literal(0)).where(
        Image.image_set_id == campaign.image_set_id,
        Image.is_catch.is_(False),
        Image.id.not_in(select(ImagePlays.image_id).where(ImagePlays.campaign_id == campaign.id)),
    )
    session.execute(insert(ImagePlays).from_select(["campaign_id", "image_id", "plays"], missing))


def ensure_default_campaign(session: Session, image_set: ImageSet, model: DnnModel) -> Campaign:
    """The default (demo) campaign on this image set and model, created or re-pointed as needed."""
    campaign = session.scalar(select(Campaign).where(Campaign.slug == DEFAULT_CAMPAIGN_SLUG))
    if campaign is None:
        body = CampaignCreate(
            name="ClickMe",
            slug=DEFAULT_CAMPAIGN_SLUG,
            image_set_id=image_set.id,
            model_id=model.id,
            plays_wanted_per_image=DEFAULT_CAMPAIGN_PLAYS_WANTED,
            assignment_order="breadth",  # the demo plays best with every image in turn
            repeat_when_exhausted=True,  # and does not end after its few photos
        )
        campaign = create_campaign(session, body)
        change_state(session, campaign, "active")
        return campaign
    if (campaign.image_set_id, campaign.model_id) != (image_set.id, model.id):
        changes = CampaignUpdate(image_set_id=image_set.id, model_id=model.id)
        update_campaign(session, campaign, changes)
    return campaign


def _in_play(leave_out_unwinnable: bool) -> ColumnElement[bool]:
    """A counter of the campaign (``:for_campaign``) that assignment may give, its plays aside:
    not retired by reliability and, where the campaign leaves them out, not one its DNN does not
    get even on the whole photo."""
    open_ = ImagePlays.retired_by_reliability.is_(False) & (
        ImagePlays.campaign_id == bindparam("for_campaign")
    )
    if leave_out_unwinnable:
        open_ &= ImagePlays.winnable.is_not(False)
    return open_


def _assignable(leave_out_unwinnable: bool) -> ColumnElement[bool]:
    """An open image of the campaign: in play and under its play count (``:wanted``)."""
    return _in_play(leave_out_unwinnable) & (ImagePlays.plays < bindparam("wanted"))


class _Run(NamedTuple):
    """A stretch of the order of assignment: the open images with ``low <= plays < high``, the
    most-played first or the least, equals drawn at random (``_drawn``)."""

    low: int
    high: int
    most_first: bool

    def before(self, plays: int) -> "_Run":
        """The part of the run strictly before an image with these plays."""
        return self._replace(low=plays + 1) if self.most_first else self._replace(high=plays)

    def past(self, plays: int) -> "_Run":
        """The part of the run strictly after the images with these plays."""
        return self._replace(high=plays) if self.most_first else self._replace(low=plays + 1)


def _order_runs(assignment_order: str, wanted: int, min_rounds: int) -> list[_Run]:
    """The order of assignment. Breadth: the least-played image. Depth: the image closest to
    a map's minimum of rounds below it, down to a fresh one, then, once every image has its
    minimum, the least-played. A run bounds the plays once from below and once from above:
    SQLite's range takes one bound of each (not the tighter of two, unknown when it plans)."""
    if assignment_order == "breadth":
        return [_Run(0, wanted, most_first=False)]
    return [
        _Run(0, min(min_rounds, wanted), most_first=True),
        _Run(min_rounds, wanted, most_first=False),
    ]


@dataclass(frozen=True)
class PlayerHistory:
    """What assignment reads of a player's rounds in a campaign (the game keeps them, above
    campaigns, and passes this to ``pick_image``). The queries are written with bound
    parameters (their values in ``parameters``), so that the statements assignment builds
    around them are built once and kept."""

    # The images shown to the player (once each: repeats aside), one ``image_id`` column.
    shown: Select[int]
    # Every image the player played, with the order of its last round (``image_id``, ``last``).
    last_played: Select[int, int]
    parameters: Mapping[str, object]


@dataclass(frozen=True)
class Pick:
    """The image of a player's next round; ``repeat``: a replay that holds no play."""

    image: Image
    repeat: bool = False


# The image's columns, read with its counter by the draw (its image ``built`` from them: the
# new round only reads it).
_IMAGE_COLUMNS = tuple(Image.__table__.columns)


class _Assignment(NamedTuple):
    """Assignment's statements for one shape of campaign and history (built once, kept)."""

    # The plays of the first open image with ``:low <= plays < :high`` the player has not seen,
    # in a run's order (the least-played first, or the most); not locked.
    lowest: Select[int]
    highest: Select[int]
    # An open image with ``:level`` plays the player has not seen, locked (``image_id``,
    # ``plays``, and the image's own columns): the first from a shuffle of ``:draw`` on.
    drawn: Select[*tuple[Any, ...]]
    take_play: Update  # ``:taken_image``'s counter up by one while it is open, reshuffled
    nothing_left: Select[int, int]  # the campaign's open images, and those the player has not seen


@lru_cache(maxsize=32)
def _assignment(shown: Select[int], leave_out_unwinnable: bool) -> _Assignment:
    in_set = (Image.image_set_id == bindparam("image_set_id")) & Image.is_catch.is_(False)
    plays, shuffle = ImagePlays.plays, ImagePlays.shuffle
    open_unseen = (_in_play(leave_out_unwinnable), in_set, Image.id.not_in(shown))
    in_run = (
        select(plays)
        .join(Image, Image.id == ImagePlays.image_id)
        .where(*open_unseen, plays >= bindparam("low"), plays < bindparam("high"))
        .limit(1)
    )
    assignable = _assignable(leave_out_unwinnable)
    return _Assignment(
        lowest=in_run.order_by(plays),
        highest=in_run.order_by(plays.desc()),
        drawn=select(ImagePlays.image_id, plays, *_IMAGE_COLUMNS)
        .join(Image, Image.id == ImagePlays.image_id)
        .where(*open_unseen, plays == bindparam("level"), shuffle >= bindparam("draw"))
        .order_by(shuffle)
        .limit(1)
        .with_for_update(skip_locked=True, of=ImagePlays),
        take_play=update(ImagePlays)
        .where(ImagePlays.image_id == bindparam("taken_image"), assignable)
        .values(plays=ImagePlays.plays + 1, shuffle=RandomUnit()),
        nothing_left=select(
            func.count().label("open_images"),
            func.count(case((Image.id.not_in(shown), 1))).label("unseen"),
        )
        .select_from(ImagePlays)
        .join(Image, Image.id == ImagePlays.image_id)
        .where(assignable, in_set),
    )


def pick_image(
    session: Session,
    campaign: Campaign,
    min_rounds: int,
    history: PlayerHistory,
    rng: random.Random | None = None,
) -> Pick:
    """The image for this player's next round, its play reserved (see ``_reserve_image``;
    ``min_rounds``: the valid rounds a map needs, which depth-first assignment fills first;
    ``history``: the player's rounds in the campaign).

    A share of rounds (``catch_trial_share``) goes to a catch image the player has not seen.
    A player who has seen every image of a campaign that allows it gets one again as a repeat
    (``_repeat_image``).
    """
    parameters: dict[str, object] = {
        **history.parameters,
        "for_campaign": campaign.id,
        "image_set_id": campaign.image_set_id,
        "wanted": campaign.plays_wanted_per_image,
    }
    limit = campaign.max_images_per_player
    if limit is not None:  # the images the player was shown, counted only against a limit
        shown = select(func.count()).select_from(history.shown.subquery())
        if session.execute(shown, parameters).scalar_one() >= limit:
            raise Conflict("player_done", "you have played all the images you can here")
    if campaign.catch_trial_share and (rng or _rng).random() < campaign.catch_trial_share:
        catch = session.scalar(
            select(Image)
            .where(
                Image.image_set_id == campaign.image_set_id,
                Image.is_catch.is_(True),
                Image.id.not_in(history.shown),
            )
            .order_by(func.random())
            .limit(1),
            parameters,
        )
        if catch is not None:
            return Pick(catch)
    statements = _assignment(history.shown, campaign.leave_out_unwinnable)
    runs = _order_runs(campaign.assignment_order, campaign.plays_wanted_per_image, min_rounds)
    try:
        return Pick(_reserve_image(session, statements, runs, parameters))
    except ClickmeError as refusal:
        if refusal.code != "no_images_left" or not campaign.repeat_when_exhausted:
            raise
        return Pick(_repeat_image(session, history.last_played, parameters), repeat=True)


@lru_cache(maxsize=8)
def _repeat_query(last_played: Select[int, int]) -> Select[Image]:
    played = last_played.subquery()
    return (
        select(Image)
        .join(played, played.c.image_id == Image.id)
        .where(Image.image_set_id == bindparam("image_set_id"), Image.is_catch.is_(False))
        .order_by(played.c.last, played.c.image_id)
        .limit(1)
    )


def _repeat_image(
    session: Session, last_played: Select[int, int], parameters: dict[str, object]
) -> Image:
    """The image of the campaign's set the player played least recently in it (never the one
    just played while there is another): the next one again, in the order first played."""
    return session.scalars(_repeat_query(last_played), parameters).one()


def _reserve_image(
    session: Session, statements: _Assignment, runs: list[_Run], parameters: dict[str, object]
) -> Image:
    """The first open image in the campaign's order (``runs``) the player has not seen, its
    counter taken up by one.

    On PostgreSQL the counter row is locked with ``FOR UPDATE SKIP LOCKED``: a player never
    waits for a row lock (so never deadlocks), and when every open image is being taken by
    others, tries again after a few milliseconds. The conditional UPDATE never lets a counter
    pass the quota on any database. A round that ends without counting for the maps gives its
    play back (``release_plays``).
    """
    transaction = InTransaction(session)  # a new round's hot path
    for _ in range(RESERVE_ATTEMPTS):
        drawn = _lock_first(transaction, statements, runs, parameters)
        if drawn is not None and _take_play(transaction, statements, parameters, drawn.image_id):
            return built(Image, drawn)
        refusal = _nothing_left(transaction, statements, parameters)
        if not isinstance(refusal, Unavailable):
            raise refusal
        time.sleep(_rng.uniform(*RESERVE_BACKOFF_S))
    raise refusal


def _lock_first(
    transaction: InTransaction,
    statements: _Assignment,
    runs: list[_Run],
    parameters: dict[str, object],
) -> Any:
    """A candidate drawn among the first in the order, locked; then, on a fresh snapshot (it
    may be stale under concurrency), one strictly earlier in the order instead, until there is
    none. Its row (``_Assignment.drawn``'s), or None."""
    best = _first_in(transaction, statements, runs, parameters)
    while best is not None:
        place, row = best
        better = _first_in(
            transaction, statements, [*runs[:place], runs[place].before(row.plays)], parameters
        )
        if better is None:
            return row
        best = better
    return None


def _first_in(
    transaction: InTransaction,
    statements: _Assignment,
    runs: list[_Run],
    parameters: dict[str, object],
) -> tuple[int, Any] | None:
    """A candidate of the first of these runs that has a free one, locked, and its run's
    place: drawn among the run's first candidates (those with as many plays) that are free;
    when others hold all of them, among the next ones."""
    for place, run in enumerate(runs):
        probe = statements.highest if run.most_first else statements.lowest
        while run.low < run.high:
            bounds = {"low": run.low, "high": run.high}
            level = transaction.scalar(probe, parameters | bounds)
            if level is None:
                break
            found = _drawn(transaction, statements, parameters | {"level": level})
            if found is not None:
                return place, found
            run = run.past(level)
    return None


def _drawn(
    transaction: InTransaction, statements: _Assignment, parameters: dict[str, object]
) -> Any:
    """A free candidate with ``level`` plays, locked: the first whose shuffle follows a random
    draw, else (past the last) the level's first. Each is drawn with the chance of the gap
    before its shuffle, which is drawn anew at each play it takes (``take_play``)."""
    for draw in (_rng.random(), 0.0):
        found = transaction.first(statements.drawn, parameters | {"draw": draw})
        if found is not None:
            return found
    return None


def _take_play(
    transaction: InTransaction,
    statements: _Assignment,
    parameters: dict[str, object],
    image_id: int,
) -> bool:
    """Whether the image's play was taken (it was still open). Only the UPDATE's own
    parameters are passed: a key named like a column would be SET too."""
    own = {name: parameters[name] for name in ("wanted", "for_campaign")}
    return bool(transaction.rowcount(statements.take_play, own | {"taken_image": image_id}))


def _nothing_left(
    transaction: InTransaction, statements: _Assignment, parameters: dict[str, object]
) -> Conflict | Unavailable:
    """Why no image was reserved: the campaign is done, this player is, or others hold them."""
    open_images, unseen = transaction.first(statements.nothing_left, parameters)
    if not open_images:
        return Conflict("campaign_complete", "every image of this campaign is done")
    if not unseen:
        return Conflict("no_images_left", "you have played every image of this campaign")
    return Unavailable("assignment_busy", "every open image is being assigned, try again")


def release_plays(session: Session, campaign_id: int, image_ids: Sequence[int]) -> None:
    """Rounds that ended without counting for the maps give their images' plays back (one per
    round; in image order, so that concurrent releases never wait on each other in a cycle)."""
    for image_id in sorted(image_ids):
        session.execute(
            update(ImagePlays)
            .where(
                ImagePlays.campaign_id == campaign_id,
                ImagePlays.image_id == image_id,
                ImagePlays.plays > 0,
            )
            .values(plays=ImagePlays.plays - 1)
        )


def public_info(session: Session, campaign: Campaign) -> CampaignPublic:
    """The campaign as its players' page shows it (the sample image is for MTurk previews)."""
    sample = session.scalar(
        select(Image.id)
        .where(Image.image_set_id == campaign.image_set_id, Image.is_catch.is_(False))
        .order_by(Image.id)
        .limit(1)
    )
    return CampaignPublic(
        slug=campaign.slug,
        name=campaign.name,
        consent_text=campaign.consent_text,
        instructions_text=campaign.instructions_text,
        time_limit_ms=campaign.time_limit_ms,
        top_k=campaign.top_k,
        images_per_player=campaign.max_images_per_player,
        sample_image_url=f"/api/images/{sample}/file" if sample is not None else None,
    )
