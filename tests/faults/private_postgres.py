"""A PostgreSQL cluster of the test's own (initdb, pg_ctl) that a test stops and starts again,
never the shared server other tests use."""

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live_server import free_port

POSTGRES_USER = "postgres"


def _bin(tool: str) -> str:
    """The PostgreSQL server tool (initdb and pg_ctl are not on PATH on Debian)."""
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}")) or [shutil.which(tool) or ""]
    if not found[-1]:
        if os.environ.get("CI"):
            pytest.fail(f"no PostgreSQL {tool} in CI")
        pytest.skip(f"no PostgreSQL {tool} installed")
    return found[-1]


def _as_owner(command: list[str]) -> list[str]:
    """initdb and the server refuse to run as root: as root they run as the postgres user."""
    return ["runuser", "-u", POSTGRES_USER, "--", *command] if os.getuid() == 0 else command


@dataclass(frozen=True)
class PrivatePostgres:
    folder: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://{POSTGRES_USER}@127.0.0.1:{self.port}/postgres"

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        command = _as_owner([_bin("pg_ctl"), "-D", str(self.folder / "cluster"), "-w", *args])
        subprocess.run(command, check=check, capture_output=True, timeout=60)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1"
        self._pg_ctl("-o", options, "-l", str(self.folder / "server.log"), "start")

    def crash(self, check: bool = True) -> None:
        """Stop at once, as a crash would: no checkpoint, connections cut mid-transaction."""
        self._pg_ctl("-m", "immediate", "stop", check=check)


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A fresh cluster (trust authentication) on a free port, running; removed at the end."""
    folder = Path(tempfile.mkdtemp(prefix="clickme-pg-"))  # under /tmp: postgres can reach it
    if os.getuid() == 0:
        shutil.chown(folder, POSTGRES_USER, POSTGRES_USER)
    server = PrivatePostgres(folder, free_port())
    try:
        initdb = [_bin("initdb"), "-D", str(folder / "cluster"), "-U", POSTGRES_USER]
        subprocess.run(
            _as_owner([*initdb, "--auth=trust", "--no-sync"]), check=True, capture_output=True
        )
        server.start()
        yield server
    finally:
        server.crash(check=False)
        shutil.rmtree(folder, ignore_errors=True)
