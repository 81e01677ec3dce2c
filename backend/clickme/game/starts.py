"""A round's start: a new round on the image the campaign assigns (``new_round``), then its
clock, started when its photo is on the player's screen (``start_clock``). Blocking work, for
the reveal threads; the routes and the fast path (``clickme.game.fast_path``) both answer with
it."""

from sqlalchemy.orm import Session

from clickme.campaigns import service as campaigns
from clickme.core.db import utcnow
from clickme.game import reveal, service
from clickme.game.deps import GameRuntime
from clickme.game.schemas import Brush, ImageRef, RoundClock, RoundCreate, RoundOut
from clickme.game.threads import in_player_session, in_session
from clickme.images.display import display_url
from clickme.images.labels import class_name, class_names_shown
from clickme.players.identity import PlayerToken
from clickme.players.ratelimit import enforce


def admitted(runtime: GameRuntime, body: RoundCreate) -> str:
    """The campaign slug a new round is asked in, refused first thing (before the player is
    read) while its DNN is saturated, when this process knows which DNN that is."""
    slug = body.campaign or campaigns.DEFAULT_CAMPAIGN_SLUG
    reveal.admit_new_round_early(runtime, slug)
    return slug


def new_round(
    runtime: GameRuntime, slug: str, body: RoundCreate, player: PlayerToken, ip_hash: str
) -> RoundOut:
    """A new round for the player in the campaign, in a session of its own (``_new_round``)."""
    return in_session(runtime, _new_round, runtime, slug, body, player, ip_hash)


def _new_round(
    session: Session,
    runtime: GameRuntime,
    slug: str,
    body: RoundCreate,
    player: PlayerToken,
    ip_hash: str,
) -> RoundOut:
    """Whose first query checks the cookie's token epoch (``service.campaign_for_player``)."""
    found = service.campaign_for_player(session, player.player_id, player.epoch, slug)
    enforce(runtime.limiter, runtime.limits.rounds_per_ip, ip_hash)
    campaign, model = campaigns.playable(slug, *found)  # model held: get_campaign_with_model
    reveal.admit_new_round_of(runtime, slug, model.name)
    new = service.start_round(
        session,
        player.player_id,
        campaign,
        (body.viewport_width, body.viewport_height),
        runtime.map_rules,
        runtime.settings.round_grace_ms,
        runtime.settings.round_start_bound_s,
    )
    rule, image = campaigns.reveal_rule(campaign), new.image
    return RoundOut(
        round_id=new.id,
        campaign=campaign.slug,
        image=ImageRef(
            id=image.id,
            url=display_url(image, runtime.settings.display_max_side),
            width=image.width,
            height=image.height,
        ),
        class_name=class_name(image.class_index),
        class_label=class_names_shown(image.class_index),
        time_limit_ms=campaign.time_limit_ms,
        top_k=campaign.top_k,
        brush=Brush(radius_px=rule.radius_px(image.width, image.height), softness=rule.softness),
        start_within_ms=round(runtime.settings.round_start_bound_s * 1000),
        repeat=new.repeat,
    )


def start_clock(runtime: GameRuntime, round_id: int, player: PlayerToken) -> RoundClock:
    """The start call (blocking): the round's photo is on the player's screen, its clock starts
    (once) and its facts, now fixed, are kept (the round's first batch does not read them
    again). The hot path (``service.start_clock_now``) for a round whose clock this process has
    not seen start, else ``service.show_round`` in a session, which says why it cannot start."""
    started = None
    if runtime.rounds.get(round_id) is None:
        started = service.start_clock_now(
            runtime.database,
            round_id,
            player.player_id,
            player.epoch,
            runtime.settings.round_start_bound_s,
        )
    if started is None:
        return in_player_session(
            runtime, player, _start_clock_in_session, runtime, round_id, player.player_id
        )
    reveal.keep_facts(runtime, started)
    return service.round_clock(started, utcnow())


def _start_clock_in_session(
    session: Session, runtime: GameRuntime, round_id: int, player_id: int
) -> RoundClock:
    facts = reveal.round_facts(runtime, round_id, player_id, session)
    clock, started = service.show_round(
        session, facts, runtime.map_rules, runtime.settings.round_start_bound_s
    )
    session.commit()
    reveal.keep_facts(runtime, started)
    return clock
