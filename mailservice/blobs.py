"""Content-addressed file store for raw messages and attachments.

A blob is written to a temporary file and renamed into place, so a crash leaves either nothing or the whole file;
writing the same content twice is a no-op. That is what lets intake store the raw message *before* anything else
and still be idempotent.

Durability: :meth:`BlobStore.put` makes each file durable (fsync of the file and its folder) unless the caller
asks for ``durable=False`` and then makes the lot durable at once before relying on them: :meth:`BlobStore.sync`
for what this store wrote, :meth:`BlobStore.make_durable` for blobs named by digest, whichever process wrote them
(intake's workers write a batch's blobs; the poller makes them durable with one ``syncfs`` before the batch's
transaction commits, instead of an fsync per file: ~0.25 ms per message less).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import hashlib
import itertools
import os
import re
from collections.abc import Callable, Collection, Iterable
from pathlib import Path

_counter = itertools.count()
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL
# Raw letters and attachments are citizens' personal data (152-FZ art. 19): readable by the service's own user
# only, as the SQLite file (engine.py) and the backups (backup.py) are. The modes are asked for at creation, so no
# moment passes with the usual umask's 0644 or 0755.
_FILE_MODE = 0o600
_FOLDER_MODE = 0o700


@functools.cache
def _libc_syncfs() -> Callable[[int], int] | None:
    libc_name = ctypes.util.find_library("c")
    if not libc_name or not hasattr(os, "O_DIRECTORY"):
        return None
    return getattr(ctypes.CDLL(libc_name, use_errno=True), "syncfs", None)


def _syncfs(path: Path) -> bool:
    """syncfs(2) on the file system holding ``path`` (Linux); False where it is not available."""
    syncfs = _libc_syncfs()
    if syncfs is None:
        return False
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return syncfs(fd) == 0
    finally:
        os.close(fd)


def _fsync_path(path: Path, directory: bool = False) -> None:
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory and hasattr(os, "O_DIRECTORY") else 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class BlobStore:
    """Files named by the SHA-256 of their content under one root folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._unsynced: list[Path] = []

    def path(self, sha256: str) -> Path:
        """Where the blob with this hash lives (two-level fan-out keeps folders small)."""
        if len(sha256) != 64 or not _HEX_DIGEST.fullmatch(sha256):
            raise ValueError("not a sha256 hex digest")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes, *, durable: bool = True) -> str:
        """Store ``data`` and return its SHA-256 hex digest; on disk for good when this returns if ``durable``,
        else after the next :meth:`sync`."""
        digest = hashlib.sha256(data).hexdigest()
        target = self.path(digest)
        if os.path.exists(target):
            return digest
        folder = target.parent
        tmp = folder / f".tmp-{os.getpid()}-{next(_counter)}"
        try:
            try:
                fd = os.open(tmp, _NEW_FILE, _FILE_MODE)
            except FileNotFoundError:  # the folder's first blob: make it then (a mkdir per blob was a syscall wasted)
                _make_folder(folder)
                fd = os.open(tmp, _NEW_FILE, _FILE_MODE)
            try:
                _write_all(fd, data)
                if durable:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if durable:
            _fsync_path(folder, directory=True)  # the rename itself (POSIX: the directory entry)
        else:
            self._unsynced.append(target)
        return digest

    def sync(self) -> None:
        """Make every blob this store wrote with ``durable=False`` since the last call durable."""
        if self._unsynced:
            self._durable(self._unsynced)
            self._unsynced.clear()

    def make_durable(self, digests: Collection[str]) -> None:
        """Make these stored blobs durable, whichever process wrote them with ``durable=False``."""
        if digests:
            self._durable(self.path(digest) for digest in digests)  # the paths are made only if syncfs is missing

    def _durable(self, paths: Iterable[Path]) -> None:
        # syncfs(2) writes out the whole file system's dirty data, every process's; without it, each file and the
        # folder that holds its name (the rename, POSIX) are synced one by one.
        if not _syncfs(self.root):
            for path in paths:
                _fsync_path(path)
                _fsync_path(path.parent, directory=True)

    def get(self, sha256: str) -> bytes:
        """The content of a stored blob (FileNotFoundError when it is missing)."""
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        """Whether the blob is stored."""
        return self.path(sha256).exists()


def _make_folder(folder: Path) -> None:
    """Make ``folder`` and the missing folders above it, each owner-only (``mkdir(parents=True)`` would give
    the upper ones the default mode, 0755 under the usual umask)."""
    missing = []
    while not folder.is_dir():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        path.mkdir(mode=_FOLDER_MODE, exist_ok=True)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
