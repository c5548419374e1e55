"""Shared fixtures: settings in a temporary folder, SQLite and PostgreSQL databases, Dovecot, an SMTP sink.

The ``db_url`` fixture runs a test on SQLite and on the real PostgreSQL of this machine
(``MAILSERVICE_TEST_PG_URL``, default ``postgresql://postgres@127.0.0.1:5432/test``); ``settings`` and
``lite_settings`` build on it, so every test that touches the database runs on both. When no PostgreSQL answers,
PostgreSQL cases fail with a message saying so, unless ``MAILSERVICE_SKIP_POSTGRES=1`` asks to skip them (reported
as skipped, never as passed).
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib
import json
import math
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import settings as hypothesis_settings

from mailservice import config, db
from mailservice.models import Base
from tests.servers import (
    Dovecot,
    Recorder,
    RecorderController,
    Sink,
    dovecot_missing_reason,
    free_port,
    run_sink,
    start_dovecot,
)
from tests.shared import CORPORA as CORPORA  # re-exported for the tests that import it from here

# No Hypothesis deadline anywhere: a property's first example may load data (the holiday calendar, the classifier)
# and a loaded machine makes any wall-clock limit a coin toss. Timing belongs in bench/, never in a test.
# `make test` is derandomized (the same examples on every run, so a landing never fails on a lucky draw); a search
# for new examples is asked for: `HYPOTHESIS_PROFILE=explore make test` (and commit each finding as a plain test).
hypothesis_settings.register_profile("mailservice", deadline=None, derandomize=True)
hypothesis_settings.register_profile("explore", deadline=None, max_examples=1000)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "mailservice"))

PG_URL = os.environ.get("MAILSERVICE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")

_pg_state: dict[str, object] = {}


def pg_unreachable_reason() -> str | None:
    """Why PostgreSQL tests cannot run, or None."""
    if "reason" not in _pg_state:
        try:
            with psycopg.connect(PG_URL, connect_timeout=3):
                _pg_state["reason"] = None
        except psycopg.Error as exc:
            _pg_state["reason"] = f"PostgreSQL not reachable at {PG_URL}: {exc}"
    return _pg_state["reason"]  # type: ignore[return-value]


def reset_caches() -> None:
    """Forget cached settings, engines and calendars after the environment changed."""
    config.get_settings.cache_clear()
    db.dispose_engines()


def _seed_fingerprint() -> str:
    """What the seed model depends on: the classifier's code, rules and labelled sets, and the library versions."""
    import pymorphy3
    import sklearn

    from mailservice.resources import package_path

    digest = hashlib.sha256(f"{sklearn.__version__}|{pymorphy3.__version__}".encode())
    root = package_path("classify")
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".py", ".tsv", ".yaml")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(autouse=True, scope="session")
def _seed_once(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The classifier's seed model, trained once for all test processes and runs, copied where it is asked for.

    A fresh install trains the seed model on its first message (seconds, minutes on a loaded machine) and keeps it
    in its data folder; every test has a fresh data folder, so each test process would train it again in whichever
    test classifies first. Here the product's own ``seed_model`` trains it once into a folder shared by the
    processes of this run (kept between runs in pytest's cache, keyed by what the model depends on); each later
    seeding copies those files into the data folder it was asked for, as if trained there. No model is trained
    or read until a test classifies.
    """
    from mailservice.classify import engine
    from mailservice.classify import model as model_module
    from mailservice.intake import prepare

    train = engine.seed_model
    cache = getattr(request.config, "cache", None)

    def seed_from_cache(path: Path, rules_version: str) -> object:
        key = f"classify-seed-{_seed_fingerprint()}-{rules_version}"
        folder = cache.mkdir(key) if cache is not None else tmp_path_factory.getbasetemp().parent / key
        folder.mkdir(parents=True, exist_ok=True)
        shared = folder / "model.joblib"
        with open(folder / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be training it right now
            if not shared.exists() and train(shared, rules_version) is None:
                return None
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(model_module.sidecar_path(shared), model_module.sidecar_path(path))
        shutil.copyfile(shared, path)
        return model_module.load(path)

    # The intake's worker processes load the model from the data folder, or train it there when it is missing (twenty
    # seconds of CPU each). The preparer saves it there first through this process's classifier, but that one is
    # process-wide and was mostly made for an earlier test's folder: the pool finds this test's folder seeded, as
    # after `db upgrade` (the same as tests/cli_support.cli_env for a CLI subprocess).
    executor = prepare.Preparer._executor

    def seeded_executor(self: prepare.Preparer) -> object:
        if self.workers and os.environ.get("MAILSERVICE_DATA_DIR"):
            engine.ensure_seed_model()
        return executor(self)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine, "seed_model", seed_from_cache)
        patch.setattr(prepare.Preparer, "_executor", seeded_executor)
        yield


@pytest.fixture(scope="session")
def train_cache(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where tests/trained.py keeps the models fitted once for this run's processes (and later runs: pytest's
    cache, keyed by the classifier's code and data, as the seed model above)."""
    key = f"classify-train-{_seed_fingerprint()}"
    cache = getattr(request.config, "cache", None)
    return cache.mkdir(key) if cache is not None else tmp_path_factory.getbasetemp().parent / key


def _package_fingerprint() -> str:
    """What a migrated database depends on: every source file of the package (the migrations and what they use) and
    the versions of SQLAlchemy and Alembic, which write the DDL."""
    import alembic
    import sqlalchemy

    root = Path(db.__file__).parent
    digest = hashlib.sha256(f"{sqlalchemy.__version__}|{alembic.__version__}".encode())
    for path in sorted(root.rglob("*")):
        if path.suffix in (".py", ".ini", ".mako") and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once; each test gets a copy (migrations run once, not per test).

    It is kept between sessions beside pytest's temporary folders, keyed by the package's sources: `make mutation`
    starts a pytest session per mutant, and migrating a new database for each (two seconds and more) was a fifth of
    a mutant's time. Any change of the code makes a new one.
    """
    folder = tmp_path_factory.getbasetemp().parent / f"sqlite-template-{_package_fingerprint()}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "template.sqlite3"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be migrating it right now
        if not path.exists():
            partial = folder / f"partial-{uuid.uuid4().hex[:8]}.sqlite3"
            db.upgrade(config.Settings(database_url=f"sqlite:///{partial}", data_dir=folder))
            db.dispose_engines()
            partial.rename(path)
            _forget_old_templates(folder)
    return path


def _forget_old_templates(current: Path) -> None:
    """Remove the templates of other code not used for a day (each is a megabyte; a run of other code, a mutation
    run of another commit, may still be using one). Each session's open of the lock file marks the use."""
    day_ago = time.time() - 86400
    for other in current.parent.glob("sqlite-template-*"):
        lock = other / ".lock"
        used = (lock if lock.exists() else other).stat().st_mtime
        if other != current and used < day_ago:
            shutil.rmtree(other, ignore_errors=True)


@pytest.fixture(scope="session")
def _pg_database() -> Iterator[str]:
    """A PostgreSQL database of this test session, migrated once, dropped at the end."""
    reason = pg_unreachable_reason()
    if reason:
        if os.environ.get("MAILSERVICE_SKIP_POSTGRES") == "1":
            pytest.skip(reason)
        pytest.fail(f"{reason} (set MAILSERVICE_SKIP_POSTGRES=1 to skip the PostgreSQL cases)")
    name = f"mailservice_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        # A commit returns without waiting for its WAL to reach the disk (a flush is milliseconds on a busy disk,
        # and a run commits tens of thousands of times). Only durability across a crash of the server changes
        # (PostgreSQL docs, "Asynchronous Commit"): what a commit makes visible, when, and to whom stays the same.
        conn.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    url = PG_URL.rsplit("/", 1)[0] + f"/{name}"
    db.upgrade(config.Settings(database_url=url))
    yield url
    db.dispose_engines()
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _truncate_pg(url: str) -> None:
    """Empty every table and restart every sequence: what ``TRUNCATE ... RESTART IDENTITY CASCADE`` did, at a
    fraction of its cost.

    TRUNCATE gives each of the sixty tables and their indexes new files (seconds on a busy disk, before every
    PostgreSQL test); deleting the few rows a test wrote costs milliseconds. In the replica role neither foreign
    keys nor the append-only triggers fire (the test empties its database, the service never does); every sequence
    is owned by a table's id column, so restarting the used ones is RESTART IDENTITY.
    """
    engine = db._engine_for(url)
    tables = [f'"{t.name}"' for t in Base.metadata.sorted_tables]
    with engine.begin() as conn:
        if conn.exec_driver_sql("SELECT current_setting('is_superuser')").scalar() != "on":
            # The replica role is a superuser's (MAILSERVICE_TEST_PG_URL may name another role): the slow way.
            conn.exec_driver_sql(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
            return
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        # One round trip: without parameters psycopg sends the statements as one simple query.
        conn.exec_driver_sql("; ".join(f"DELETE FROM {t}" for t in tables))
        conn.exec_driver_sql(
            "SELECT setval(quote_ident(schemaname) || '.' || quote_ident(sequencename), start_value, false) "
            "FROM pg_sequences WHERE last_value IS NOT NULL"
        )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: SQLite and PostgreSQL in turn."""
    if request.param == "sqlite":
        template = request.getfixturevalue("_sqlite_template")
        target = tmp_path / "mailservice.sqlite3"
        shutil.copyfile(template, target)
        return f"sqlite:///{target}"
    url: str = request.getfixturevalue("_pg_database")
    _truncate_pg(url)
    return url


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated, empty SQLite database only: for what is about SQLite itself, for the browser tests (the pages
    they drive are tested on both databases through the app) and for measurements of one process."""
    target = tmp_path / "mailservice.sqlite3"
    shutil.copyfile(_sqlite_template, target)
    return f"sqlite:///{target}"


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[Sink]:
    """A real aiosmtpd SMTP sink on a free port."""
    server = run_sink(tmp_path / "sink")
    yield server
    server.controller.stop()  # type: ignore[attr-defined]


def make_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, database_url: str, **extra: str) -> config.Settings:
    """Point every MAILSERVICE_ setting at this test's folder and database; return the fresh Settings."""
    for key in list(os.environ):
        if (
            key.startswith("MAILSERVICE_")
            and key != "MAILSERVICE_TEST_PG_URL"
            and key not in ("MAILSERVICE_CORPORA", "MAILSERVICE_SHARED")
        ):
            monkeypatch.delenv(key)
    monkeypatch.setenv("MAILSERVICE_ENVIRONMENT", "development")
    monkeypatch.setenv("MAILSERVICE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("MAILSERVICE_DATABASE_URL", database_url)
    monkeypatch.setenv("MAILSERVICE_SECRET_KEYS", "test-key-" + "x" * 40)
    monkeypatch.setenv("MAILSERVICE_FROM_ADDRESS", "info@dizo.test")
    if os.environ.get("MUTANT_UNDER_TEST") and "intake_workers" not in extra:
        # A mutant's tests run in a process mutmut forked from its fork server, where intake's worker pool cannot
        # start: a batch big enough for the pool (ten letters) failed whatever the mutant, and every mutant that
        # survived the faster tests was recorded as killed by it (7 December). Preparing in this process decides
        # the same; the pool itself is tested by tests/test_intake_batch.py, outside the mutation selection.
        monkeypatch.setenv("MAILSERVICE_INTAKE_WORKERS", "0")
    for key, value in extra.items():
        monkeypatch.setenv(f"MAILSERVICE_{key.upper()}", value)
    reset_caches()
    return config.get_settings()


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink) -> Iterator[config.Settings]:
    """Settings on a migrated database (both backends) with outgoing mail going to the test sink."""
    yield make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1")
    reset_caches()


@pytest.fixture
def lite_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sink: Sink
) -> Iterator[config.Settings]:
    """Settings on a migrated database (both backends), mail to the test sink: the same as ``settings``."""
    yield make_env(monkeypatch, tmp_path, db_url, smtp_port=str(sink.port), smtp_host="127.0.0.1")
    reset_caches()


@pytest.fixture
def browser_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_url: str, sink: Sink
) -> Iterator[config.Settings]:
    """Settings on SQLite for the browser tests (Chromium drives the pages; the app is tested on both databases)."""
    yield make_env(monkeypatch, tmp_path, sqlite_url, smtp_port=str(sink.port), smtp_host="127.0.0.1")
    reset_caches()


@pytest.fixture
def live_url(browser_settings: config.Settings) -> Iterator[str]:
    """The real web application served by uvicorn on a free loopback port (browser tests)."""
    from tests.browser import serve_app

    with serve_app(browser_settings) as url:
        yield url


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A real Dovecot for the whole session (each test resets the mailbox)."""
    reason = dovecot_missing_reason()
    if reason:
        if os.environ.get("MAILSERVICE_REQUIRE_DOVECOT"):
            pytest.fail(reason)
        pytest.skip(reason)
    root = Path("/tmp") / f"mailservice-dovecot-{uuid.uuid4().hex[:8]}"
    server = start_dovecot(root)
    yield server
    server.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def imap(dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch) -> Dovecot:
    """Dovecot with an empty mailbox; IMAP settings point at it (plain IMAP on loopback)."""
    dovecot.reset_mailbox()
    for key, value in dovecot.env("none").items():
        monkeypatch.setenv(key, value)
    config.get_settings.cache_clear()
    return dovecot


@pytest.fixture
def recorder() -> Iterator[tuple[Recorder, int]]:
    """An SMTP server (aiosmtpd) that records each copy with its arrival time, and its port."""
    handler = Recorder()
    port = free_port()
    controller = RecorderController(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


# Scheduling of `make test` (-n 2 --dist loadgroup) ------------------------------------------------------------------

# Modules whose tests share an expensive module-scoped fixture: the built wheel, Chromium and the site it opens, a
# trained model, a pass over the corpora. Their tests stay in one test process, so the fixture is made once, not once
# in each. (The xdist_group mark cannot say it: pytest 9 ignores the node id pytest-xdist rewrites for it.)
SHARED_FIXTURE_MODULES = frozenset(
    {
        "tests/test_install.py",
        "tests/test_site_browser.py",
        "tests/test_channels_browser.py",
        "tests/test_mailings_browser.py",
        "tests/test_classify_mail.py",
        "tests/test_classify_model.py",
        "tests/test_corpora.py",
    }
)


# Optional: `make mutation` runs pytest with `-p no:xdist`, where an unknown hook would stop the collection.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """Under ``--dist loadgroup``: one test at a time to whichever process is free, except the modules above, each
    sent whole; pytest-xdist starts with the largest such group, so the long shared set-ups begin the run."""
    if config.getoption("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleGroups(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return module if module in SHARED_FIXTURE_MODULES else nodeid

    return ModuleGroups(config, log)  # type: ignore[arg-type]


# A mutant's test that runs this many times longer than in mutmut's clean run, and at least this long, hangs (see
# pytest_collection_modifyitems): ten times leaves room for a machine twice as busy as during the stats run.
MUTANT_TEST_SLOWDOWN = 10
MUTANT_TEST_FLOOR_S = 20.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under ``make mutation`` (a mutant's run, MUTANT_UNDER_TEST set): the mutant's tests, fastest first, by the
    durations mutmut measured in its stats run. mutmut stops at the first failure (``-x``) but hands pytest the
    tests in a set's order: a mutant that hangs a worker process was killed only when its test's 120-second wait
    ran out, even when a test of a second would have failed at once (docs/mutation.md, its opening section)."""
    if not os.environ.get("MUTANT_UNDER_TEST") or not items:
        return
    stats = Path("mutmut-stats.json")  # mutmut runs the tests from mutants/, where it writes its stats
    if not stats.is_file():
        return
    durations: dict[str, float] = json.loads(stats.read_text(encoding="utf-8")).get("duration_by_test", {})
    # Unknown tests last; the sort is stable, so tests of one module keep their order among equals.
    items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))
    # A hang fails its own test: mutmut's wall-clock limit is for the whole set, (its stats' sum + 1) x 15, which
    # for a mutant of the mailing coordinator (tests of 30 s in all) is eight minutes of a hung `campaign send` per
    # mutant. A test taking MUTANT_TEST_SLOWDOWN times its clean duration, and at least MUTANT_TEST_FLOOR_S, fails
    # (pytest-timeout): the mutant is killed, as a timeout would have counted it. Tests mutmut did not time keep
    # the suite's limit.
    for item in items:
        if item.nodeid in durations and not item.get_closest_marker("timeout"):
            limit = max(MUTANT_TEST_FLOOR_S, MUTANT_TEST_SLOWDOWN * durations[item.nodeid])
            item.add_marker(pytest.mark.timeout(math.ceil(limit)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Under ``make mutation`` with MUTATION_KILLS set to a folder: which test killed the mutant, and how, one file
    per mutant. mutmut sends a mutant's output to /dev/null and keeps only the exit code, so a test that fails for a
    reason of its own (a worker pool that cannot start in mutmut's forked process) would pass for a kill unseen."""
    folder = os.environ.get("MUTATION_KILLS")
    mutant = os.environ.get("MUTANT_UNDER_TEST")
    if not folder or not mutant or not report.failed:
        return
    text = f"{report.nodeid} ({report.when})\n{report.longreprtext[-3000:]}\n"
    with open(Path(folder) / f"{mutant}.txt", "a", encoding="utf-8") as handle:
        handle.write(text)


def pytest_collection_finish(session: pytest.Session) -> None:
    """In mutmut's fork server (``make mutation`` collects the tests once there, then forks a process per mutant):
    import the classifier's libraries and load the morphological dictionaries once, there, instead of in every
    mutant's process (0.9 s of CPU each, measured; a mutant's run takes a few seconds)."""
    if not session.config.option.collectonly or "mutmut" not in sys.modules:
        return
    importlib.import_module("mailservice.classify.engine")  # for its libraries: scikit-learn, joblib
    from mailservice.classify import text

    text._morph()
