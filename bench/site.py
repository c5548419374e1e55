"""Disclosure site build time: N generated documents, our `site build` against a plain `mkdocs build`.

Both builds run in the same process on the same content: the shipped site plus N documents spread over the
document sections, with realistic Russian text and front matter. "Ours" is `mailservice site build` (hooks:
generated statistics, open data, QR codes, the section lists and document passports, Russian query stemming).
"Plain" is `mkdocs build` of a copy with the generated pages written out as ordinary files, the same theme,
plugins, navigation and Markdown extensions, and no hooks or overrides. The ratio is ours / plain (target: at most
1.15). `site check` of the same folder is timed too. Prints the figures and, last, one JSON line.

    .venv/bin/python bench/site.py            # 2,000 documents
    .venv/bin/python bench/site.py --quick    # 500 documents, well under two minutes
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailservice.publishing.build import build_site
from mailservice.publishing.checks import check_site
from mailservice.publishing.generated import generated_files
from mailservice.publishing.mkdocs_config import read_mkdocs_yml
from mailservice.publishing.schema import load_schema
from mailservice.publishing.stats import RequestRow, SiteData, quarter_statistics

SITE = Path(__file__).resolve().parents[1] / "mailservice" / "site"
TODAY = dt.date(2026, 11, 25)
NOW = dt.datetime(2026, 11, 25, 5, 0, tzinfo=dt.UTC)

SECTION_VALUES: dict[str, dict[str, object]] = {
    "activity": {"kind": "отчёт", "period": "2026 год"},
    "legal_acts": {"kind": "принят", "act_type": "приказ департамента", "adopted": dt.date(2026, 3, 1)},
    "personnel": {"kind": "вакансия", "valid_until": dt.date(2027, 6, 30)},
    "services": {"electronic": True},
    "workgroup": {"kind": "протокол", "meeting_date": dt.date(2026, 4, 15)},
}
WORDS = (
    "департамент земельный участок аренда договор предоставление информация запрос порядок рассмотрение "
    "заявление кадастровый стоимость приватизация имущество торги аукцион услуга электронный портал "
    "регламент приказ постановление область Новосибирск срок ответ гражданин организация отчёт план"
).split()


def paragraph(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(40, 90))]
    return (" ".join(words).capitalize() + ".").replace(" .", ".")


def write_documents(docs: Path, count: int, seed: int = 5) -> None:
    """``count`` valid documents over the document sections (front matter per sections.yml)."""
    rng = random.Random(seed)
    schema = load_schema(docs.parent)
    sections = [s for s in schema.sections if s.documents]
    for i in range(count):
        section = sections[i % len(sections)]
        meta: dict[str, object] = {
            "title": f"Документ № {i + 1}: {rng.choice(WORDS)} {rng.choice(WORDS)} {rng.choice(WORDS)}",
            "category": section.key,
            "published": TODAY - dt.timedelta(days=rng.randint(0, 700)),
            "responsible": "отдел организационной и кадровой работы",
            "review_by": TODAY + dt.timedelta(days=365),
            **SECTION_VALUES.get(section.key, {}),
        }
        if meta.get("kind") in {"принят", "протокол"}:
            meta["number"] = f"{i + 1}-н"
        body = "\n\n".join(
            [paragraph(rng)]
            + [f"## Раздел {k + 1}\n\n{paragraph(rng)}\n\n{paragraph(rng)}" for k in range(rng.randint(1, 3))]
        )
        front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
        (docs / section.dir / f"bench-{i:05d}.md").write_text(f"---\n{front}---\n{body}\n", encoding="utf-8")


def sample_data() -> SiteData:
    rng = random.Random(3)
    rows = [
        RequestRow(
            received_on=dt.date(2026, 1, 1) + dt.timedelta(days=rng.randint(0, 320)),
            registered=True,
            type=rng.choice(["info_request", "appeal"]),
            channel=rng.choice(["email", "phone", "post", "web", "social", "visit"]),
            status="answered",
            answered_on=None,
            due_date=None,
            refusal_ground=None,
            extended=False,
            forwarded=False,
        )
        for _ in range(500)
    ]
    return SiteData(generated_at=NOW, quarters=tuple(quarter_statistics(rows)), has_requests=True, has_mailings=True)


def plain_copy(site: Path, plain: Path, data: SiteData) -> Path:
    """The same content for plain MkDocs: generated pages as files, no hooks, no overrides."""
    shutil.copytree(site / "docs", plain / "docs")
    config = read_mkdocs_yml(site / "mkdocs.yml")
    schema = load_schema(site)
    for item in generated_files(
        schema, data, opendata=dict(config["extra"]["opendata"]), site_url=str(config["site_url"]), today=TODAY
    ):
        target = plain / "docs" / item.path
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(item.content, bytes):
            target.write_bytes(item.content)
        else:
            target.write_text(item.content, encoding="utf-8")
    # Without our overrides the form pages fall back to Material's page template.
    for page in (plain / "docs").glob("*/index.md"):
        text = page.read_text(encoding="utf-8")
        if "\ntemplate:" in text:
            page.write_text("\n".join(x for x in text.split("\n") if not x.startswith("template:")), encoding="utf-8")
    theme = {k: v for k, v in config["theme"].items() if k != "custom_dir"}
    plain_config = {
        "site_name": config["site_name"],
        "site_url": config["site_url"],
        "docs_dir": "docs",
        "theme": theme,
        "plugins": config["plugins"],
        "markdown_extensions": config["markdown_extensions"],
        "extra_css": config.get("extra_css", []),
        "validation": config.get("validation", {}),
        # The same navigation as ours (section pages only): with every document in the navigation, each page
        # would repeat thousands of links and both builds would measure that instead.
        "nav": [{"Главная": "index.md"}] + [{s.title: f"{s.dir}/index.md"} for s in schema.sections],
    }
    path = plain / "mkdocs.yml"
    path.write_text(yaml.safe_dump(plain_config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def plain_build(config_file: Path, output: Path) -> None:
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    build(load_config(str(config_file), site_dir=str(output)))


def timed(label: str, fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    elapsed = time.perf_counter() - start
    print(f"{label}: {elapsed:.2f} s", flush=True)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="500 documents instead of 2,000")
    parser.add_argument("--documents", type=int, default=None)
    parser.add_argument("--repeat", type=int, default=None, help="runs of each build (the best is kept)")
    args = parser.parse_args()
    count = args.documents or (500 if args.quick else 2000)
    repeat = args.repeat or 3  # the best of three: other work on a shared machine only ever adds time
    os.environ["NO_MKDOCS_2_WARNING"] = "1"
    logging.getLogger("mkdocs").setLevel(logging.WARNING)

    with tempfile.TemporaryDirectory(prefix="bench-site-") as tmp:
        root = Path(tmp)
        site = root / "site"
        shutil.copytree(SITE, site, ignore=shutil.ignore_patterns("__pycache__"))
        start = time.perf_counter()
        write_documents(site / "docs", count)
        print(f"documents: {count} written in {time.perf_counter() - start:.2f} s", flush=True)
        data = sample_data()
        plain_config = plain_copy(site, root / "plain", data)

        ours: list[float] = []
        plain: list[float] = []
        for run in range(repeat):
            # Alternate the order so that neither build always runs on a warmer cache.
            jobs = [("plain", plain), ("ours", ours)] if run % 2 == 0 else [("ours", ours), ("plain", plain)]
            for name, sink in jobs:
                out = root / f"out-{name}-{run}"
                if name == "ours":
                    sink.append(timed(f"run {run + 1}: site build", lambda out=out: build_site(site, out, data=data)))
                else:
                    sink.append(
                        timed(f"run {run + 1}: plain mkdocs build", lambda out=out: plain_build(plain_config, out))
                    )
                shutil.rmtree(out, ignore_errors=True)
        problems: list[object] = []
        check_s = timed("site check", lambda: problems.extend(check_site(site, today=TODAY)))
        print(f"site check problems (the shipped placeholders): {len(problems)}")

    build_s, plain_s = min(ours), min(plain)
    result = {
        "documents": count,
        "build_s": round(build_s, 3),
        "plain_mkdocs_s": round(plain_s, 3),
        "ratio": round(build_s / plain_s, 3),
        "check_s": round(check_s, 3),
        "pages_per_s": round((count + 15) / build_s, 1),
        "runs": repeat,
    }
    print(f"ratio (ours / plain): {result['ratio']} (target <= 1.15)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
