"""Content hashes that match DVC's, so MLflow runs can name the exact data they used."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def file_md5(path: Path) -> str:
    """MD5 of a file's bytes: DVC 3's hash of a single file."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dir_md5(path: Path) -> str:
    """DVC 3's hash of a directory: MD5 of its sorted listing of relative paths and file MD5s,
    suffixed with `.dir`."""
    entries = [
        {"md5": file_md5(f), "relpath": f.relative_to(path).as_posix()}
        for f in sorted(p for p in Path(path).rglob("*") if p.is_file())
    ]
    entries.sort(key=lambda e: e["relpath"])
    listing = json.dumps(entries, sort_keys=True).encode()
    return hashlib.md5(listing).hexdigest() + ".dir"


def data_md5(path: Path) -> str:
    path = Path(path)
    return dir_md5(path) if path.is_dir() else file_md5(path)
