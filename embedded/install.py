"""`make install` (and the first `make run` / `make test`): pip in three steps, each on one line
that keeps updating, with pip's own output and warnings in var/install.log.

Run by the virtual environment's Python as a script (stdlib only): the packages it installs are
not there yet.

    .venv/bin/python embedded/install.py
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOG = ROOT / "var" / "install.log"
# The CPU wheel first, so nothing pulls the multi-gigabyte CUDA build of torch.
STEPS = [
    ("pip itself", ["--upgrade", "pip"]),
    ("torch, CPU build (a large download, once)", ["torch==2.13.0"]),
    ("the service and its dev tools", ["-e", ".[dev]"]),
]
_COLLECTING = re.compile(r"^Collecting (\S+)")
_DOWNLOADING = re.compile(r"^\s*Downloading (\S+)(?: \(([^)]+)\))?")


def _line(text: str, *, final: bool = False) -> None:
    if sys.stdout.isatty():
        sys.stdout.write("\r\033[K" + text + ("\n" if final else ""))
    elif final:
        sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _bar(done: int, total: int, width: int = 20) -> str:
    filled = width * done // max(total, 1)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def run_step(number: int, title: str, args: list[str], log: object) -> int:
    started = time.monotonic()
    collected = downloaded = 0
    current = ""
    env = {**os.environ, "PIP_ROOT_USER_ACTION": "ignore", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    cmd = [sys.executable, "-m", "pip", "install", "--progress-bar", "off", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    prefix = f"{_bar(number - 1, len(STEPS))} {number}/{len(STEPS)} {title}"
    for raw in proc.stdout:
        log.write(raw)  # type: ignore[attr-defined]
        if match := _COLLECTING.match(raw):
            collected += 1
            current = match.group(1)
        elif match := _DOWNLOADING.match(raw):
            downloaded += 1
            current = f"downloading {match.group(1).rsplit('/', 1)[-1]}" + (
                f" ({match.group(2)})" if match.group(2) else ""
            )
        _line(
            f"{prefix}: {collected} packages, {downloaded} downloads, {current[:60]}"
            f" · {time.monotonic() - started:.0f} s"
        )
    code = proc.wait()
    outcome = "done" if code == 0 else f"failed ({code}); see {LOG}"
    _line(f"{prefix}: {outcome} in {time.monotonic() - started:.0f} s", final=True)
    return code


def main() -> int:
    LOG.parent.mkdir(parents=True, exist_ok=True)
    print(f"Installing into {Path(sys.executable).parent.parent} (pip's output: {LOG})")
    with LOG.open("a") as log:
        for number, (title, args) in enumerate(STEPS, start=1):
            log.write(f"\n=== {title}: pip install {' '.join(args)}\n")
            log.flush()
            code = run_step(number, title, args, log)
            if code:
                return code
    _line(f"{_bar(len(STEPS), len(STEPS))} installed", final=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
