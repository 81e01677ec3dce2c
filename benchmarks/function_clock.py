"""Each named function's CPU on its own thread, summed inside a running process.

Installed as a ``sitecustomize`` by ``bench_functions.py`` (a folder holding a copy of this file
under that name, first on the process's ``PYTHONPATH``): in a process whose command line names
``CLICKME_FUNCTION_CLOCK_COMMAND`` it wraps each function that ``CLICKME_FUNCTION_CLOCK_NAMES``
names (``module:function`` or ``module:Class.method``, comma-separated) once its module is
imported, so every call adds its thread CPU (``time.thread_time_ns``, inclusive of what it calls)
and one call to the function's count. A name whose module or attribute is missing is skipped
and reported as such, so the same list runs beside older code. Nothing here reads the process's
own CPU: a thread polls ``CLICKME_FUNCTION_CLOCK_DIR`` five times a second, and a file named
``clear`` there zeroes the sums, one named ``dump`` writes them to ``clock-<pid>.json``.
A coroutine function's call counts the CPU of its steps only (from each resumption to its next
suspension), so the time it waits, when other tasks run, is not counted.
"""

import functools
import importlib.abc
import importlib.machinery
import inspect
import json
import os
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

POLL_S = 0.2
_lock = threading.Lock()
_sums: dict[str, list[int]] = {}  # name -> [calls, thread CPU ns]
_states: dict[str, str] = {}  # name -> "wrapped" or "missing"


def clocked(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """``function``, adding each call's thread CPU to ``name``'s sum."""
    sums = _sums.setdefault(name, [0, 0])

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time_ns()
        try:
            return function(*args, **kwargs)
        finally:
            spent = time.thread_time_ns() - started
            with _lock:
                sums[0] += 1
                sums[1] += spent

    return wrapper


class _Stepped:
    """An awaitable driving a coroutine, adding the thread CPU of each of its steps."""

    def __init__(self, coroutine: Any, sums: list[int]) -> None:
        self.coroutine = coroutine
        self.sums = sums

    def __await__(self) -> Generator[Any, Any, Any]:
        sent: Any = None
        thrown: BaseException | None = None
        while True:
            started = time.thread_time_ns()
            try:
                if thrown is None:
                    yielded = self.coroutine.send(sent)
                else:
                    yielded = self.coroutine.throw(thrown)
            except StopIteration as stop:
                self._add(started, last=True)
                return stop.value
            except BaseException:
                self._add(started, last=True)
                raise
            self._add(started)
            sent, thrown = None, None
            try:
                sent = yield yielded
            except BaseException as error:  # the task's cancellation, passed on
                thrown = error

    def _add(self, started: int, last: bool = False) -> None:
        spent = time.thread_time_ns() - started
        with _lock:
            self.sums[0] += last
            self.sums[1] += spent


def clocked_coroutine(name: str, function: Callable[..., Awaitable[Any]]) -> Callable[..., Any]:
    """``function`` (a coroutine function), adding its steps' thread CPU to ``name``'s sum."""
    sums = _sums.setdefault(name, [0, 0])

    @functools.wraps(function)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await _Stepped(function(*args, **kwargs), sums)

    return wrapper


def wrap(module: ModuleType, name: str, path: str) -> str:
    """Wraps ``module``'s function at ``path`` (``f`` or ``Class.f``); what became of it."""
    *owners, attribute = path.split(".")
    owner: Any = module
    for part in owners:
        owner = getattr(owner, part, None)
    function = getattr(owner, attribute, None) if owner is not None else None
    if function is None or not callable(function):
        return "missing"
    clock = clocked_coroutine if inspect.iscoroutinefunction(function) else clocked
    static = isinstance(owner, type) and isinstance(
        inspect.getattr_static(owner, attribute), staticmethod
    )
    clocked_function = clock(name, function)
    setattr(owner, attribute, staticmethod(clocked_function) if static else clocked_function)
    return "wrapped"


def snapshot() -> dict[str, dict[str, object]]:
    """Every name's state, calls and thread CPU ns so far."""
    with _lock:
        return {
            name: {
                "state": state,
                "calls": _sums.get(name, [0, 0])[0],
                "cpu_ns": _sums.get(name, [0, 0])[1],
            }
            for name, state in _states.items()
        }


def clear() -> None:
    with _lock:
        for sums in _sums.values():
            sums[:] = [0, 0]


class _WrapOnImport(importlib.abc.MetaPathFinder):
    """Wraps the named functions of a module right after it is executed."""

    def __init__(self, wanted: dict[str, list[tuple[str, str]]]) -> None:
        self.wanted = wanted  # module -> [(name, path in it)]

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in self.wanted:
            return None
        for finder in sys.meta_path:
            if finder is self:
                continue
            find = getattr(finder, "find_spec", None)
            spec = find(fullname, path, target) if find is not None else None
            if spec is not None and spec.loader is not None:
                spec.loader = _Wrapping(spec.loader, self.wanted[fullname])
                return spec
        return None


class _Wrapping(importlib.abc.Loader):
    def __init__(self, loader: importlib.abc.Loader, names: list[tuple[str, str]]) -> None:
        self.loader = loader
        self.names = names

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return self.loader.create_module(spec)

    def __getattr__(self, name: str) -> Any:  # the loader's other methods (resources, code)
        return getattr(self.loader, name)

    def exec_module(self, module: ModuleType) -> None:
        self.loader.exec_module(module)
        for name, path in self.names:
            _states[name] = wrap(module, name, path)


def _watch(folder: Path) -> None:
    """Answers ``clear`` and ``dump`` files in the folder (each removed once done)."""
    while True:
        time.sleep(POLL_S)
        if (folder / "clear").exists():
            clear()
            (folder / "clear").unlink(missing_ok=True)
        if (folder / "dump").exists():
            target = folder / f"clock-{os.getpid()}.json"
            partial = target.with_suffix(".part")
            partial.write_text(json.dumps(snapshot()))
            partial.replace(target)
            (folder / "dump").unlink(missing_ok=True)


def install(names: list[str], folder: Path) -> None:
    """Wraps the named functions as their modules are imported (or now, if they already are),
    and watches ``folder`` for ``clear`` and ``dump``."""
    wanted: dict[str, list[tuple[str, str]]] = {}
    for name in names:
        module_name, _, path = name.partition(":")
        _states[name] = "missing"
        if module_name in sys.modules:
            _states[name] = wrap(sys.modules[module_name], name, path)
        else:
            wanted.setdefault(module_name, []).append((name, path))
    sys.meta_path.insert(0, _WrapOnImport(wanted))
    threading.Thread(target=_watch, args=(folder,), name="function_clock", daemon=True).start()


def _from_environment() -> None:
    command = os.environ.get("CLICKME_FUNCTION_CLOCK_COMMAND", "")
    names = os.environ.get("CLICKME_FUNCTION_CLOCK_NAMES", "")
    folder = os.environ.get("CLICKME_FUNCTION_CLOCK_DIR", "")
    if command and names and folder and command in sys.argv[1:]:
        install([n.strip() for n in names.split(",") if n.strip()], Path(folder))


_from_environment()
