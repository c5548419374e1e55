"""Database engine, sessions and migrations.

SQLite (WAL) is the embedded default, PostgreSQL the production database; both run the same code and the same
Alembic migrations. Every domain keeps its models in its own package and registers them on :class:`Base`.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Column, DateTime, Engine, MetaData, create_engine, event, func, inspect, select
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapper, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

from mailservice import model_domains
from mailservice.config import Settings, get_settings
from mailservice.resources import package_path

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC datetime on every backend (SQLite stores naive values; we re-attach UTC on the way out)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime refused: store UTC-aware datetimes only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    """Declarative base of every model in the service."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime()}


def with_column_defaults(model: type[Base], values: dict[str, Any]) -> dict[str, Any]:
    """``values`` plus the Python-side default of every column attribute not in it.

    SQLAlchemy batches the INSERTs of a flush only across consecutive rows that set the same columns; a model
    whose rows are built with different keyword sets (the kinds of history event) is inserted a row at a time
    unless its constructor fills in the defaults itself.
    """
    filled = dict(values)
    for key, default in _column_defaults(model):
        if key not in filled:
            filled[key] = default.arg(None) if default.is_callable else default.arg
    return filled


@functools.cache
def _column_defaults(model: type[Base]) -> tuple[tuple[str, Any], ...]:
    found = []
    for attribute in inspect(model).column_attrs:
        column = attribute.columns[0]
        if isinstance(column, Column) and column.default is not None:
            if column.default.is_scalar or column.default.is_callable:
                found.append((attribute.key, column.default))
    return tuple(found)


def utcnow() -> dt.datetime:
    """The current time, aware and in UTC (the only clock read in the service layer)."""
    return dt.datetime.now(dt.UTC)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets the web app read while the poller writes; busy_timeout turns lock contention into a short wait.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@functools.cache
def _generated_id(mapper: Mapper[Any]) -> tuple[str, Column[Any]] | None:
    """The attribute and column of a mapper's single integer primary key that the database numbers, if any."""
    if len(mapper.primary_key) != 1:
        return None
    column = mapper.primary_key[0]
    if column.table.autoincrement_column is not column or column.default is not None:
        return None
    return mapper.get_property_by_column(column).key, column


def _number_new_rows(session: Session, _context: Any, _instances: Any) -> None:
    """Give new SQLite rows their ids before the flush, so that SQLAlchemy inserts them in batches.

    SQLite cannot say which generated id belongs to which row of a multi-row INSERT ... RETURNING, so SQLAlchemy
    inserts rows with database-generated keys one statement each there ("insertmanyvalues", sort_by_parameter_order).
    Every SQLite transaction here holds the write lock from its start (BEGIN IMMEDIATE), so max(id) + 1 read now is
    the id SQLite itself would assign. Read once per table and flush: nothing else writes in between.
    """
    if session.get_bind().dialect.name != "sqlite":
        return
    pending: dict[Mapper[Any], list[object]] = {}
    for obj in session.new:
        mapper = inspect(obj).mapper
        generated = _generated_id(mapper)
        if generated is not None and getattr(obj, generated[0]) is None:
            pending.setdefault(mapper, []).append(obj)
    for mapper, objects in pending.items():
        if len(objects) < 2:
            continue  # one row is one INSERT either way: no query for its id
        generated = _generated_id(mapper)
        assert generated is not None
        key, column = generated
        with session.no_autoflush:
            last = session.execute(select(func.max(column))).scalar() or 0
        for offset, obj in enumerate(objects, start=1):
            setattr(obj, key, last + offset)


def make_engine(url: str) -> Engine:
    """Create an engine with the pragmas and options each backend needs."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)

        # pysqlite's own transaction handling defers BEGIN; we emit BEGIN IMMEDIATE ourselves so that the
        # gap-free counter and other read-modify-write sequences serialise instead of failing on upgrade.
        @event.listens_for(engine, "connect")
        def _no_autobegin(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin_immediate(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return create_engine(url, pool_pre_ping=True)


_engines: dict[str, Engine] = {}
_sessionmakers: dict[str, sessionmaker[Session]] = {}


def _engine_for(url: str) -> Engine:
    if url not in _engines:
        _engines[url] = make_engine(url)
    return _engines[url]


def get_engine(settings: Settings | None = None) -> Engine:
    """The shared engine for the configured database."""
    return _engine_for((settings or get_settings()).effective_database_url)


def _sessionmaker_for(url: str) -> sessionmaker[Session]:
    if url not in _sessionmakers:
        factory = sessionmaker(bind=_engine_for(url), expire_on_commit=False)
        if url.startswith("sqlite"):
            event.listen(factory, "before_flush", _number_new_rows)
        _sessionmakers[url] = factory
    return _sessionmakers[url]


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines (tests; after fork)."""
    for engine in _engines.values():
        engine.dispose()
    _engines.clear()
    _sessionmakers.clear()


@contextmanager
def session_scope(settings: Settings | None = None, *, domains: Iterable[str] | None = None) -> Iterator[Session]:
    """A transaction: commits on success, rolls back on any exception.

    The models of ``domains`` (names of :mod:`mailservice.model_domains`) and of those they need are registered
    first, of every domain when None: a light command that reads one domain names it and starts sooner.
    """
    model_domains.load(domains)
    factory = _sessionmaker_for((settings or get_settings()).effective_database_url)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(settings: Settings | None = None) -> Any:
    """The Alembic configuration pointing at the package's migrations and the configured database."""
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(package_path("migrations")))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["database_url"] = (settings or get_settings()).effective_database_url
    return cfg


def pending_migrations(settings: Settings | None = None) -> set[str]:
    """Head revisions the configured database has not reached (empty: migrated); raises when it is unreachable."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    heads = set(ScriptDirectory.from_config(alembic_config(settings)).get_heads())
    with get_engine(settings).connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return heads - current


def upgrade(settings: Settings | None = None, revision: str = "heads") -> None:
    """Apply every migration (all domain branches) to the configured database."""
    from alembic import command

    command.upgrade(alembic_config(settings), revision)
