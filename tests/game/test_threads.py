"""Each round route and each reveal does its blocking work in one hop to the runtime's reveal
threads, and none in FastAPI's thread pool (a hop per sync dependency and route, dearer)."""

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from types import SimpleNamespace

import anyio.to_thread
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from clickme.core.futures import Reply
from clickme.core.work_threads import WorkThreads
from clickme.game.models import Round
from clickme.game.threads import settled_off_loop
from clickme.players.models import Player
from tests.game.test_routes import send


class CountingExecutor(WorkThreads):
    """The runtime's reveal threads, counting the work handed to them."""

    def __init__(self, inner: WorkThreads) -> None:
        self.inner = inner
        self.hops = 0

    def post(self, work: Callable[[], object]) -> None:
        self.hops += 1
        self.inner.post(work)

    def submit(self, fn: Callable, /, *args: object, **kwargs: object) -> Future:  # type: ignore[override]
        self.hops += 1
        return self.inner.submit(fn, *args, **kwargs)


@pytest.fixture
def hops(player: TestClient, monkeypatch: pytest.MonkeyPatch) -> dict[str, CountingExecutor | list]:
    runtime = player.app.state.runtime  # type: ignore[attr-defined]
    counting = CountingExecutor(runtime.reveal_threads)
    monkeypatch.setattr(runtime, "reveal_threads", counting)
    anyio_hops: list[object] = []
    real_run_sync = anyio.to_thread.run_sync

    async def run_sync(func: Callable, *args: object, **kwargs: object) -> object:
        anyio_hops.append(func)
        return await real_run_sync(func, *args, **kwargs)

    monkeypatch.setattr(anyio.to_thread, "run_sync", run_sync)
    return {"reveal": counting, "anyio": anyio_hops}


def test_every_round_request_takes_one_hop_and_no_anyio_thread(
    player: TestClient, hops: dict
) -> None:
    counting: CountingExecutor = hops["reveal"]

    def one_hop(method: str, path: str, body: dict | None = None) -> dict:
        before = counting.hops
        response = player.request(method, path, json=body)
        assert response.status_code in (200, 201), response.text
        assert counting.hops - before == 1, (path, counting.hops - before)
        return response.json()

    round_id = one_hop("POST", "/api/rounds", {"viewport_width": 1280})["round_id"]
    one_hop("POST", f"/api/rounds/{round_id}/start")
    before = counting.hops
    assert send(player, round_id, 1, [[5, 5, 10]]).status_code == 200
    assert counting.hops - before == 1
    one_hop("GET", f"/api/rounds/{round_id}")
    one_hop("POST", f"/api/rounds/{round_id}/skip")
    round_id = one_hop("POST", "/api/rounds", {"viewport_width": 1280})["round_id"]
    one_hop("POST", f"/api/rounds/{round_id}/start")
    assert hops["anyio"] == []


def test_a_reveal_is_sent_to_the_dnn_from_its_store_hop(
    player: TestClient, hops: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's thread sends what the DNN is to see (the event loop is woken once, when the
    DNN has answered, not also between the store and the send)."""
    scorer = player.app.state.runtime.scorer  # type: ignore[attr-defined]
    real_send = scorer.send
    senders: list[str] = []

    def recording(image: object) -> Future:
        senders.append(threading.current_thread().name)
        return real_send(image)

    monkeypatch.setattr(scorer, "send", recording)
    round_id = player.post("/api/rounds", json={"viewport_width": 1280}).json()["round_id"]
    assert player.post(f"/api/rounds/{round_id}/start").status_code == 200
    assert send(player, round_id, 1, [[5, 5, 10]]).status_code == 200
    assert send(player, round_id, 2, [[9, 9, 60]]).status_code == 200
    assert len(senders) == 2 and all(name.startswith("reveal") for name in senders), senders


async def test_work_whose_caller_gave_up_before_it_started_never_runs() -> None:
    """Past saturation the reveal threads may be busy longer than a reveal waits: a reveal
    answered 503 meanwhile stores nothing later (its client sends the same batch again)."""
    busy, ran = threading.Event(), []
    runtime = SimpleNamespace(reveal_threads=WorkThreads(1, "reveal"))
    runtime.reveal_threads.submit(busy.wait, 5)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await settled_off_loop(runtime, lambda reply: ran.append(reply))  # type: ignore[arg-type]
    busy.set()
    runtime.reveal_threads.shutdown(wait=True)
    assert ran == []
    answered = WorkThreads(1, "reveal")
    runtime.reveal_threads = answered
    assert await settled_off_loop(runtime, lambda reply: reply(7)) == 7  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="refused"):
        await settled_off_loop(runtime, lambda reply: reply(ValueError("refused")))  # type: ignore[arg-type]
    answered.shutdown()


async def test_a_follower_of_work_whose_caller_gave_up_is_cancelled() -> None:
    """A reveal answered 503 while the DNN has its image: the DNN's answer to come is cancelled
    (left out of its batch), whether the caller gave up before it was sent or after."""
    runtime = SimpleNamespace(reveal_threads=WorkThreads(1, "reveal"))
    sent_before, sent_after = Future(), Future()
    started = threading.Event()

    def work(reply: Reply[int]) -> None:
        reply.cancels(sent_before)
        started.set()
        time.sleep(0.2)  # the caller gives up meanwhile
        reply.cancels(sent_after)
        reply(1)

    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await settled_off_loop(runtime, work)  # type: ignore[arg-type]
    runtime.reveal_threads.shutdown(wait=True)
    assert started.is_set() and sent_before.cancelled() and sent_after.cancelled()


async def test_an_answer_given_on_the_loops_own_thread_settles_at_once() -> None:
    """The scorer's answers are read on the loop: the reveal's reply is then settled there and
    then, without a wake of the loop through its self-pipe; from another thread, as before."""
    here: Reply[int] = Reply(asyncio.get_running_loop())
    here(7)
    assert here.waiter.done() and here.waiter.result() == 7  # no turn of the loop in between
    there: Reply[int] = Reply(asyncio.get_running_loop())
    await asyncio.to_thread(there, 8)
    assert await there.waiter == 8


def test_every_round_route_refuses_a_cookie_of_an_older_token_epoch(
    player: TestClient, hops: dict
) -> None:
    """The hop's session checks the cookie's epoch first: a forgotten player's old cookie is
    refused on every round route, and changes nothing."""
    round_id = player.post("/api/rounds", json={"viewport_width": 1280}).json()["round_id"]
    database = player.app.state.runtime.database  # type: ignore[attr-defined]
    with database.session() as session:
        session.execute(update(Player).values(token_epoch=Player.token_epoch + 1))
    for method, path in (
        ("POST", "/api/rounds"),
        ("POST", f"/api/rounds/{round_id}/start"),
        ("POST", f"/api/rounds/{round_id}/skip"),
        ("POST", f"/api/rounds/{round_id}/finish"),
        ("GET", f"/api/rounds/{round_id}"),
    ):
        refused = player.request(method, path, json={} if path == "/api/rounds" else None)
        assert refused.status_code == 401, (path, refused.text)
        assert refused.json()["error"]["code"] == "no_player"
    with database.session() as session:
        round_ = session.get_one(Round, round_id)
        assert (round_.shown_at, round_.outcome) == (None, None)
