"""`python -m embedded`: the quickstart. Starts Postgres and Valkey from Python packages, migrates,
then runs the API and a worker until Ctrl-C or SIGTERM, and stops everything it started.

Data lives in DATA_DIR (default ./var) and survives restarts.
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
from pathlib import Path

from db.migrate import migrate
from embedded.stores import Postgres, Valkey

DATABASE = "tickets"


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
        for name, cmd in commands.items():
            children[name] = subprocess.Popen(cmd, env=env, preexec_fn=_die_with_parent)
        print(
            f"\nService: http://{host}:{port}  (dashboard: http://{host}:{port}/, docs: /docs)\n"
            f"Admin API key: {env['ADMIN_API_KEY']}\n"
            f"Data: {data_dir}   Stop: Ctrl-C\n",
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
                print(f"{name} exited with {proc.returncode}; restarting", flush=True)
                children[name] = subprocess.Popen(commands[name], env=env, preexec_fn=_die_with_parent)
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
