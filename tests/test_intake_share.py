"""The poller prepares the part of a pooled batch that no worker has started when it needs the results.

A batch goes to the workers in chunks, one running and one waiting per worker; the other chunks stay with the poller,
which takes them back from the end and prepares them itself rather than wait (README, "How it works"). Whoever
prepared a chunk, the batch's results are the same and in order. No database: preparation is the database-free
half of intake.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import pytest

from mailservice import blobs
from mailservice.intake import prepare
from mailservice.intake.prepare import CHUNK_SIZE, Prepared, Preparer
from tests.conftest import make_env, reset_caches
from tests.mailfactory import citizen_mail, html_mail
from tests.test_history import mail_with_attachment

Items = Sequence[tuple[bytes, str | None]]


class _RecordingPool:
    """Stands for a worker pool that only records what it is given; the test finishes the futures itself."""

    def __init__(self) -> None:
        self.given: list[int] = []  # the size of each chunk handed over, in order
        self.futures: list[Future[list[Prepared]]] = []

    def submit(self, _fn: object, items: Items, _limits: object) -> Future[Any]:
        future: Future[list[Prepared]] = Future()
        self.given.append(len(items))
        self.futures.append(future)
        return future


class _HeldPool:
    """Stands for a worker pool whose workers start only when the test lets them, so who prepares what is fixed."""

    def __init__(self) -> None:
        self.given: list[int] = []  # the size of each chunk handed over, in order
        self.futures: list[Future[list[Prepared]]] = []
        self.go = threading.Event()
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[[Items, prepare.Limits], list[Prepared]], items: Items, limits: Any) -> Future[Any]:
        future: Future[list[Prepared]] = Future()
        self.given.append(len(items))
        self.futures.append(future)

        def work() -> None:
            self.go.wait(timeout=60)
            if future.set_running_or_notify_cancel():
                future.set_result(fn(items, limits))

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        self._threads.append(thread)
        return future

    def join(self) -> None:
        self.go.set()
        for thread in self._threads:
            thread.join(timeout=60)


class _RefusingPool:
    """A pool that takes nothing: a worker died, or it is shutting down."""

    def submit(self, *_args: Any) -> Future[Any]:
        raise BrokenProcessPool("a worker died")


def _preparer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, pool: object, depth: int = 2) -> Preparer:
    settings = make_env(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'unused.sqlite3'}", intake_workers="1")
    preparer = Preparer(settings)
    feeder = prepare._Feeder(pool, preparer.limits, depth)  # type: ignore[arg-type]
    monkeypatch.setattr(preparer, "_executor", lambda: pool)
    preparer._feeder = feeder
    return preparer


def _letters(count: int) -> list[tuple[bytes, str | None]]:
    return [
        (
            citizen_mail(
                sender=f"s{i}@example.ru", subject=f"Запрос сведений {i}", body=f"Прошу сообщить, сколько {i}."
            )
            if i % 3
            else html_mail(sender=f"s{i}@example.ru", subject=f"Жалоба {i}", paragraphs=[f"Не убран снег у дома {i}."]),
            None,
        )
        for i in range(count)
    ]


def _counting_here(monkeypatch: pytest.MonkeyPatch, then: Callable[[], None] = lambda: None) -> list[int]:
    """The sizes of the chunks prepared by the poller's own thread (the pool's stand-in threads are not counted);
    ``then`` runs before the first of them."""
    here: list[int] = []
    chunk = prepare._prepare_chunk

    def counted(part: Items, limits: prepare.Limits) -> list[Prepared]:
        if threading.current_thread() is threading.main_thread():
            if not here:
                then()
            here.append(len(part))
        return chunk(part, limits)

    monkeypatch.setattr(prepare, "_prepare_chunk", counted)
    return here


def test_the_feeder_gives_each_worker_one_chunk_running_and_one_waiting() -> None:
    pool = _RecordingPool()
    feeder = prepare._Feeder(pool, None, 2)  # type: ignore[arg-type]
    chunks = [prepare._Chunk([(b"x", None)] * size) for size in (1, 2, 3, 4, 5)]
    feeder.add(chunks)
    assert pool.given == [1, 2]  # the rest wait with the poller
    assert feeder.take_back(chunks[4])  # the last one is the poller's now
    assert not feeder.take_back(chunks[0])  # a worker has this one
    pool.futures[0].set_result([])
    assert pool.given == [1, 2, 3]  # a finished chunk lets the next one go, in order
    pool.futures[1].set_result([])
    pool.futures[2].set_result([])
    assert pool.given == [1, 2, 3, 4]  # and never the one taken back
    assert not feeder.take_back(chunks[3])
    feeder.add([prepare._Chunk([(b"y", None)] * 6)])
    assert pool.given == [1, 2, 3, 4, 6]  # the next batch's chunks follow


def test_the_poller_prepares_the_chunks_no_worker_has_and_the_batch_keeps_its_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    items = _letters(2 * CHUNK_SIZE + 5)
    pool = _HeldPool()
    preparer = _preparer(monkeypatch, tmp_path, pool)
    expected = prepare._prepare_chunk(items, preparer.limits)  # all of it in one go, before anything is counted
    here = _counting_here(monkeypatch, then=pool.go.set)  # the workers start once the poller has taken its part
    try:
        results = preparer.submit(items)()
    finally:
        pool.join()
        reset_caches()
    assert pool.given == [CHUNK_SIZE, CHUNK_SIZE]  # one running and one waiting for the only worker
    assert here == [5]  # the last chunk, which no worker had
    assert [p.parsed.from_addr for p in results if p.parsed] == [f"s{i}@example.ru" for i in range(len(items))]
    assert results == expected  # every field: parsed message, triage, labels with their reasons


def test_a_batch_no_worker_takes_is_prepared_by_the_poller_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    items = _letters(CHUNK_SIZE + 3)
    preparer = _preparer(monkeypatch, tmp_path, _RefusingPool())
    expected = prepare._prepare_chunk(items, preparer.limits)
    here = _counting_here(monkeypatch)
    try:
        results = preparer.submit(items)()
    finally:
        reset_caches()
    assert here == [3, CHUNK_SIZE]  # taken back from the end
    assert results == expected
    assert preparer._feeder is None  # the next batch starts new workers


def test_a_worker_killed_between_batches_is_replaced_and_the_batch_is_whole(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = make_env(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'unused.sqlite3'}", intake_workers="1")
    preparer = Preparer(settings)
    items = _letters(CHUNK_SIZE + 3)
    try:
        first = preparer.prepare(items)
        [dead] = preparer.worker_pids
        os.kill(dead, signal.SIGKILL)
        # Whether the pool has noticed by then or not, the batch comes back whole and the workers are replaced.
        second = preparer.prepare(items)
        third = preparer.prepare(items)
        [alive] = preparer.worker_pids
    finally:
        preparer.close()
        reset_caches()
    assert alive != dead
    assert first == second == third


def test_a_batch_whose_pool_was_replaced_is_prepared_by_the_poller(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # New settings or a retrained model start fresh workers (Preparer._executor): what the old ones had not begun
    # is cancelled, and the batch must still come back whole.
    items = _letters(CHUNK_SIZE + 3)
    pool = _HeldPool()
    preparer = _preparer(monkeypatch, tmp_path, pool, depth=1)
    expected = prepare._prepare_chunk(items, preparer.limits)
    collect = preparer.submit(items)
    assert pool.given == [CHUNK_SIZE]
    assert pool.futures[0].cancel()
    try:
        results = collect()
    finally:
        pool.join()
        reset_caches()
    assert results == expected


def test_a_batch_through_a_real_worker_is_the_batch_prepared_here(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    settings = make_env(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'unused.sqlite3'}", intake_workers="1")
    preparer = Preparer(settings)
    items = _letters(2 * CHUNK_SIZE + 5)
    try:
        pooled = preparer.prepare(items)
        assert preparer.workers_running
    finally:
        preparer.close()
    expected = prepare._prepare_chunk(items, preparer.limits)
    reset_caches()
    assert pooled == expected


def _attached(sender: str, filename: str, data: bytes) -> bytes:
    body = "Прошу проверить договор аренды участка, скан во вложении."
    return mail_with_attachment(sender, "Иванов Иван", "Договор аренды", body, filename, data)


def test_a_batch_is_made_durable_once_after_every_chunk_whoever_prepared_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The blobs of a batch (the raw letters and their attachments) are written by the workers and the poller
    without a sync, and made durable once, by the poller, when every chunk is done: before the batch goes on to
    its transaction, never a wait for the disk per chunk (README, "How it works")."""
    letters = _letters(2 * CHUNK_SIZE + 5)
    letters[3] = (_attached("s3@example.ru", "scan.pdf", b"%PDF-1.4 scan of a lease"), None)
    letters[-1] = (_attached("s36@example.ru", "plan.pdf", b"%PDF-1.4 plan of a plot"), None)
    on_disk_at_sync: list[set[str]] = []

    def syncfs(path: Path) -> bool:
        on_disk_at_sync.append({file.name for file in path.rglob("*") if file.is_file()})
        return True

    monkeypatch.setattr(blobs, "_syncfs", syncfs)
    pool = _HeldPool()
    preparer = _preparer(monkeypatch, tmp_path, pool)
    here = _counting_here(monkeypatch, then=pool.go.set)
    try:
        results = preparer.submit(letters)()
        single = preparer.submit(letters[:2])()  # a batch too small for the workers: prepared here, synced once
    finally:
        pool.join()
        reset_caches()
    assert pool.given == [CHUNK_SIZE, CHUNK_SIZE] and here == [5, 2]  # the worker's chunks and the poller's
    named = {item.raw_sha256 for item in results} | {f.sha256 for item in results for f in item.attachments}
    assert {f.filename for item in results for f in item.attachments} >= {"scan.pdf", "plan.pdf"}
    assert len(on_disk_at_sync) == 2  # one sync a batch
    assert named <= on_disk_at_sync[0]  # after the last blob of the first batch was written, whoever wrote it
    assert {item.raw_sha256 for item in single} <= on_disk_at_sync[1]


def test_without_syncfs_each_blob_a_batch_names_is_synced_with_its_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Where syncfs(2) is missing (not Linux), the poller syncs each blob the batch names and the folder that
    holds its name, whichever process wrote it."""
    synced: list[tuple[Path, bool]] = []
    monkeypatch.setattr(blobs, "_syncfs", lambda _path: False)
    monkeypatch.setattr(blobs, "_fsync_path", lambda path, directory=False: synced.append((path, directory)))
    letters = _letters(3)
    letters[1] = (_attached("s1@example.ru", "scan.pdf", b"%PDF-1.4 scan"), None)
    preparer = _preparer(monkeypatch, tmp_path, _RecordingPool())
    try:
        results = preparer.submit(letters)()  # below the pool's minimum: prepared here
    finally:
        reset_caches()
    store = blobs.BlobStore(preparer.limits.blob_dir)
    digests = [item.raw_sha256 for item in results] + [f.sha256 for item in results for f in item.attachments]
    assert "scan.pdf" in {f.filename for item in results for f in item.attachments}
    expected = {(store.path(d), False) for d in digests} | {(store.path(d).parent, True) for d in digests}
    assert set(synced) == expected


_WORKER = """
import pickle, sys
from mailservice.config import get_settings
from mailservice.intake import prepare
letters = pickle.loads(sys.stdin.buffer.read())
results = prepare._prepare_in_worker([(raw, None) for raw in letters], prepare.Limits.of(get_settings()))
assert all(item.labels is not None and not item.error for item in results), results
print(" ".join(sorted(sys.modules)))
"""


def test_a_worker_prepares_letters_without_the_database_the_notices_or_the_documents(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A preparing worker imports what preparing needs: parsing, triage, the classifier. Not the ORM, the request
    service, its notices or the document builders (PDF, DOCX): they cost each worker a second at start-up and
    their memory for its life. A fresh process prepares plain, HTML and attached letters, as a worker does."""
    make_env(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'unused.sqlite3'}", intake_workers="1")
    from mailservice.classify import engine

    engine.ensure_seed_model()  # as the poller does before it starts workers
    letters = [raw for raw, _envelope in _letters(3)]
    letters.append(_attached("s4@example.ru", "scan.pdf", b"%PDF-1.4 scan"))
    result = subprocess.run(
        [sys.executable, "-c", _WORKER],
        input=pickle.dumps(letters),
        capture_output=True,
        timeout=300,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    loaded = set(result.stdout.decode().split())
    assert {"mailservice.classify.engine", "mailservice.mail.parse"} <= loaded  # it did parse and classify
    heavy = {
        "mailservice.db",
        "sqlalchemy.orm",
        "mailservice.inforequests.models",
        "mailservice.inforequests.service",
        "mailservice.inforequests.notifications",
        "mailservice.documents",
        "fpdf",
        "docx",
    }
    assert loaded & heavy == set()
