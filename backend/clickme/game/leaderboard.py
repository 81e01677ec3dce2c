"""Leaderboards: players ranked by total score over finished rounds (ties share a rank), one
per campaign and one over every campaign (the demo's). Excluded players and players with an
open hiding flag (``clickme.players.service.HIDING_FLAGS``) are on none.

Two stores behind one interface, ``LeaderboardStore``: ``SqlLeaderboard`` (the embedded default)
asks the database on every read; ``RedisLeaderboard`` (with CLICKME_REDIS_URL) keeps each
player's total score and round count per board in Redis, raised after every commit that ends
one of their rounds, removed (and restored) after a commit that hides (or shows) them, and
rebuilt from the database when missing (a Redis restart).
"""

import logging
from collections.abc import Sequence
from typing import NamedTuple, Protocol

from redis import Redis, RedisError
from redis.typing import EncodableT
from sqlalchemy import Integer, Row, Select, Subquery, bindparam, case, exists, func, select
from sqlalchemy.orm import Session

from clickme.core.db import Database
from clickme.core.shared_store import ThreadsConnections, redis_key
from clickme.game.models import Round
from clickme.game.outcomes import COUNTED
from clickme.game.schemas import Leaderboard, LeaderboardEntry
from clickme.players.models import Player
from clickme.players.service import hidden_player_ids

log = logging.getLogger(__name__)


def _totals(campaign_id: int | None) -> Select:
    """Each shown player's total score and count of finished rounds that count (repeats pay
    nothing), in the campaign (None: in every campaign)."""
    query = (
        select(
            Round.player_id.label("player_id"),
            func.sum(Round.score).label("score"),
            func.count(Round.id).label("rounds"),
        )
        .where(Round.outcome.is_not(None), COUNTED, Round.player_id.not_in(hidden_player_ids()))
        .group_by(Round.player_id)
    )
    if campaign_id is not None:
        query = query.where(Round.campaign_id == campaign_id)
    return query


def _player_boards() -> Select:
    """In one query, per campaign the player (``:player_id``) has rounds in: their total score
    and count of finished rounds that count, and whether they are hidden (the same on every
    row)."""
    counts = Round.outcome.is_not(None) & COUNTED
    hidden = hidden_player_ids().subquery()
    player_id = bindparam("player_id", type_=Integer)
    return (
        select(
            Round.campaign_id,
            func.sum(case((counts, func.coalesce(Round.score, 0)), else_=0)).label("score"),
            func.sum(case((counts, 1), else_=0)).label("rounds"),
            exists(hidden.select().where(hidden.c.player_id == player_id)).label("hidden"),
        )
        .where(Round.player_id == player_id)
        .group_by(Round.campaign_id)
    )


_PLAYER_BOARDS = _player_boards()  # built once: it runs after every ended round


class _PlayerBoards(NamedTuple):
    """The boards a player's entry changes on, with their total score and rounds on each
    (None: the global board); hidden, every board they may be on, to leave."""

    hidden: bool
    totals: dict[int | None, tuple[int, int]]


def _boards_of(rows: Sequence[Row]) -> _PlayerBoards:
    """``_player_boards``' rows as boards: a shown player is on each campaign's board where a
    round counts, and on the global one with the sum (scores and round counts add up)."""
    hidden = any(row.hidden for row in rows)
    counted = [row for row in rows if hidden or row.rounds]
    totals: dict[int | None, tuple[int, int]] = {
        row.campaign_id: (int(row.score), int(row.rounds)) for row in counted
    }
    if counted:
        totals[None] = (sum(s for s, _r in totals.values()), sum(r for _s, r in totals.values()))
    return _PlayerBoards(hidden, totals)


def _ranked_totals(campaign_id: int | None) -> Subquery:
    totals = _totals(campaign_id).subquery()
    return (
        select(
            totals,
            Player.display_name,
            func.rank().over(order_by=totals.c.score.desc()).label("rank"),
        )
        .join(Player, Player.id == totals.c.player_id)
        .subquery()
    )


def _entry(row, player_id: int | None) -> LeaderboardEntry:
    return LeaderboardEntry(
        rank=row.rank,
        display_name=row.display_name,
        score=row.score,
        rounds=row.rounds,
        is_me=row.player_id == player_id,
    )


def leaderboard(
    session: Session, player_id: int | None, limit: int, campaign_id: int | None = None
) -> Leaderboard:
    """The campaign's (None: the global) top players, and the asking player's entry and rank."""
    ranked = _ranked_totals(campaign_id)
    top = session.execute(
        select(ranked).order_by(ranked.c.rank, ranked.c.player_id).limit(limit)
    ).all()
    mine = None
    if player_id is not None:
        mine = session.execute(select(ranked).where(ranked.c.player_id == player_id)).first()
    return Leaderboard(
        top=[_entry(row, player_id) for row in top],
        me=_entry(mine, player_id) if mine else None,
    )


class LeaderboardStore(Protocol):
    def read(
        self, session: Session, player_id: int | None, limit: int, campaign_id: int | None
    ) -> Leaderboard:
        """The top ``limit`` players and the asking player's entry (as ``leaderboard``)."""
        ...

    def player_changed(self, player_id: int) -> None:
        """A committed transaction ended one of the player's rounds, or hid or showed them."""
        ...


class SqlLeaderboard:
    """The database answers every read."""

    def read(
        self, session: Session, player_id: int | None, limit: int, campaign_id: int | None
    ) -> Leaderboard:
        return leaderboard(session, player_id, limit, campaign_id)

    def player_changed(self, player_id: int) -> None:
        """Nothing kept, nothing to update."""


# KEYS[1]: negated total scores (a sorted set), KEYS[2]: round counts (a hash), by member;
# ARGV: member, negated score, rounds, member, ... Each value only ever rises to the new one.
_RAISE_TOTALS = """
for i = 1, #ARGV, 3 do
  redis.call('ZADD', KEYS[1], 'LT', ARGV[i + 1], ARGV[i])
  local held = tonumber(redis.call('HGET', KEYS[2], ARGV[i]) or '0')
  if tonumber(ARGV[i + 2]) > held then
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 2])
  end
end
"""
# KEYS: as above; ARGV: limit, the asking member ('' for none). Returns {{member, negated score,
# rounds}...} for the top, and {member, negated score, rounds, players ahead} or nil for mine.
_READ_BOARD = """
local top = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1, 'WITHSCORES')
local entries = {}
for i = 1, #top, 2 do
  entries[#entries + 1] = {top[i], top[i + 1], redis.call('HGET', KEYS[2], top[i]) or '0'}
end
local mine = false
if ARGV[2] ~= '' then
  local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
  if score then
    local rounds = redis.call('HGET', KEYS[2], ARGV[2]) or '0'
    mine = {ARGV[2], score, rounds, redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. score)}
  end
end
return {entries, mine}
"""
# KEYS: each board's scores and rounds keys in turn; ARGV[1]: the member; ARGV[2]: '1' to remove
# it from every board, else its negated score and rounds on the k-th board in ARGV[2k + 1] and
# ARGV[2k + 2], each value only ever raised (as above).
_SET_MEMBER = """
for i = 1, #KEYS, 2 do
  if ARGV[2] == '1' then
    redis.call('ZREM', KEYS[i], ARGV[1])
    redis.call('HDEL', KEYS[i + 1], ARGV[1])
  else
    redis.call('ZADD', KEYS[i], 'LT', ARGV[i + 2], ARGV[1])
    local held = tonumber(redis.call('HGET', KEYS[i + 1], ARGV[1]) or '0')
    if tonumber(ARGV[i + 3]) > held then
      redis.call('HSET', KEYS[i + 1], ARGV[1], ARGV[i + 3])
    end
  end
end
"""
REBUILD_CHUNK = 1000
GLOBAL_BOARD = "all"
# One process rebuilds a missing board at a time; the others answer from the database meanwhile.
REBUILD_LOCK_S = 30


def _member(player_id: int) -> str:
    """Fixed-width, so that Redis's order of tied members is the order of player ids."""
    return f"{player_id:015d}"


def _board(campaign_id: int | None) -> str:
    return GLOBAL_BOARD if campaign_id is None else str(campaign_id)


class RedisLeaderboard:
    """Totals in Redis per board (the global one, one per campaign), shared by every API
    process.

    Scores are stored negated, so that ZRANGE lists the best first and ties by player id, the
    order of the SQL query. Every write raises a player's values to a total just read from the
    database (never lowers them), so repeated, reordered or concurrent writes and rebuilds all
    converge on the database's totals; a hidden player is removed from every board. A write
    that cannot reach Redis marks the boards stale: the next time Redis answers, each is
    rebuilt.
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        database: Database,
        commands: ThreadsConnections | None = None,
    ) -> None:
        """``commands``: the client's connections kept by thread, when shared with others."""
        self._redis = redis
        self._database = database
        self._prefix = prefix
        self._raise = redis.register_script(_RAISE_TOTALS)
        self._read_board = redis.register_script(_READ_BOARD)
        self._set_member = redis.register_script(_SET_MEMBER)
        self._commands = commands or ThreadsConnections(redis)  # ``player_changed``, every round
        self._stale = False

    def _keys(self, campaign_id: int | None) -> list[str]:
        """The board's scores and rounds keys."""
        board = _board(campaign_id)
        return [
            redis_key(self._prefix, "leaderboard", board, "scores"),
            redis_key(self._prefix, "leaderboard", board, "rounds"),
        ]

    def _ready(self, campaign_id: int | None) -> str:
        return redis_key(self._prefix, "leaderboard", _board(campaign_id), "ready")

    def _rebuilding(self, campaign_id: int | None) -> str:
        return redis_key(self._prefix, "leaderboard", _board(campaign_id), "rebuilding")

    def player_changed(self, player_id: int) -> None:
        """After every round a player ends, or a change of their standing: their entries raised
        to their totals on their boards or, hidden, removed from every board they may be on; one
        query and one Redis call (the script by its hash, on this thread's connection)."""
        boards = _boards_of(self._database.rows_of(_PLAYER_BOARDS, {"player_id": player_id}))
        args: list[EncodableT] = [_member(player_id), "1" if boards.hidden else "0"]
        args += [value for score, rounds in boards.totals.values() for value in (-score, rounds)]
        try:
            self._forget_if_stale()
            if boards.totals:
                keys = [key for board in boards.totals for key in self._keys(board)]
                self._commands.run_script(self._set_member, keys, args)
        except RedisError as exc:  # the round is stored: the board catches up when Redis is back
            self._stale = True
            log.warning("leaderboard update for player %s failed: %s", player_id, exc)

    def read(
        self, session: Session, player_id: int | None, limit: int, campaign_id: int | None
    ) -> Leaderboard:
        self._forget_if_stale()
        if not self._redis.exists(self._ready(campaign_id)):
            if not self._redis.set(self._rebuilding(campaign_id), "1", nx=True, ex=REBUILD_LOCK_S):
                return leaderboard(session, player_id, limit, campaign_id)
            self._rebuild(session, campaign_id)
        top, mine = self._read_board(
            keys=self._keys(campaign_id),
            args=[limit, "" if player_id is None else _member(player_id)],
        )
        ids = [int(entry[0]) for entry in top] + ([int(mine[0])] if mine else [])
        names = dict(
            session.execute(select(Player.id, Player.display_name).where(Player.id.in_(ids))).all()
        )
        entries, rank, previous = [], 0, None
        for position, (member, score, rounds) in enumerate(top, start=1):
            rank = rank if score == previous else position
            previous = score
            entries.append(self._entry(member, score, rounds, rank, names, player_id))
        me = None
        if mine:
            member, score, rounds, ahead = mine
            me = self._entry(member, score, rounds, int(ahead) + 1, names, player_id)
        return Leaderboard(top=entries, me=me)

    @staticmethod
    def _entry(
        member: str, score: str, rounds: str, rank: int, names: dict[int, str], me: int | None
    ) -> LeaderboardEntry:
        player_id = int(member)
        return LeaderboardEntry(
            rank=rank,
            display_name=names[player_id],
            score=-int(float(score)),
            rounds=int(rounds),
            is_me=player_id == me,
        )

    def _raise_totals(self, campaign_id: int | None, totals: Sequence[Row]) -> None:
        """Raise the players' entries on the board to these totals (rows of ``_totals``)."""
        args = [
            value for row in totals for value in (_member(row.player_id), -row.score, row.rounds)
        ]
        if args:
            self._raise(keys=self._keys(campaign_id), args=args)

    def _rebuild(self, session: Session, campaign_id: int | None) -> None:
        self._redis.delete(*self._keys(campaign_id))  # hidden players leave with the old board
        totals = session.execute(_totals(campaign_id)).all()
        for start in range(0, len(totals), REBUILD_CHUNK):
            self._raise_totals(campaign_id, totals[start : start + REBUILD_CHUNK])
        with self._redis.pipeline() as pipe:
            pipe.set(self._ready(campaign_id), "1")
            pipe.delete(self._rebuilding(campaign_id))
            pipe.execute()

    def _forget_if_stale(self) -> None:
        """After a failed write, make the next read of each board rebuild it."""
        if self._stale:
            pattern = redis_key(self._prefix, "leaderboard", "*", "ready")
            for key in self._redis.scan_iter(match=pattern):
                self._redis.delete(key)
            self._stale = False


def leaderboard_store(
    redis: Redis | None,
    prefix: str,
    database: Database,
    commands: ThreadsConnections | None = None,
) -> LeaderboardStore:
    """Totals in Redis when there is one (shared by the processes), else the SQL query."""
    if redis is None:
        return SqlLeaderboard()
    return RedisLeaderboard(redis, prefix, database, commands)
