"""The outbox sits between the API and the workers: the API imports no `workers` module."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def test_the_api_imports_no_workers_module() -> None:
    probe = (
        "import sys, api.main, api.cli, outbox.relay; "
        "print(','.join(m for m in sys.modules if m == 'workers' or m.startswith('workers.')))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
