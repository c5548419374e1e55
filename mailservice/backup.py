"""`mailservice backup` and `mailservice restore`: the database and the blob store, consistent with each other.

The database is copied first (SQLite: the online backup API, safe while the service writes; PostgreSQL: ``pg_dump``
in custom format inside an exported snapshot), then the blobs that copy refers to. Blobs are content-addressed and
never change, so a blob copied after the dump is the blob the dump meant; intake stores a blob before the row that
names it, so every reference in the dump has its file. A manifest records the SHA-256 of every file; restore checks
all of them before it touches anything.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from mailservice.config import Settings, get_settings

MANIFEST = "manifest.json"
FORMAT = 1
SQLITE_FILE = "database.sqlite3"
PG_FILE = "database.pgdump"
BLOB_DIR = "blobs"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK = 1 << 20


class BackupError(Exception):
    """The backup or restore cannot be done as asked; the message is Russian and names what to do."""


@dataclass(frozen=True)
class BackupResult:
    """What a backup or a restore wrote."""

    folder: Path
    backend: str
    blobs: int
    blob_bytes: int


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _backend(settings: Settings) -> str:
    url = settings.effective_database_url
    if url.startswith("sqlite"):
        return "sqlite"
    if url.startswith("postgresql"):
        return "postgresql"
    raise BackupError(f"резервное копирование умеет SQLite и PostgreSQL, а не {url.split(':', 1)[0]}")


def _sqlite_path(settings: Settings) -> Path:
    return Path(settings.effective_database_url.split("///", 1)[-1])


def _libpq_url(settings: Settings) -> str:
    """The database URL as libpq (pg_dump, psycopg) reads it: without SQLAlchemy's ``+driver``."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", settings.effective_database_url)


def _pg_child(url: str) -> tuple[str, dict[str, str]]:
    """The connection string and environment for pg_dump / pg_restore: the password goes in the child's environment
    (PGPASSWORD, readable by this user alone), never on its command line, which every local user reads in ``ps``."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = {key: str(value) for key, value in conninfo_to_dict(url).items() if value is not None}
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = password
    return make_conninfo(**params), env


def _blob_columns() -> list[tuple[str, str]]:
    """(table, column) of every column that may name a blob: the ``*sha256`` columns of the models."""
    import mailservice.models  # noqa: F401  every domain's tables
    from mailservice.db import Base

    return [
        (table.name, column.name)
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("sha256")
    ]


def _references(rows: Iterable[tuple[Any, ...]]) -> set[str]:
    return {value for (value,) in rows if isinstance(value, str) and _HEX64.fullmatch(value)}


def _sqlite_references(path: Path) -> set[str]:
    found: set[str] = set()
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, column in _blob_columns():
            if table in tables:
                found |= _references(connection.execute(f'SELECT DISTINCT "{column}" FROM "{table}"'))  # noqa: S608
    finally:
        connection.close()
    return found


@contextmanager
def _owner_only() -> Iterator[None]:
    """Create every file and folder of this block for the owner alone (umask 077), pg_dump's included.

    A copy holds every letter, name and address (152-FZ art. 19: protection from unauthorised access); under the
    usual umask 022 SQLite, pg_dump and the file copies would make them readable by every local user. The umask is
    the process's: a file another thread makes meanwhile is only made more private."""
    previous = os.umask(0o077)
    try:
        yield
    finally:
        os.umask(previous)


def _check_output(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"папка {folder} не пуста: укажите новую или пустую папку для копии")
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)  # an empty folder made beforehand (by an administrator, at 0755) is closed too


def _dump_sqlite(settings: Settings, folder: Path) -> set[str]:
    source_path = _sqlite_path(settings)
    if not source_path.is_file():
        raise BackupError(f"базы данных нет: {source_path}")
    target = folder / SQLITE_FILE
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True)
    copy = sqlite3.connect(target)
    try:
        source.backup(copy)  # the online backup API: a consistent copy while the service writes
    finally:
        copy.close()
        source.close()
    return _sqlite_references(target)


def _pg_tool(name: str) -> str:
    tool = shutil.which(name)
    if tool is None:
        raise BackupError(
            f"не найдена программа {name}: установите клиент PostgreSQL (Debian: apt-get install postgresql-client)"
        )
    return tool


def _dump_postgresql(settings: Settings, folder: Path) -> set[str]:
    import psycopg

    pg_dump = _pg_tool("pg_dump")
    url = _libpq_url(settings)
    found: set[str] = set()
    # One snapshot for the dump and for the list of blobs it refers to: the transaction that exported it stays
    # open until both are done (pg_dump --snapshot).
    with psycopg.connect(url) as connection:
        connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        row = connection.execute("SELECT pg_export_snapshot()").fetchone()
        assert row is not None
        conninfo, env = _pg_child(url)
        result = subprocess.run(
            [pg_dump, "--format=custom", f"--snapshot={row[0]}", f"--file={folder / PG_FILE}", "--dbname", conninfo],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        if result.returncode != 0:
            raise BackupError(f"pg_dump завершился с ошибкой: {result.stderr.strip()[:500]}")
        tables = {
            name
            for (name,) in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
            )
        }
        for table, column in _blob_columns():
            if table in tables:
                found |= _references(connection.execute(f'SELECT DISTINCT "{column}" FROM "{table}"'))  # noqa: S608
        connection.rollback()
    return found


def _copy_blobs(source_root: Path, target_root: Path, digests: Iterable[str]) -> Iterator[tuple[str, int]]:
    """Copy each blob that exists, checking its content against its name; yield (digest, size)."""
    from mailservice.blobs import BlobStore

    source, target = BlobStore(source_root), BlobStore(target_root)
    for digest in sorted(digests):
        path = source.path(digest)
        if not path.is_file():
            continue  # a hash that names no blob (consent texts, minutes' content): nothing to copy
        destination = target.path(digest)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, destination)
        if _sha256_file(destination) != digest:
            raise BackupError(f"файл {path} не соответствует своей контрольной сумме: хранилище повреждено")
        yield digest, destination.stat().st_size


def _heads(settings: Settings) -> list[str]:
    from alembic.script import ScriptDirectory

    from mailservice.db import alembic_config

    return sorted(ScriptDirectory.from_config(alembic_config(settings)).get_heads())


def backup(settings: Settings, folder: Path, *, now: dt.datetime) -> BackupResult:
    """Write the database and the blobs it refers to into ``folder`` (new or empty), with a manifest."""
    from importlib.metadata import version

    backend = _backend(settings)
    with _owner_only():
        return _backup(settings, folder, backend, now=now, version=version("mailservice"))


def _backup(settings: Settings, folder: Path, backend: str, *, now: dt.datetime, version: str) -> BackupResult:
    _check_output(folder)
    digests = _dump_sqlite(settings, folder) if backend == "sqlite" else _dump_postgresql(settings, folder)
    database_file = SQLITE_FILE if backend == "sqlite" else PG_FILE
    blobs = dict(_copy_blobs(settings.blob_dir, folder / BLOB_DIR, digests))
    manifest = {
        "format": FORMAT,
        "created_at": now.isoformat(),
        "mailservice": version,
        "backend": backend,
        "migrations": _heads(settings),
        "database": {"file": database_file, "sha256": _sha256_file(folder / database_file)},
        "blobs": blobs,
    }
    (folder / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    return BackupResult(folder, backend, len(blobs), sum(blobs.values()))


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a backup, after checking every file it lists against its checksum."""
    from mailservice.blobs import BlobStore

    try:
        manifest: dict[str, Any] = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise BackupError(f"в папке {folder} нет читаемого {MANIFEST}: это не резервная копия mailservice") from exc
    if manifest.get("format") != FORMAT:
        raise BackupError(f"неизвестный формат копии: {manifest.get('format')!r}")
    database = folder / manifest["database"]["file"]
    if not database.is_file() or _sha256_file(database) != manifest["database"]["sha256"]:
        raise BackupError(f"файл базы данных {database} отсутствует или повреждён (контрольная сумма не совпадает)")
    store = BlobStore(folder / BLOB_DIR)
    for digest in manifest["blobs"]:
        path = store.path(digest)
        if not path.is_file() or _sha256_file(path) != digest:
            raise BackupError(f"файл {path} отсутствует или повреждён (контрольная сумма не совпадает)")
    return manifest


def _target_is_empty(settings: Settings, backend: str) -> bool:
    from sqlalchemy import inspect

    from mailservice.db import make_engine

    blob_files = settings.blob_dir.is_dir() and any(p.is_file() for p in settings.blob_dir.rglob("*"))
    if backend == "sqlite" and not _sqlite_path(settings).exists():
        return not blob_files
    engine = make_engine(settings.effective_database_url)
    try:
        tables = inspect(engine).get_table_names()
    finally:
        engine.dispose()
    return not tables and not blob_files


@contextmanager
def _no_pooled_connections() -> Iterator[None]:
    from mailservice.db import dispose_engines

    dispose_engines()
    try:
        yield
    finally:
        dispose_engines()


def _restore_sqlite(settings: Settings, folder: Path) -> None:
    from mailservice.engine import private_sqlite_file

    target_path = _sqlite_path(settings)
    private_sqlite_file(target_path)
    source = sqlite3.connect(f"file:{folder / SQLITE_FILE}?mode=ro", uri=True)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)  # replaces every page of the target, WAL included
    finally:
        target.close()
        source.close()


def _restore_postgresql(settings: Settings, folder: Path) -> None:
    import psycopg

    pg_restore = _pg_tool("pg_restore")
    url = _libpq_url(settings)
    with psycopg.connect(url, autocommit=True) as connection:
        # --force: the target's own objects go first, so that nothing of it mixes with the copy.
        connection.execute("DROP SCHEMA IF EXISTS public CASCADE")
        connection.execute("CREATE SCHEMA public")
    conninfo, env = _pg_child(url)
    result = subprocess.run(
        [pg_restore, "--no-owner", "--no-privileges", "--exit-on-error", "--dbname", conninfo, str(folder / PG_FILE)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore завершился с ошибкой: {result.stderr.strip()[:500]}")


def restore(settings: Settings, folder: Path, *, force: bool = False) -> BackupResult:
    """Put a backup back into the configured database and blob store (an empty target, or any with ``force``)."""
    manifest = read_manifest(folder)
    backend = _backend(settings)
    if manifest["backend"] != backend:
        raise BackupError(f"копия сделана из {manifest['backend']}, а настроена база {backend}")
    if not force and not _target_is_empty(settings, backend):
        raise BackupError(
            "в настроенной базе данных или хранилище писем уже есть данные; "
            "восстановление их заменит: повторите с --force, если это и нужно"
        )
    with _no_pooled_connections(), _owner_only():
        if backend == "sqlite":
            _restore_sqlite(settings, folder)
        else:
            _restore_postgresql(settings, folder)
        if force and settings.blob_dir.exists():
            shutil.rmtree(settings.blob_dir)
        blobs = dict(_copy_blobs(folder / BLOB_DIR, settings.blob_dir, manifest["blobs"]))
    os.sync()
    return BackupResult(folder, backend, len(blobs), sum(blobs.values()))


# Commands ----------------------------------------------------------------------------------------------------------

app = typer.Typer(add_completion=False)


@app.command("backup")
def backup_cmd(
    output: Annotated[Path, typer.Option("--output", help="Новая или пустая папка для копии")],
) -> None:
    """Резервная копия: база данных и хранилище писем с контрольными суммами."""
    from mailservice.cli import fail
    from mailservice.db import utcnow

    try:
        result = backup(get_settings(), output, now=utcnow())
    except BackupError as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"Копия ({result.backend}) записана в {result.folder}: файлов писем и вложений {result.blobs}, "
        f"{result.blob_bytes} байт; проверка: mailservice restore --check {result.folder}"
    )


@app.command("restore")
def restore_cmd(
    folder: Annotated[Path, typer.Argument(help="Папка резервной копии")],
    force: Annotated[bool, typer.Option("--force", help="Заменить данные, которые уже есть")] = False,
    check: Annotated[bool, typer.Option("--check", help="Только проверить контрольные суммы копии")] = False,
) -> None:
    """Восстановить базу данных и хранилище писем из резервной копии."""
    from mailservice.cli import fail

    try:
        if check:
            manifest = read_manifest(folder)
            typer.echo(f"Копия цела: {manifest['backend']}, файлов писем и вложений {len(manifest['blobs'])}")
            return
        result = restore(get_settings(), folder, force=force)
    except BackupError as exc:
        raise fail(str(exc)) from None
    typer.echo(
        f"Восстановлено из {result.folder} ({result.backend}): файлов писем и вложений {result.blobs}. "
        "Если копия старше программы, выполните mailservice db upgrade."
    )
