"""Each build of the wheel carries its own version (tryout W1): pip replaces an installed build only by another
version, so two builds of different sources must differ and two of the same sources must not."""

from __future__ import annotations

import re
from pathlib import Path

from mailservice import _release
from tests.test_install import _copy_sources


def test_the_version_follows_the_sources_and_nothing_else(tmp_path: Path) -> None:
    sources = _copy_sources(tmp_path / "src")
    package = sources / "mailservice"
    first = _release._sources_digest(package)
    # PEP 440: a release and a local label of letters and digits
    assert re.fullmatch(r"\d+(\.\d+)*\+[0-9a-z]+", f"{_release.RELEASE}+{first}")
    # What tools leave in a checkout is not the release: the same sources, the same version.
    (package / "__pycache__").mkdir(exist_ok=True)
    (package / "__pycache__" / "cli.cpython-311.pyc").write_bytes(b"\0")
    (package / "site" / "site").mkdir()
    (package / "site" / "site" / "index.html").write_text("<p>built by hand</p>", encoding="utf-8")
    assert _release._sources_digest(package) == first
    # A changed migration, a changed project file (a new pinned dependency): a new version each.
    seen = {first}
    migration = next((package / "migrations" / "versions").glob("*.py"))
    migration.write_text(migration.read_text(encoding="utf-8") + "\n# changed\n", encoding="utf-8")
    seen.add(_release._sources_digest(package))
    (sources / "pyproject.toml").write_text(
        (sources / "pyproject.toml").read_text(encoding="utf-8") + "\n", encoding="utf-8"
    )
    seen.add(_release._sources_digest(package))
    assert len(seen) == 3
