"""The version a build of the package carries: the release number and a digest of what was built.

Read by setuptools when the wheel is built (pyproject.toml, ``tool.setuptools.dynamic``); at run time the installed
version comes from the package's metadata. Every build used to be plain 0.1.0, so ``pip install`` of the next wheel
over the last one answered «already installed with the same version», kept the old code and exited 0, and
``db upgrade`` then found no new migration (tryout W1). A PEP 440 local label made of the sources' digest makes any
two different builds two versions, which pip replaces; the same sources give the same version, so reinstalling one
wheel stays a no-op.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

RELEASE = "0.1.0"

_PACKAGE = Path(__file__).resolve().parent
# Left by tools, not part of a build: bytecode caches and a site built by hand in the skeleton (`mkdocs build`).
_NOT_BUILT = "site/site/"


def _sources_digest(package: Path) -> str:
    digest = hashlib.sha256()
    # The project file too: new pinned dependencies are a new release even if no module changed.
    files = [package.parent / "pyproject.toml"] if (package.parent / "pyproject.toml").is_file() else []
    for path in sorted(package.rglob("*")):
        relative = path.relative_to(package)
        if path.is_file() and "__pycache__" not in relative.parts and not relative.as_posix().startswith(_NOT_BUILT):
            files.append(path)
    for path in files:
        name = path.relative_to(package.parent).as_posix()
        digest.update(f"{name}\0{path.stat().st_size}\0".encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


VERSION = f"{RELEASE}+{_sources_digest(_PACKAGE)}"
