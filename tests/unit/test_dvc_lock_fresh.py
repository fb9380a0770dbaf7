"""What is committed is what HEAD produces: dvc.lock records, for every stage, the md5 of each
git-tracked file it depends on and the value of each parameter it reads, as they are in the
working tree. A change to code or params.yaml without `make run` leaves the lock, and the
outputs and figures committed with it, describing another pipeline; this check fails on it
without running anything, so a stale lock cannot land.

Compared: the deps that are git-tracked files (data/, models/ and reports/ are outputs, checked
by DVC itself), each stage's params, and the dep and param lists of dvc.yaml against the lock's.
The `source` stage is left out: it fingerprints a source that may live outside the repository,
on every run."""

from __future__ import annotations

import posixpath
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from frugal.hashing import file_md5
from tests.conftest import ROOT

OUTPUT_DIRS = ("data/", "models/", "reports/")
UNCHECKED_STAGES = ("source",)
FIX = "run `make run` and commit dvc.lock and the outputs"
SHOWN = 60  # problems listed in the failure message
_MISSING = object()


def _yaml(path: Path) -> Any:
    """YAML as DVC reads it (ruamel, YAML 1.2: `1e-4` is a number, `on` a string)."""
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


def _lookup(values: Any, dotted: str) -> Any:
    for key in dotted.split("."):
        if not isinstance(values, dict) or key not in values:
            return _MISSING
        values = values[key]
    return values


def _resolve(path: str, context: dict) -> str:
    """A dvc.yaml path with its `${section.key}` references filled in (DVC's templating)."""
    return re.sub(r"\$\{\s*([\w.]+)\s*\}", lambda m: str(_lookup(context, m.group(1))), path)


def _entry_path(entry: str | dict) -> str:
    """A deps entry: a path, or a one-key mapping of a path to its options."""
    return next(iter(entry)) if isinstance(entry, dict) else entry


def _declared_params(stage: dict) -> set[tuple[str, str]]:
    """(file, key) of each param a dvc.yaml stage lists (plain keys are params.yaml's)."""
    declared = set()
    for entry in stage.get("params", []):
        if isinstance(entry, dict):
            for file, keys in entry.items():
                declared |= {(file, key) for key in keys or []}
        else:
            declared.add(("params.yaml", entry))
    return declared


def _differences(key: str, recorded: Any, current: Any) -> list[str]:
    """The leaf keys where a param's recorded and current values differ."""
    if isinstance(recorded, dict) and isinstance(current, dict):
        return [
            difference
            for sub in sorted(set(recorded) | set(current), key=str)
            for difference in _differences(
                f"{key}.{sub}", recorded.get(sub, _MISSING), current.get(sub, _MISSING)
            )
        ]
    if recorded == current:
        return []

    def shown(value: Any) -> str:
        return "(absent)" if value is _MISSING else repr(value)

    return [f"param {key}: {shown(recorded)} in dvc.lock, {shown(current)} now"]


def _tracked_files(root: Path) -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True
    ).stdout
    return {name.decode() for name in listed.split(b"\0") if name}


def lock_problems(root: Path) -> list[str]:
    """Every way `root`'s dvc.lock differs from its git-tracked deps and params, one line each
    (`stage: what`); empty when the lock is fresh."""
    tracked = {p for p in _tracked_files(root) if not p.startswith(OUTPUT_DIRS)}
    dvc_yaml = _yaml(root / "dvc.yaml")
    lock_stages = (_yaml(root / "dvc.lock") or {}).get("stages", {})
    context = dict(_yaml(root / "params.yaml") or {})
    for var in dvc_yaml.get("vars", []):
        context.update(var)
    param_files: dict[str, Any] = {}

    def param_file(name: str) -> Any:
        if name not in param_files:
            path = root / name
            param_files[name] = _yaml(path) if path.is_file() else {}
        return param_files[name]

    problems = []
    stages = dvc_yaml.get("stages", {})
    for name in sorted(set(stages) | set(lock_stages)):
        if name in UNCHECKED_STAGES:
            continue
        if name not in lock_stages:
            problems.append(f"{name}: in dvc.yaml but not in dvc.lock (the stage never ran)")
            continue
        if name not in stages:
            problems.append(f"{name}: in dvc.lock but no longer a stage of dvc.yaml")
            continue
        stage, locked = stages[name], lock_stages[name]
        # deps: the git-tracked files dvc.yaml lists and the lock records, with their md5s
        declared = {
            posixpath.normpath(_resolve(_entry_path(e), context)) for e in stage.get("deps", [])
        }
        recorded = {posixpath.normpath(d["path"]): d for d in locked.get("deps", [])}
        compared = {  # git-tracked files, and files the lock records that no longer exist
            path
            for path in declared | set(recorded)
            if not path.startswith(OUTPUT_DIRS)
            and (path in tracked or (path in recorded and not (root / path).exists()))
        }
        for path in sorted(compared):
            if path not in recorded:
                problems.append(f"{name}: {path} is a dep in dvc.yaml but not in dvc.lock")
            elif path not in declared:
                problems.append(f"{name}: {path} is in dvc.lock but no longer a dep in dvc.yaml")
            elif not (root / path).is_file():
                problems.append(f"{name}: {path} is in dvc.lock but no longer exists")
            elif (now := file_md5(root / path)) != recorded[path].get("md5"):
                problems.append(
                    f"{name}: {path} changed (md5 {recorded[path].get('md5')} in dvc.lock, "
                    f"{now} now)"
                )
        # params: the keys dvc.yaml lists and the lock records, with their values
        locked_params = {
            (file, key): value
            for file, values in (locked.get("params") or {}).items()
            for key, value in (values or {}).items()
        }
        listed = _declared_params(stage)
        for file, key in sorted(listed | set(locked_params)):
            if (file, key) not in locked_params:
                problems.append(f"{name}: param {key} is listed in dvc.yaml but not in dvc.lock")
            elif (file, key) not in listed:
                problems.append(f"{name}: param {key} is in dvc.lock but no longer in dvc.yaml")
            else:
                current = _lookup(param_file(file), key)
                problems += [
                    f"{name}: {difference}"
                    for difference in _differences(key, locked_params[(file, key)], current)
                ]
    return problems


def test_dvc_lock_records_the_tracked_deps_and_params_of_the_working_tree():
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: which files are tracked is unknown")
    problems = lock_problems(ROOT)
    shown = problems[:SHOWN] + (
        [f"... and {len(problems) - SHOWN} more"] if len(problems) > SHOWN else []
    )
    assert not problems, (
        f"dvc.lock is stale: it records another pipeline than this checkout's ({FIX}):\n  "
        + "\n  ".join(shown)
    )


# The check itself, on a tiny synthetic repository whose lock is first fresh, then stale in
# each way the check knows.


def _md5_entry(root: Path, path: str) -> dict:
    return {"path": path, "hash": "md5", "md5": file_md5(root / path)}


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A repository with one stage (`train`: code deps, a data dep, a params section), the
    `source` stage, and the fresh dvc.lock `dvc repro` would write."""
    files = {
        "frugal/train.py": "print('train')\n",
        "frugal/util.py": "X = 1\n",
        "data/labels.csv": "text,label\n",
        "params.yaml": "train:\n  epochs: 3\n  lr: 1.0e-4\n  data: data/labels.csv\n",
        "dvc.yaml": (
            "stages:\n"
            "  source:\n    cmd: python -m frugal.data.source\n    deps: [frugal/util.py]\n"
            "  train:\n    cmd: python -m frugal.train\n"
            "    deps: ['${train.data}', frugal/train.py, frugal/util.py]\n"
            "    params: [train]\n"
        ),
    }
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    deps = ["data/labels.csv", "frugal/train.py", "frugal/util.py"]
    lock = {
        "schema": "2.0",
        "stages": {
            "source": {"cmd": "python -m frugal.data.source", "deps": [{"path": "frugal/util.py"}]},
            "train": {
                "cmd": "python -m frugal.train",
                "deps": [_md5_entry(tmp_path, path) for path in deps],
                "params": {
                    "params.yaml": {"train": {"epochs": 3, "lr": 0.0001, "data": "data/labels.csv"}}
                },
            },
        },
    }
    _write_lock(tmp_path, lock)
    return tmp_path


def _write_lock(root: Path, lock: dict) -> None:
    with open(root / "dvc.lock", "w", encoding="utf-8") as out:
        YAML(typ="safe", pure=True).dump(lock, out)


def _lock(root: Path) -> dict:
    return _yaml(root / "dvc.lock")


def test_a_fresh_lock_passes_and_data_and_the_source_stage_are_not_compared(repo):
    assert lock_problems(repo) == []
    # outputs and the source stage's fingerprint change on every run: never compared
    (repo / "data/labels.csv").write_text("text,label\nhi,x\n")
    lock = _lock(repo)
    lock["stages"]["source"]["deps"][0]["md5"] = "0" * 32
    _write_lock(repo, lock)
    assert lock_problems(repo) == []


def test_a_changed_code_dep_is_named_with_its_stage(repo):
    recorded = file_md5(repo / "frugal/train.py")
    (repo / "frugal/train.py").write_text("print('train, faster')\n")
    assert lock_problems(repo) == [
        f"train: frugal/train.py changed (md5 {recorded} in dvc.lock, "
        f"{file_md5(repo / 'frugal/train.py')} now)"
    ]


def test_a_changed_param_is_named_by_its_key(repo):
    text = (repo / "params.yaml").read_text()
    (repo / "params.yaml").write_text(text.replace("epochs: 3", "epochs: 4"))
    assert lock_problems(repo) == ["train: param train.epochs: 3 in dvc.lock, 4 now"]


def test_deps_and_params_added_or_removed_since_the_lock_are_named(repo):
    # given dvc.yaml gained a dep and a param, and the lock still lists a deleted module
    (repo / "frugal/new.py").write_text("Y = 2\n")
    subprocess.run(["git", "add", "frugal/new.py"], cwd=repo, check=True)
    dvc_yaml = (repo / "dvc.yaml").read_text()
    dvc_yaml = dvc_yaml.replace(
        "frugal/util.py]\n    params: [train]", "frugal/new.py]\n    params: [train, seed]"
    )
    (repo / "dvc.yaml").write_text(dvc_yaml)
    (repo / "params.yaml").write_text((repo / "params.yaml").read_text() + "seed: 1\n")
    # then each is named
    assert lock_problems(repo) == [
        "train: frugal/new.py is a dep in dvc.yaml but not in dvc.lock",
        "train: frugal/util.py is in dvc.lock but no longer a dep in dvc.yaml",
        "train: param seed is listed in dvc.yaml but not in dvc.lock",
    ]


def test_a_stage_the_lock_lacks_or_no_longer_has_is_named(repo):
    lock = _lock(repo)
    lock["stages"]["old"] = lock["stages"].pop("train")
    _write_lock(repo, lock)
    assert lock_problems(repo) == [
        "old: in dvc.lock but no longer a stage of dvc.yaml",
        "train: in dvc.yaml but not in dvc.lock (the stage never ran)",
    ]


def test_a_module_deleted_from_the_repository_is_named(repo):
    # given a module the stage's lock records and dvc.yaml still lists, deleted since
    (repo / "frugal/util.py").unlink()
    subprocess.run(["git", "rm", "-q", "--cached", "frugal/util.py"], cwd=repo, check=True)
    assert lock_problems(repo) == ["train: frugal/util.py is in dvc.lock but no longer exists"]
