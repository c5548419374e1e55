"""Where the workplace's shared material (seeds, real-mail corpora) is, for the tests that read it.

``$MAILSERVICE_SHARED`` when set; else ``../shared`` beside the checkout (the layout of the workplace); else
``/work/shared`` (a checkout made elsewhere on the same machine, as CI trials from a fresh clone are).
``$MAILSERVICE_CORPORA`` still points at the corpora alone.
"""

from __future__ import annotations

import os
from pathlib import Path

_CANDIDATES = [Path(__file__).resolve().parents[2] / "shared", Path("/work/shared")]


def shared_dir() -> Path:
    """The shared folder (the first candidate that exists, else the first candidate, for messages)."""
    if os.environ.get("MAILSERVICE_SHARED"):
        return Path(os.environ["MAILSERVICE_SHARED"])
    return next((path for path in _CANDIDATES if path.is_dir()), _CANDIDATES[0])


SHARED = shared_dir()
CORPORA = Path(os.environ.get("MAILSERVICE_CORPORA") or SHARED / "corpora")
SEEDS = SHARED / "seeds"


def corpus_files(sub: str) -> list[Path]:
    """The messages of one folder of the corpora (``mime``, ``bounces``), without their manifests; none when absent."""
    return sorted(p for p in (CORPORA / sub).rglob("*") if p.is_file() and p.name not in ("MANIFEST.tsv", "README.md"))
