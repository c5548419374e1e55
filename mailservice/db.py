"""Database engine, sessions and migrations.

SQLite (WAL) is the embedded default, PostgreSQL the production database; both run the same code and the same
Alembic migrations. Every domain keeps its models in its own package and registers them on :class:`Base`.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from sqlalchemy import Column, Connection, MetaData, event, func, inspect, select
from sqlalchemy.orm import DeclarativeBase, Mapper, Session, sessionmaker

from mailservice import engine, model_domains
from mailservice.config import Settings, get_settings
from mailservice.engine import UTCDateTime, _engine_for, get_engine, make_engine, utcnow
from mailservice.resources import package_path

# The engine and the shared column types live in mailservice.engine (no ORM); every caller may keep importing them
# from here.
__all__ = [
    "Base",
    "UTCDateTime",
    "_engine_for",
    "alembic_config",
    "dispose_engines",
    "get_engine",
    "make_engine",
    "pending_migrations",
    "session_scope",
    "upgrade",
    "utcnow",
    "with_column_defaults",
]

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


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


@functools.cache
def _generated_id(mapper: Mapper[Any]) -> tuple[str, Column[Any]] | None:
    """The attribute and column of a mapper's single integer primary key that the database numbers, if any."""
    if len(mapper.primary_key) != 1:
        return None
    column = mapper.primary_key[0]
    if column.table.autoincrement_column is not column or column.default is not None:
        return None
    return mapper.get_property_by_column(column).key, column


_mappers: dict[type, Mapper[Any]] = {}


def _mapper_of(model: type) -> Mapper[Any]:
    mapper = _mappers.get(model)
    if mapper is None:
        mapper = _mappers[model] = inspect(model)
    return mapper


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
        mapper = _mapper_of(type(obj))
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


_sessionmakers: dict[str, sessionmaker[Session]] = {}


def _sessionmaker_for(url: str) -> sessionmaker[Session]:
    if url not in _sessionmakers:
        factory = sessionmaker(bind=_engine_for(url), expire_on_commit=False)
        if url.startswith("sqlite"):
            event.listen(factory, "before_flush", _number_new_rows)
        _sessionmakers[url] = factory
    return _sessionmakers[url]


def dispose_engines() -> None:
    """Close every pooled connection and forget the engines and session factories (tests; after fork)."""
    engine.dispose_engines()
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


def pending_migrations(settings: Settings | None = None, connection: Connection | None = None) -> set[str]:
    """Head revisions the configured database has not reached (empty: migrated); raises when it is unreachable.

    ``connection``: read through one already open (a transaction holding SQLite's write lock would make a second
    connection wait for itself).
    """
    from alembic.runtime.migration import MigrationContext

    heads = set(_package_heads())
    if connection is not None:
        return heads - set(MigrationContext.configure(connection).get_current_heads())
    with get_engine(settings).connect() as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    return heads - current


@functools.cache
def _package_heads() -> frozenset[str]:
    """The head revisions of the installed package's migrations: read once a process, as they cannot change
    under it (reading every migration script again took 75 ms of each /readyz probe)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(str(package_path("migrations"))).get_heads())


def _not_per_connection_chatter(record: logging.LogRecord) -> bool:
    # Alembic logs these two at INFO whenever a migration context opens, so every /readyz probe (compose checks it
    # every few seconds) wrote them to the service's log; the lines of an actual upgrade are kept.
    return not str(record.msg).startswith(("Context impl ", "Will assume "))


logging.getLogger("alembic.runtime.migration").addFilter(_not_per_connection_chatter)


def upgrade(settings: Settings | None = None, revision: str = "heads") -> None:
    """Apply every migration (all domain branches) to the configured database."""
    from alembic import command

    command.upgrade(alembic_config(settings), revision)
