"""benchmarks/same_outputs.py: which stage outputs two pipeline runs share, by dvc.lock md5."""

from __future__ import annotations

import importlib.util
import sys

import yaml

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))  # as when run: its own folder first (stamp.py)
spec = importlib.util.spec_from_file_location("same_outputs", ROOT / "benchmarks/same_outputs.py")
same_outputs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(same_outputs)


def _lock(repo, outs: dict[str, dict[str, str]]) -> None:
    stages = {
        stage: {
            "cmd": f"python -m flows {stage}",
            "outs": [{"path": p, "md5": m} for p, m in o.items()],
        }
        for stage, o in outs.items()
    }
    repo.mkdir()
    (repo / "dvc.lock").write_text(yaml.safe_dump({"schema": "2.0", "stages": stages}))


def test_a_changed_output_is_found_and_timed_ones_can_be_ignored(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    _lock(before, {"train": {"models/base": "a.dir"}, "profile": {"reports/profile.json": "p1"}})
    _lock(after, {"train": {"models/base": "a.dir"}, "profile": {"reports/profile.json": "p2"}})
    result = same_outputs.compare(before, after, ignore=("reports/profile.json",))
    assert result["identical"]
    assert [r["same"] for r in result["outputs"]] == [False, True]  # sorted: profile, train
    assert not same_outputs.compare(before, after)["identical"]


def test_an_output_only_one_run_has_is_a_difference(tmp_path):
    before, after = tmp_path / "before", tmp_path / "after"
    _lock(before, {"train": {"models/base": "a.dir"}})
    _lock(after, {"train": {"models/base": "a.dir"}, "continual": {"models/continual": "c"}})
    result = same_outputs.compare(before, after)
    assert not result["identical"]
    assert {r["output"]: r["before"] for r in result["outputs"]}["models/continual"] is None
