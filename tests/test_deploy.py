"""The container stack, checked without a container engine (none runs on this machine): docker-compose.yml against
the essential rules of the Compose specification and against the project itself (every command exists, every
variable is a setting, every process that touches files shares the one data volume, health checks hit real
endpoints), the Dockerfile's promises, and /healthz and /readyz on the real app and both databases."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from mailservice import db
from mailservice.cli import main
from mailservice.config import Settings
from mailservice.web.app import create_app

REPO = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
ENV_EXAMPLE = (REPO / ".env.example").read_text(encoding="utf-8")
DOCKERFILE = (REPO / "Dockerfile").read_text(encoding="utf-8")
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
APP_SERVICES = {name: s for name, s in SERVICES.items() if s.get("image", "").startswith("mailservice")}

# From the Compose specification (compose-spec.io): the keys a service may have that this file could use, the
# conditions of depends_on, restart policies and health-check forms. A typo in any of them is ignored or refused by
# `docker compose`, so it is refused here first.
TOP_LEVEL = {"version", "name", "services", "networks", "volumes", "secrets", "configs", "include"}
SERVICE_KEYS = {
    "image", "build", "command", "entrypoint", "environment", "env_file", "volumes", "ports", "expose",
    "depends_on", "healthcheck", "restart", "deploy", "profiles", "user", "working_dir", "networks", "secrets",
    "configs", "labels", "logging", "stop_grace_period", "stop_signal", "read_only", "tmpfs", "init", "ulimits",
    "cap_drop", "cap_add", "security_opt", "hostname", "container_name", "extra_hosts", "shm_size",
}  # fmt: skip
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
RESTART = {"no", "always", "on-failure", "unless-stopped"}
DURATION = re.compile(r"(\d+(us|ms|s|m|h))+")


def test_compose_follows_the_specification() -> None:
    assert set(COMPOSE) - TOP_LEVEL <= {k for k in COMPOSE if k.startswith("x-")}
    declared_volumes = set(COMPOSE.get("volumes") or {})
    for name, service in SERVICES.items():
        assert set(service) <= SERVICE_KEYS, (name, set(service) - SERVICE_KEYS)
        assert "image" in service or "build" in service, name
        assert service.get("restart", "no") in RESTART, name
        for key in ("command", "entrypoint"):
            if key in service:
                assert isinstance(service[key], list) and all(isinstance(a, str) for a in service[key]), (name, key)
        environment = service.get("environment", {})
        assert isinstance(environment, dict), name
        assert all(isinstance(v, str) for v in environment.values()), (name, environment)  # quoted: no 2525 ints
        for port in service.get("ports", []):
            assert re.fullmatch(r"(\d+\.\d+\.\d+\.\d+:)?\d+:\d+", port), (name, port)
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if not source.startswith(("/", ".")):
                assert source in declared_volumes, (name, source)
        for target, rule in (service.get("depends_on") or {}).items():
            assert target in SERVICES, (name, target)
            assert rule["condition"] in CONDITIONS, (name, rule)
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], (name, target)
        check = service.get("healthcheck")
        if check:
            assert set(check) <= HEALTHCHECK_KEYS, name
            assert isinstance(check["test"], list) and check["test"][0] in {"CMD", "CMD-SHELL", "NONE"}, name
            for key in ("interval", "timeout", "start_period"):
                if key in check:
                    assert DURATION.fullmatch(check[key]), (name, key)


def test_startup_order_is_database_then_migrations_then_processes() -> None:
    assert "pg_isready" in " ".join(SERVICES["db"]["healthcheck"]["test"])
    assert SERVICES["migrate"]["depends_on"] == {"db": {"condition": "service_healthy"}}
    assert SERVICES["migrate"]["command"] == ["db", "upgrade"] and SERVICES["migrate"]["restart"] == "no"
    long_running = set(APP_SERVICES) - {"migrate"}
    assert {"web", "receiver", "poller", "worker"} <= long_running
    for name in long_running:
        assert SERVICES[name]["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}, name


def test_every_process_that_touches_files_shares_one_named_volume() -> None:
    mounts = {name: service.get("volumes") for name, service in APP_SERVICES.items()}
    assert len(mounts) >= 5  # migrate, web, receiver, poller, worker
    assert all(m == ["data:/data"] for m in mounts.values()), mounts
    assert "ENV MAILSERVICE_ENVIRONMENT=production" in DOCKERFILE.replace(" \\\n    ", " ")
    assert re.search(r"MAILSERVICE_DATA_DIR=/data\b", DOCKERFILE)


def test_every_command_exists(capsys: pytest.CaptureFixture[str]) -> None:
    commands = [service["command"] for service in APP_SERVICES.values()]
    default = re.search(r"^CMD \[(.*)\]$", DOCKERFILE, flags=re.M)
    assert default is not None
    commands.append([part.strip().strip('"') for part in default[1].split(",")])
    for command in commands:
        words = [w for w in command if not w.startswith("-")][:2]
        if words[0] in {"db"}:
            words = words[:2]
        else:
            words = words[:1]
        assert main([*words, "--help"]) == 0, command
        usage = capsys.readouterr().out
        assert f"Использование: mailservice {' '.join(words)}" in usage, command
        options = [w for w in command if w.startswith("--")]
        for option in options:
            assert option in usage, (command, option)


def _variables(text: str) -> set[str]:
    return set(re.findall(r"^\s*(MAILSERVICE_[A-Z0-9_]+)\s*[=:]", text, flags=re.M))


def test_every_variable_is_a_setting() -> None:
    fields = {f"MAILSERVICE_{name.upper()}" for name in Settings.model_fields}
    in_compose = _variables((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    in_example = _variables(ENV_EXAMPLE)
    assert in_compose and in_example
    assert in_compose - fields == set()
    assert in_example - fields == set()


def test_secrets_come_from_env_once() -> None:
    lines = [line for line in ENV_EXAMPLE.splitlines() if line and not line.startswith("#")]
    names = [line.split("=", 1)[0] for line in lines]
    assert len(names) == len(set(names))
    assert names.count("POSTGRES_PASSWORD") == 1
    assert "MAILSERVICE_DATABASE_URL" not in names  # composed in docker-compose.yml from the one password
    for secret in (
        "POSTGRES_PASSWORD",
        "MAILSERVICE_SECRET_KEYS",
        "MAILSERVICE_SMTP_PASSWORD",
        "MAILSERVICE_IMAP_PASSWORD",
    ):
        assert f"{secret}=\n" in ENV_EXAMPLE + "\n", secret  # shipped empty, never a value
    raw = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    assert "${POSTGRES_PASSWORD:?" in raw and "CHANGE" not in raw
    url = APP_SERVICES["web"]["environment"]["MAILSERVICE_DATABASE_URL"]
    assert re.fullmatch(r"postgresql://mailservice:\$\{POSTGRES_PASSWORD:\?[^}]+\}@db:5432/mailservice", url)
    assert all(s.get("env_file") == ".env" for s in APP_SERVICES.values())
    assert (REPO / ".gitignore").read_text(encoding="utf-8").splitlines().count(".env") == 1


def test_image_installs_the_wheel_as_a_non_root_user() -> None:
    assert re.search(r"pip wheel .*--no-deps", DOCKERFILE) and re.search(r"pip install .*\.whl", DOCKERFILE)
    assert "COPY templates" not in DOCKERFILE  # the templates are package data inside the wheel
    user = re.findall(r"^USER (\S+)$", DOCKERFILE, flags=re.M)
    assert user and user[-1] not in {"root", "0"}
    assert "VOLUME /data" in DOCKERFILE and 'ENTRYPOINT ["mailservice"]' in DOCKERFILE
    assert "postgresql-client" in DOCKERFILE  # pg_dump for `mailservice backup`


def test_health_checks_hit_real_endpoints() -> None:
    app_paths = {getattr(route, "path", None) for route in create_app(Settings(_env_file=None)).routes}
    checked = []
    for name, service in APP_SERVICES.items():
        for url in re.findall(
            r"http://127\.0\.0\.1:(\d+)(/\w+)", " ".join(service.get("healthcheck", {}).get("test", []))
        ):
            port, path = url
            assert path in app_paths, (name, path)
            assert f"--port\x00{port}" in "\x00".join(service["command"]), (name, port)
            checked.append(path)
    assert checked == ["/readyz"]


# /healthz and /readyz on the app ----------------------------------------------------------------------------------


def test_healthz_and_readyz_on_a_migrated_database(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    http = TestClient(create_app(settings))
    assert http.get("/healthz").status_code == 200
    with caplog.at_level(logging.INFO):
        probes = [http.get("/readyz") for _ in range(3)]
    assert [(ready.status_code, ready.text) for ready in probes] == [(200, "ok")] * 3
    # A probe every few seconds writes nothing to the service's log (tryout of 7 December: alembic's «Context impl
    # SQLiteImpl.» and «Will assume non-transactional DDL.» at each one).
    assert [record.getMessage() for record in caplog.records if record.name.startswith("alembic")] == []


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_readyz_refuses_before_migrations(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    else:
        import uuid

        import psycopg

        from tests.conftest import PG_URL, pg_unreachable_reason

        if pg_unreachable_reason():
            pytest.skip(pg_unreachable_reason())
        name = f"mailservice_ready_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop() -> None:
            db.dispose_engines()
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        request.addfinalizer(drop)
        url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    settings = Settings(_env_file=None, database_url=url, data_dir=tmp_path)
    http = TestClient(create_app(settings))
    try:
        empty = http.get("/readyz")
        assert empty.status_code == 503 and "не применены миграции" in empty.text
        assert http.get("/healthz").status_code == 200  # alive all the same
        db.upgrade(settings, "0001")  # one branch only: still not at every head
        assert http.get("/readyz").status_code == 503
        db.upgrade(settings)
        assert http.get("/readyz").status_code == 200
    finally:
        db.dispose_engines()


def test_readyz_refuses_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, database_url="postgresql://nobody@127.0.0.1:9/none", data_dir=tmp_path)
    try:
        response = TestClient(create_app(settings)).get("/readyz")
    finally:
        db.dispose_engines()
    assert response.status_code == 503 and "база данных недоступна" in response.text
