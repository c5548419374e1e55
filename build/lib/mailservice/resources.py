"""The package's own files (templates, the site skeleton, data), found through importlib.resources.

Wheels install unzipped, so every resource is a real folder; Jinja2, MkDocs and shutil need real paths.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(*parts: str) -> Path:
    """The filesystem path of a file or folder shipped inside the ``mailservice`` package."""
    resource = files("mailservice").joinpath(*parts)
    if not isinstance(resource, Path):  # a zipped install: not supported (pip never installs one)
        raise RuntimeError(f"mailservice must be installed unzipped to read {'/'.join(parts)}")
    return resource
