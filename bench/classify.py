"""Classifier throughput on one core over a realistic mix of mail, the cost by length, and the share of intake.

The mix (tests/mailfactory.mail_mix) is built from the packaged labelled sets: median about 240 characters, 6%
over 1,000, a few up to 12,000, a fifth HTML only. The baseline, measured in the same run on the same texts, is
plain razdel tokenisation (the cheapest step any classifier of Russian text needs), so the ratio says how many
times dearer a full classification is. A table gives the warm cost of one letter by length: it must grow no
faster than the text (and stops growing at about 6,000 characters: the start and end are read).

    .venv/bin/python bench/classify.py            # N = 5000
    .venv/bin/python bench/classify.py --quick    # N = 1000, well under two minutes

The last line of the output is one JSON object with the figures.
"""

from __future__ import annotations

import os

# One core: BLAS threads must be limited before numpy is imported.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_variable, "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from razdel import tokenize  # noqa: E402

from bench.machine import facts as machine_facts  # noqa: E402
from mailservice.classify.engine import PACKAGED_SETS, Classifier  # noqa: E402
from mailservice.classify.evaluate import read_datasets  # noqa: E402
from mailservice.classify.model import train  # noqa: E402
from mailservice.classify.rules import load_rules  # noqa: E402
from mailservice.classify.text import clear_caches  # noqa: E402
from mailservice.mail.quotes import html_to_text  # noqa: E402
from tests.mailfactory import mail_mix, mail_mix_messages  # noqa: E402

LENGTHS = (250, 1_000, 2_000, 4_000, 6_000, 8_000, 12_000, 24_000)


def pin_to_one_core() -> str:
    """Run on a single CPU where the OS allows it; returns what was done, for the output."""
    if hasattr(os, "sched_setaffinity") and hasattr(os, "sched_getaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        return f"привязан к процессору {cpu}"
    return "привязка к процессору недоступна в этой ОС"


def intake_share(count: int) -> tuple[float, float]:
    """Run ``count`` messages of the mix through the real intake (SQLite in a temporary folder) and return the
    share of its time spent classifying, and the intake rate. The classifier call inside intake is timed by a
    wrapper."""
    import tempfile

    from mailservice import config, db
    from mailservice.inforequests import classification
    from mailservice.intake import pipeline

    work = Path(tempfile.mkdtemp(prefix="bench-classify-"))
    os.environ.update(
        {
            "MAILSERVICE_ENVIRONMENT": "development",
            "MAILSERVICE_DATA_DIR": str(work / "data"),
            "MAILSERVICE_DATABASE_URL": f"sqlite:///{work / 'intake.sqlite3'}",
            "MAILSERVICE_SECRET_KEYS": "bench-" + "k" * 40,
            # Prepare (and classify) in this process, where the wrapper below can time it.
            "MAILSERVICE_INTAKE_WORKERS": "0",
        }
    )
    config.get_settings.cache_clear()
    settings = config.get_settings()
    db.upgrade(settings)
    raws = mail_mix_messages(count, seed=29)
    spent = [0.0]
    original = classification.labels_for

    def timed(subject: str, body: str) -> object:
        start = time.perf_counter()
        try:
            return original(subject, body)
        finally:
            spent[0] += time.perf_counter() - start

    # Intake calls labels_for through its module (imported at call time) or a name bound at import: wrap both.
    patched = [module for module in (classification, pipeline) if getattr(module, "labels_for", None) is original]
    for module in patched:
        module.labels_for = timed  # type: ignore[attr-defined]
    original("прогрев", "прогрев")  # load the model outside the timing
    start = time.perf_counter()
    for offset in range(0, count, 100):
        pipeline.process_batch(settings, [(raw, pipeline.Source("file")) for raw in raws[offset : offset + 100]])
    total = time.perf_counter() - start
    for module in patched:
        module.labels_for = original  # type: ignore[attr-defined]
    db.dispose_engines()
    return spent[0] / total, count / total


def by_length(classifier: Classifier, texts: list[str]) -> list[tuple[int, float]]:
    """Warm milliseconds to classify one letter of each length (the median of several runs)."""
    source = "\n\n".join(texts)
    while len(source) < max(LENGTHS):
        source += "\n\n" + source
    table = []
    for length in LENGTHS:
        letter = source[:length]
        classifier.classify("", letter)  # warm: its words parsed, its chunks tokenised
        runs = []
        for _ in range(15):
            start = time.perf_counter()
            classifier.classify("", letter)
            runs.append(time.perf_counter() - start)
        table.append((length, statistics.median(runs) * 1000))
    return table


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def measure(function: object, messages: list[tuple[str, str]]) -> float:
    assert callable(function)
    start = time.perf_counter()
    for subject, body in messages:
        function(subject, body)
    return rate(len(messages), time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=5000, help="messages to classify (default 5000)")
    parser.add_argument("--quick", action="store_true", help="a smaller run (N = 1000)")
    args = parser.parse_args(argv)
    n = 1000 if args.quick else args.n
    if n < 1:
        parser.error("--n must be positive")

    pinned = pin_to_one_core()
    examples = read_datasets(PACKAGED_SETS)
    mix = mail_mix(n)
    # What the classifier is given: the text of an HTML-only letter as parsing makes it (not timed here).
    messages = [(subject, html_to_text(f"<p>{body}</p>") if html_only else body) for subject, body, html_only in mix]
    lengths = sorted(len(subject) + len(body) for subject, body, _ in mix)
    rules = load_rules()
    model = train(examples, rules_version=rules.version)  # not timed: training happens once, offline
    with_model = Classifier(rules, model)
    rules_only = Classifier(rules)

    # Cold: every distinct word is parsed by pymorphy3 and every chunk tokenised once (the state after a restart).
    clear_caches()
    cold = measure(with_model.classify, messages[:500])
    # Steady state: the per-word cache holds the vocabulary of everyday mail.
    baseline = measure(lambda subject, body: list(tokenize(f"{subject}\n{body}")), messages)
    full = measure(with_model.classify, messages)
    rules_rate = measure(rules_only.classify, messages)
    table = by_length(with_model, [body for _, body, _ in mix])
    ms_12k = dict(table)[12_000]

    ratio = full / baseline
    over_1000 = sum(length > 1000 for length in lengths) / len(lengths)
    html_share = sum(html_only for *_, html_only in mix) / len(mix)
    print(
        f"Классификатор: {n} писем смеси (медиана {statistics.median(lengths):.0f} знаков, длиннее 1000 — "
        f"{over_1000:.1%}, самое длинное {lengths[-1]}, только HTML — {html_share:.0%}), {pinned}"
    )
    print(f"  правила + модель ({with_model.version}): {full:,.0f} писем/с".replace(",", " "))
    print(f"  только правила: {rules_rate:,.0f} писем/с".replace(",", " "))
    print(f"  первый проход с пустым кешем лемм: {cold:,.0f} писем/с".replace(",", " "))
    print(f"  база (токенизация razdel тех же текстов): {baseline:,.0f} писем/с".replace(",", " "))
    print(f"  отношение к базе: {ratio:.3f}")
    print("  Одно письмо, прогретый кеш (медиана 15 прогонов):")
    print("    знаков      мс   мкс на знак")
    for length, ms in table:
        print(f"    {length:>6} {ms:>7.2f} {ms * 1000 / length:>10.2f}")
    print(f"  письмо в 12 000 знаков: {ms_12k:.1f} мс; цель: не более 20 мс — {'да' if ms_12k <= 20 else 'нет'}")
    share, intake_rate = intake_share(300 if args.quick else 1000)
    intake_text = f"{intake_rate:,.0f}".replace(",", " ")
    print(f"  доля классификации во времени приёма писем: {share:.1%} (приём: {intake_text} писем/с)")
    figures = {
        "messages_per_s": round(full, 1),
        "baseline_per_s": round(baseline, 1),
        "ratio": round(ratio, 4),
        "ms_by_length": {str(length): round(ms, 3) for length, ms in table},
        "ms_12000_chars": round(ms_12k, 2),
        "median_chars": statistics.median(lengths),
        "share_over_1000": round(over_1000, 4),
        "share_html_only": round(html_share, 4),
        "share_of_intake": round(share, 3),
        "intake_messages_per_s": round(intake_rate, 1),
        "loadavg": [round(x, 2) for x in os.getloadavg()],
        **machine_facts(),
    }
    print(f"  Python {figures['python']['version']}: 10^7 сложений в цикле за {figures['python_loop_s']} с")
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
