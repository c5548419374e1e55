"""Alembic environment: the URL comes from Settings (or the caller), the metadata from every domain's models."""

from __future__ import annotations

from alembic import context

from mailservice.config import get_settings
from mailservice.db import make_engine
from mailservice.inforequests.search_index import include_name
from mailservice.models import Base

config = context.config
url = config.attributes.get("database_url") or get_settings().effective_database_url


def run_migrations_offline() -> None:
    """Emit SQL without a connection (``alembic upgrade --sql``)."""
    context.configure(
        url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True, include_name=include_name
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations on a live connection; SQLite gets batch mode so ALTERs work."""
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            include_name=include_name,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
