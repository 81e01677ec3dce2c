"""The leaderboard: players ranked by total score over finished rounds (ties share a rank).

Two stores behind one interface, ``LeaderboardStore``: ``SqlLeaderboard`` (the embedded default)
asks the database on every read; ``RedisLeaderboard`` (with CLICKME_REDIS_URL) keeps each
player's total score and round count in Redis, raised after every commit that ends one of their
rounds and rebuilt from the database when missing (a Redis restart).
"""

import logging
from typing import Protocol

from redis import Redis, RedisError
from sqlalchemy import Select, Subquery, func, select
from sqlalchemy.orm import Session

from clickme.core.db import Database
from clickme.core.shared_store import redis_key
from clickme.game.models import Round
from clickme.game.schemas import Leaderboard, LeaderboardEntry
from clickme.players.models import Player

log = logging.getLogger(__name__)


def _totals() -> Select:
    """Each player's total score and count of finished rounds."""
    return (
        select(
            Round.player_id.label("player_id"),
            func.sum(Round.score).label("score"),
            func.count(Round.id).label("rounds"),
        )
        .where(Round.outcome.is_not(None))
        .group_by(Round.player_id)
    )


def _ranked_totals() -> Subquery:
    totals = _totals().subquery()
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


def leaderboard(session: Session, player_id: int | None, limit: int) -> Leaderboard:
    """The top players, and the asking player's own entry and rank."""
    ranked = _ranked_totals()
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
    def read(self, session: Session, player_id: int | None, limit: int) -> Leaderboard:
        """The top ``limit`` players and the asking player's entry (as ``leaderboard``)."""
        ...

    def player_changed(self, player_id: int) -> None:
        """A committed transaction ended one of the player's rounds."""
        ...


class SqlLeaderboard:
    """The database answers every read."""

    def read(self, session: Session, player_id: int | None, limit: int) -> Leaderboard:
        return leaderboard(session, player_id, limit)

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
REBUILD_CHUNK = 1000
# One process rebuilds a missing board at a time; the others answer from the database meanwhile.
REBUILD_LOCK_S = 30


def _member(player_id: int) -> str:
    """Fixed-width, so that Redis's order of tied members is the order of player ids."""
    return f"{player_id:015d}"


class RedisLeaderboard:
    """Totals in Redis, shared by every API process.

    Scores are stored negated, so that ZRANGE lists the best first and ties by player id, the
    order of the SQL query. Every write raises a player's values to a total just read from the
    database (never lowers them), so repeated, reordered or concurrent writes and rebuilds all
    converge on the database's totals. A write that cannot reach Redis marks the board stale:
    the next time Redis answers, the board is rebuilt.
    """

    def __init__(self, redis: Redis, prefix: str, database: Database) -> None:
        self._redis = redis
        self._database = database
        self._scores = redis_key(prefix, "leaderboard", "scores")
        self._rounds = redis_key(prefix, "leaderboard", "rounds")
        self._ready = redis_key(prefix, "leaderboard", "ready")
        self._rebuilding = redis_key(prefix, "leaderboard", "rebuilding")
        self._raise = redis.register_script(_RAISE_TOTALS)
        self._read_board = redis.register_script(_READ_BOARD)
        self._stale = False

    def player_changed(self, player_id: int) -> None:
        with self._database.session() as session:
            totals = session.execute(_totals().where(Round.player_id == player_id)).all()
        try:
            self._forget_if_stale()
            self._raise_totals(totals)
        except RedisError as exc:  # the round is stored: the board catches up when Redis is back
            self._stale = True
            log.warning("leaderboard update for player %s failed: %s", player_id, exc)

    def read(self, session: Session, player_id: int | None, limit: int) -> Leaderboard:
        self._forget_if_stale()
        if not self._redis.exists(self._ready):
            if not self._redis.set(self._rebuilding, "1", nx=True, ex=REBUILD_LOCK_S):
                return leaderboard(session, player_id, limit)
            self._rebuild(session)
        top, mine = self._read_board(
            keys=[self._scores, self._rounds],
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

    def _raise_totals(self, totals: list) -> None:
        """Raise the players' entries to these totals (rows of ``_totals``)."""
        args = [
            value for row in totals for value in (_member(row.player_id), -row.score, row.rounds)
        ]
        if args:
            self._raise(keys=[self._scores, self._rounds], args=args)

    def _rebuild(self, session: Session) -> None:
        totals = session.execute(_totals()).all()
        for start in range(0, len(totals), REBUILD_CHUNK):
            self._raise_totals(totals[start : start + REBUILD_CHUNK])
        with self._redis.pipeline() as pipe:
            pipe.set(self._ready, "1").delete(self._rebuilding).execute()

    def _forget_if_stale(self) -> None:
        """After a failed write, make the next read rebuild the board."""
        if self._stale:
            self._redis.delete(self._ready)
            self._stale = False


def leaderboard_store(redis: Redis | None, prefix: str, database: Database) -> LeaderboardStore:
    """Totals in Redis when there is one (shared by the processes), else the SQL query."""
    return RedisLeaderboard(redis, prefix, database) if redis is not None else SqlLeaderboard()
