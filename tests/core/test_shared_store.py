"""Commands on the connection each thread keeps (``ThreadsConnections``): one connection per
thread, used again and again; a connection the server dropped replaced, its command sent once
more; errors as redis-py raises them."""

import threading

import pytest
import redis

from clickme.core.shared_store import ThreadsConnections, redis_key


def test_each_thread_keeps_one_connection_of_the_pool(redis_client: redis.Redis) -> None:
    commands = ThreadsConnections(redis_client)
    mine = {commands.execute("CLIENT", "ID") for _ in range(3)}
    theirs: list[int] = []
    thread = threading.Thread(target=lambda: theirs.append(commands.execute("CLIENT", "ID")))
    thread.start()
    thread.join()
    assert len(mine) == 1 and theirs and theirs[0] not in mine


def test_a_connection_the_server_dropped_is_replaced_and_the_command_sent_again(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    commands = ThreadsConnections(redis_client)
    key = redis_key(redis_prefix, "counter")
    assert commands.execute("INCR", key) == 1
    dropped = commands.execute("CLIENT", "ID")
    assert redis_client.client_kill_filter(_id=dropped) == 1
    assert commands.execute("INCR", key) == 2  # counted once, on a new connection
    assert commands.execute("CLIENT", "ID") != dropped


def test_errors_are_redis_pys_and_a_refused_command_leaves_the_connection_usable(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    commands = ThreadsConnections(redis_client)
    key = redis_key(redis_prefix, "text")
    commands.execute("SET", key, "not a number")
    with pytest.raises(redis.ResponseError):
        commands.execute("INCR", key)
    assert commands.execute("GET", key) == "not a number"
    nowhere = redis.Redis(port=1, socket_connect_timeout=1)
    with pytest.raises(redis.ConnectionError):
        ThreadsConnections(nowhere).execute("PING")


def test_a_script_runs_by_its_hash_on_the_threads_connection_and_is_loaded_when_missing(
    redis_client: redis.Redis, redis_prefix: str
) -> None:
    commands = ThreadsConnections(redis_client)
    script = redis_client.register_script("return redis.call('INCR', KEYS[1])")
    key = redis_key(redis_prefix, "scripted")
    redis_client.script_flush()  # a new or restarted Redis: the client loads it
    assert commands.run_script(script, [key], []) == 1
    mine = commands.execute("CLIENT", "ID")
    assert commands.run_script(script, [key], []) == 2
    (entry,) = redis_client.client_list(client_id=[mine])
    assert entry["cmd"] == "evalsha"  # the last command of this thread's connection
