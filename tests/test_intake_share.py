"""The poller prepares a share of a pooled batch itself while the workers prepare the rest.

On two cores one worker takes about 1.7 times the CPU per letter that the poller needs to write it, so the poller
would otherwise wait (README, "How it works"). The share grows while the workers are still busy when the poller has
done its part, shrinks when they were done first, and is never more than half a batch (README, "How it works").
No database: preparation is the database-free half of intake.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path

import pytest

from mailservice.intake import prepare
from mailservice.intake.prepare import Prepared, Preparer
from tests.conftest import make_env, reset_caches
from tests.mailfactory import citizen_mail, html_mail


class _StillBusy(Future[list[Prepared]]):
    """A worker's result that is ready to read but reports itself unfinished when the poller looks first."""

    def done(self) -> bool:
        return False


def _finished() -> Future[list[Prepared]]:
    future: Future[list[Prepared]] = Future()
    future.set_result([])
    return future


def _preparer(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, workers: str) -> Preparer:
    settings = make_env(monkeypatch, tmp_path, f"sqlite:///{tmp_path / 'unused.sqlite3'}", intake_workers=workers)
    return Preparer(settings)


def test_the_share_grows_while_the_workers_are_busy_and_stays_at_most_half(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    preparer = _preparer(monkeypatch, tmp_path, "1")
    assert preparer.local_share == 0.0
    shares = []
    for _ in range(100):
        busy = _StillBusy()
        busy.set_result([])
        preparer._collect([busy], [], 0)
        shares.append(preparer.local_share)
    assert shares[0] > 0.0
    assert shares == sorted(shares)  # only ever grows while the workers lag
    assert max(shares) <= 0.5  # never more than half a batch: the workers keep the larger part
    assert shares[-1] == pytest.approx(0.5)
    reset_caches()


def test_the_share_shrinks_to_none_when_the_workers_were_done_first(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    preparer = _preparer(monkeypatch, tmp_path, "1")
    preparer.local_share = 0.5
    shares = []
    for _ in range(100):
        preparer._collect([_finished()], [], 0)
        shares.append(preparer.local_share)
    assert shares[0] < 0.5
    assert shares == sorted(shares, reverse=True)
    assert shares[-1] == 0.0
    reset_caches()


def test_a_batch_prepared_partly_by_the_poller_is_the_same_and_in_order(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    preparer = _preparer(monkeypatch, tmp_path, "1")
    raws = [
        citizen_mail(sender=f"s{i}@example.ru", subject=f"Запрос сведений {i}", body=f"Прошу сообщить, сколько {i}.")
        if i % 3
        else html_mail(sender=f"s{i}@example.ru", subject=f"Жалоба {i}", paragraphs=[f"Не убран снег у дома {i}."])
        for i in range(12)
    ]
    items = [(raw, None) for raw in raws]
    here: list[int] = []
    chunk = prepare._prepare_chunk

    def counted(part: Sequence[tuple[bytes, str | None]], limits: prepare.Limits) -> list[Prepared]:
        here.append(len(part))  # only calls in this process are counted: the worker's are in another one
        return chunk(part, limits)

    monkeypatch.setattr(prepare, "_prepare_chunk", counted)
    try:
        preparer.local_share = 0.0
        pooled = preparer.prepare(items)
        assert here == []
        preparer.local_share = 0.5
        shared = preparer.prepare(items)
    finally:
        preparer.close()
        reset_caches()
    assert here == [6]  # the last half of the batch, prepared here
    assert [p.raw_sha256 for p in shared] == [p.raw_sha256 for p in pooled]
    assert [p.parsed.from_addr for p in shared if p.parsed] == [f"s{i}@example.ru" for i in range(12)]
    assert shared == pooled  # every field: parsed message, triage, labels with their reasons


def test_a_batch_prepared_alone_is_split_evenly_and_teaches_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The first batch of an IMAP pass: the poller has nothing to write while the workers prepare it, so it takes
    # an even part (half, beside one worker) whatever it has learnt, and the learnt share is left as it was.
    preparer = _preparer(monkeypatch, tmp_path, "1")
    raws = [
        citizen_mail(sender=f"s{i}@example.ru", subject=f"Вопрос {i}", body=f"Прошу сообщить {i}.") for i in range(12)
    ]
    here: list[int] = []
    chunk = prepare._prepare_chunk

    def counted(part: Sequence[tuple[bytes, str | None]], limits: prepare.Limits) -> list[Prepared]:
        here.append(len(part))
        return chunk(part, limits)

    monkeypatch.setattr(prepare, "_prepare_chunk", counted)
    try:
        for learnt in (0.0, 0.2):
            preparer.local_share = learnt
            here.clear()
            alone = preparer.submit([(raw, None) for raw in raws], alone=True)()
            assert here == [6]
            assert preparer.local_share == learnt
            assert [p.parsed.from_addr for p in alone if p.parsed] == [f"s{i}@example.ru" for i in range(12)]
    finally:
        preparer.close()
        reset_caches()
