"""No Docker engine runs here: check the compose file's shape instead of starting it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_has_the_five_services() -> None:
    assert set(load()["services"]) == {"db", "redis", "migrate", "api", "worker"}


def test_stores_have_healthchecks() -> None:
    services = load()["services"]
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert "noeviction" in services["redis"]["command"]


def test_api_and_worker_wait_for_healthy_stores_and_the_migration() -> None:
    services = load()["services"]
    assert services["migrate"]["command"] == ["python", "-m", "db.migrate"]
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        deps = services[name]["depends_on"]
        assert deps["db"]["condition"] == "service_healthy"
        assert deps["redis"]["condition"] == "service_healthy"
        assert deps["migrate"]["condition"] == "service_completed_successfully"
    assert services["worker"]["command"] == ["python", "-m", "workers"]
    assert "api.main:create_app" in services["api"]["command"]


def test_every_service_gets_the_same_store_urls() -> None:
    services = load()["services"]
    for name in ("migrate", "api", "worker"):
        env = services[name]["environment"]
        assert env["DATABASE_URL"].endswith("@db:5432/tickets")
        assert env["REDIS_URL"] == "redis://redis:6379/0"
        assert "ADMIN_API_KEY" in env and "SECRET_KEY" in env


def test_the_api_runs_two_processes_unless_told_otherwise() -> None:
    # bench/RESULTS.md (session 7): two API processes halved the webhook ack p50 under L1
    assert load()["services"]["api"]["environment"]["WEB_CONCURRENCY"] == "${WEB_CONCURRENCY:-2}"


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("api", "outbox", "workers", "clustering", "connectors", "schemas", "db"):
        assert f"COPY {package} {package}" in dockerfile
