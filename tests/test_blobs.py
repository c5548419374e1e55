"""The content-addressed blob store: a blob's folder is made when its first blob is written, nothing else is."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from mailservice.blobs import BlobStore


def test_put_makes_the_folders_of_a_new_blob_and_is_idempotent(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs")  # not created yet: the first put makes it
    data = "Прошу сообщить, когда отремонтируют дорогу.".encode()
    digest = store.put(data, durable=False)
    assert digest == hashlib.sha256(data).hexdigest()
    assert (tmp_path / "blobs" / digest[:2] / digest[2:4] / digest).read_bytes() == data
    store.sync()
    assert store.put(data) == digest  # the same content again: nothing new
    assert sorted(p.name for p in (tmp_path / "blobs" / digest[:2] / digest[2:4]).iterdir()) == [digest]
    # A second blob in a folder that exists, and one in a folder removed behind the store's back.
    other = store.put(b"second", durable=True)
    assert store.get(other) == b"second"
    folder = store.path(other).parent
    store.path(other).unlink()
    folder.rmdir()
    assert store.put(b"second", durable=False) == other
    assert store.get(other) == b"second"
    assert not [p for p in (tmp_path / "blobs").rglob(".tmp-*")]  # no temporary file left behind


@pytest.mark.parametrize("name", ["", "ab", "A" * 64, "g" * 64, "0" * 63 + "\n", "../" + "0" * 61])
def test_path_refuses_what_is_not_a_sha256_hex_digest(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="sha256"):
        BlobStore(tmp_path).path(name)


def test_blobs_and_their_folders_are_the_service_users_alone(tmp_path: Path) -> None:
    """Raw letters are personal data (152-FZ art. 19): under the usual umask 022 of a shell or a systemd unit no
    other local user may read a letter or list the store (tryout of 7 December: files were 0640, folders 0755)."""
    previous = os.umask(0o022)
    try:
        store = BlobStore(tmp_path / "data" / "blobs")
        digest = store.put("Паспорт 5000 123456, адрес: ул. Ленина, 1".encode(), durable=False)
        second = store.put(b"another letter", durable=True)
    finally:
        os.umask(previous)
    for blob in (digest, second):
        path = store.path(blob)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        for folder in (path.parent, path.parent.parent, tmp_path / "data" / "blobs"):
            assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
