"""The function clock inside a process (``function_clock.py`` as its ``sitecustomize``) and the
function benchmark's report."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from benchmarks.bench_functions import Side, clock_environment, report

# A process that imports a module of its own, calls its functions, then asks its clock for a
# dump (as ``bench_functions.py`` does from outside) and prints it.
_PROGRAM = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pathlib import Path
    import clocked_module

    for _ in range(3):
        clocked_module.spin(0.02)
    clocked_module.Holder.static_spin(0.01)

    async def beside_another_task():
        async def other():  # spins 0.1 s while the clocked coroutine waits
            await asyncio.sleep(0.05)
            until = time.thread_time() + 0.1
            while time.thread_time() < until:
                pass

        await asyncio.gather(clocked_module.waits_then_spins(0.3, 0.02), other())

    asyncio.run(beside_another_task())
    folder = Path(sys.argv[2])
    (folder / "dump").touch()
    target = folder / f"clock-{__import__('os').getpid()}.json"
    deadline = time.monotonic() + float(sys.argv[3])
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    print(target.read_text() if target.exists() else "{}")
    """
)
_MODULE = textwrap.dedent(
    """
    import asyncio, time

    def spin(seconds):
        until = time.thread_time() + seconds
        while time.thread_time() < until:
            pass

    class Holder:
        @staticmethod
        def static_spin(seconds):
            spin(seconds)

    async def waits_then_spins(wait_s, spin_s):
        await asyncio.sleep(wait_s)  # not on this thread's CPU: not counted
        spin(spin_s)
    """
)


def _clocked_run(tmp_path: Path, names: list[str], command: str, wait_s: float = 10) -> dict:
    """What the program's clock dumped ({} when none answered within ``wait_s``)."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "clocked_module.py").write_text(_MODULE)
    folder = tmp_path / "clock"
    folder.mkdir()
    env = clock_environment(folder, names, str(tmp_path / "code"))
    result = subprocess.run(
        [sys.executable, "-c", _PROGRAM, command, str(folder), str(wait_s)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_each_named_function_adds_its_calls_and_its_thread_cpu(tmp_path: Path) -> None:
    names = [
        "clocked_module:spin",
        "clocked_module:Holder.static_spin",
        "clocked_module:waits_then_spins",
        "clocked_module:gone",
        "no_such_module:spin",
    ]
    sums = _clocked_run(tmp_path, names, "serve")
    spin = sums["clocked_module:spin"]
    # three calls of 20 ms, the static method's 10 ms and the coroutine's 20 ms: each inclusive
    assert (spin["state"], spin["calls"]) == ("wrapped", 5)
    assert 0.07 <= spin["cpu_ns"] / 1e9 < 0.2
    static = sums["clocked_module:Holder.static_spin"]
    assert static["calls"] == 1 and 0.01 <= static["cpu_ns"] / 1e9 < 0.05
    coroutine = sums["clocked_module:waits_then_spins"]
    assert coroutine["calls"] == 1
    # neither its 0.3 s asleep nor the other task's 0.1 s spun meanwhile is counted
    assert 0.02 <= coroutine["cpu_ns"] / 1e9 < 0.08
    assert sums["clocked_module:gone"]["state"] == "missing"
    assert sums["no_such_module:spin"]["state"] == "missing"


def test_a_process_of_another_command_runs_without_the_clock(tmp_path: Path) -> None:
    assert _clocked_run(tmp_path, ["clocked_module:spin"], "worker", wait_s=1.0) == {}


def test_the_report_gives_calls_cpu_per_call_and_per_reveal_beside_the_whole_process() -> None:
    side = Side("this code", "http://x", 1, Path("."), reveals=200, api_cpu_s=0.6)
    side.sums = {
        "m:f": {"state": "wrapped", "calls": 400, "cpu_ns": 40_000_000},
        "m:g": {"state": "missing", "calls": 0, "cpu_ns": 0},
    }
    table = report([side], ["m:f", "m:g"]).splitlines()
    assert table[2] == "| `m:f` | 2.000 / 100 / 0.200 |"
    assert table[3] == "| `m:g` | missing |"
    assert table[4] == "| the API process, all threads | 3.00 ms (200 reveals) |"
