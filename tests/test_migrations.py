"""Models and migrations agree, on SQLite and on PostgreSQL: every schema change has its migration."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from mailservice import db
from mailservice.inforequests.search_index import include_name
from mailservice.models import Base


def test_migrations_match_models(db_url: str) -> None:
    engine = db._engine_for(db_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "include_name": include_name})
        diff = compare_metadata(context, Base.metadata)
    assert diff == [], f"models and migrations differ (write a migration): {diff}"


def test_every_domain_branch_starts_at_the_foundation() -> None:
    script = ScriptDirectory.from_config(db.alembic_config())
    bases = script.get_bases()
    assert bases == ["0001"], f"one root revision expected, found {bases}"
