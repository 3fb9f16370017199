"""`python -m embedded`: the quickstart. Starts Postgres and Valkey from Python packages, migrates,
then runs the API and a worker until Ctrl-C or SIGTERM, and stops everything it started.

Data lives in DATA_DIR (default ./var) and survives restarts. The terminal shows this runner's own
few lines and a progress bar while the worker gets ready (the first start builds the int8 model;
the clustering code compiles in the background after that); the API's and the worker's logs go to
DATA_DIR/logs/.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import secrets
import signal
import subprocess
import sys
import time
import types
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from db.migrate import migrate
from embedded.stores import Postgres, Valkey

DATABASE = "tickets"
READY_TIMEOUT_S = 30 * 60
# What the worker logs on its way to ready, in order, and how the progress bar names each step.
WORKER_STEPS = (
    ("Building ", "building the int8 model (first start only)"),
    ("model ready", "model loaded; waiting for the worker's heartbeat"),
)


def _admin_key(data_dir: Path) -> str:
    if os.environ.get("ADMIN_API_KEY"):
        return os.environ["ADMIN_API_KEY"]
    path = data_dir / "admin_key"
    if not path.exists():
        path.write_text("tk_admin_" + secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _secret_key(data_dir: Path) -> str:
    """Seals webhook connection secrets; it must survive restarts or the stored secrets are lost."""
    if os.environ.get("SECRET_KEY"):
        return os.environ["SECRET_KEY"]
    path = data_dir / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it when this runner dies, even by kill -9, so a
    crashed run leaves no API or worker behind holding the port (Linux PR_SET_PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM)


class Stop(Exception):
    pass


def _show(text: str, *, final: bool = False) -> None:
    if sys.stdout.isatty():
        sys.stdout.write("\r\033[K" + text + ("\n" if final else ""))
    elif final:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _is_ready(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(base_url + "/readyz", timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def _wait_until_ready(base_url: str, worker_log: Path, children: dict[str, subprocess.Popen[bytes]]) -> bool:
    """A progress bar until /readyz says ready; False when a child exits first or it takes too long."""
    started = time.monotonic()
    total = len(WORKER_STEPS) + 1
    offset = worker_log.stat().st_size if worker_log.exists() else 0
    while time.monotonic() - started < READY_TIMEOUT_S:
        if any(proc.poll() is not None for proc in children.values()):
            _show("", final=False)
            return False
        if _is_ready(base_url):
            _show(f"[{'#' * 20}] ready in {time.monotonic() - started:.0f} s", final=True)
            return True
        with worker_log.open("rb") as log:
            log.seek(offset)
            seen = log.read().decode("utf-8", "replace")
        done = sum(marker in seen for marker, _ in WORKER_STEPS[1:]) + 1
        label = next((text for marker, text in reversed(WORKER_STEPS) if marker in seen), "loading the model")
        filled = 20 * done // total
        _show(f"[{'#' * filled}{'-' * (20 - filled)}] {label} · {time.monotonic() - started:.0f} s")
        time.sleep(1)
    _show(f"not ready after {READY_TIMEOUT_S} s", final=True)
    return False


def _raise_stop(signum: int, frame: types.FrameType | None) -> None:
    raise Stop()


def main() -> int:
    data_dir = Path(os.environ.get("DATA_DIR", "var")).resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    pg = Postgres(data_dir / "postgres", int(os.environ.get("EMBEDDED_PG_PORT", "55432")))
    valkey = Valkey(data_dir / "valkey", int(os.environ.get("EMBEDDED_REDIS_PORT", "56379")))
    children: dict[str, subprocess.Popen[bytes]] = {}
    # Under uvicorn-style signal handling a SIGTERM could skip `finally`; ours always unwinds.
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    try:
        print(f"starting Postgres and Valkey in {data_dir} ...", flush=True)
        pg.start()
        pg.create_database(DATABASE)
        valkey.start()
        env = dict(os.environ)
        env.update(
            DATABASE_URL=pg.url(DATABASE),
            REDIS_URL=valkey.url(),
            ADMIN_API_KEY=_admin_key(data_dir),
            SECRET_KEY=_secret_key(data_dir),
            MODEL_CACHE_DIR=str(data_dir / "models"),
        )
        applied = asyncio.run(migrate(env["DATABASE_URL"]))
        print(f"migrations applied: {applied or 'none (up to date)'}", flush=True)
        commands = {
            "worker": [sys.executable, "-m", "workers"],
            "api": [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
                    "--host", host, "--port", str(port), "--no-access-log"],
        }  # fmt: skip
        logs_dir = data_dir / "logs"
        logs_dir.mkdir(exist_ok=True)
        logs: dict[str, IO[bytes]] = {name: open(logs_dir / f"{name}.log", "ab") for name in commands}

        def spawn(name: str) -> subprocess.Popen[bytes]:
            out = logs[name]
            return subprocess.Popen(commands[name], env=env, preexec_fn=_die_with_parent, stdout=out, stderr=out)

        for name in commands:
            children[name] = spawn(name)
        print(f"API and worker starting; their logs: {logs_dir}/api.log, {logs_dir}/worker.log", flush=True)
        base_url = f"http://{host}:{port}"
        if not _wait_until_ready(base_url, logs_dir / "worker.log", children):
            print(f"not ready yet: see {logs_dir}/worker.log and {logs_dir}/api.log", flush=True)
        print(
            f"\nService: {base_url}  (dashboard: {base_url}/, docs: /docs)\n"
            f"Admin API key: {env['ADMIN_API_KEY']}\n"
            f"Data: {data_dir}   Logs: {logs_dir}   Stop: Ctrl-C\n",
            flush=True,
        )
        restarts: list[float] = []
        while True:
            time.sleep(1)
            for name, proc in children.items():
                if proc.poll() is None:
                    continue
                restarts = [t for t in restarts if t > time.monotonic() - 60] + [time.monotonic()]
                if len(restarts) > 5:
                    print(f"{name} keeps exiting ({proc.returncode}); stopping", flush=True)
                    return 1
                print(f"{name} exited with {proc.returncode}; restarting (see {logs_dir}/{name}.log)", flush=True)
                children[name] = spawn(name)
    except Stop:
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for proc in children.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in children.values():
            try:
                proc.wait(timeout=30)  # a worker finishes its current job first
            except subprocess.TimeoutExpired:
                proc.kill()
        valkey.stop()
        pg.stop()
        print("stopped", flush=True)


if __name__ == "__main__":
    sys.exit(main())
