"""Content hashes as DVC 3 computes them (tests/e2e/test_hashing_dvc.py checks them against
`dvc add` itself): a file's md5, and a folder's md5 of its sorted listing."""

from __future__ import annotations

import hashlib
import json

from frugal.hashing import data_md5, dir_md5, file_md5


def test_a_file_hash_is_the_md5_of_its_bytes(tmp_path):
    data = tmp_path / "raw.parquet"
    data.write_bytes(bytes(range(256)) * 5000)  # more than one read chunk
    assert file_md5(data) == data_md5(data) == hashlib.md5(data.read_bytes()).hexdigest()


def test_a_folder_hash_is_the_md5_of_its_sorted_listing(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "z.bin").write_bytes(b"\x01" * 10)
    (folder / "sub" / "a.json").write_text("{}", encoding="utf-8")
    listing = [
        {"md5": hashlib.md5(b"{}").hexdigest(), "relpath": "sub/a.json"},
        {"md5": hashlib.md5(b"\x01" * 10).hexdigest(), "relpath": "z.bin"},
    ]
    expected = hashlib.md5(json.dumps(listing, sort_keys=True).encode()).hexdigest() + ".dir"
    assert dir_md5(folder) == data_md5(folder) == expected


def test_one_changed_byte_changes_the_folder_hash(tmp_path):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "w.bin").write_bytes(b"\x00" * 100)
    before = data_md5(folder)
    (folder / "w.bin").write_bytes(b"\x00" * 99 + b"\x01")
    assert data_md5(folder) != before
