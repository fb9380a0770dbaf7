"""Bad input through a real stage entry point (`python -m flows.ingest`, as DVC runs it): a
clear message, exit status 2, no traceback, and no output written or lost."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from tests.conftest import ROOT, project_env

pytestmark = pytest.mark.slow


def _ingest(tmp_path, source: str, **train) -> subprocess.CompletedProcess:
    """Run the ingest stage on `source` with the repo's params (train section overridden)."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ingest"].update(source=source, output=str(tmp_path / "raw.parquet"))
    params["train"].update(train)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run(
        [sys.executable, "-m", "flows.ingest", "--params", str(tmp_path / "params.yaml")],
        cwd=ROOT,
        env=project_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_missing_column_is_reported_and_nothing_is_lost(tmp_path):
    # given an earlier good output and a CSV without the configured label column
    (tmp_path / "raw.parquet").write_bytes(b"earlier output")
    bad = tmp_path / "questions.csv"
    bad.write_text("question,category\nWhat is DVC ?,DESC\n")
    # when the ingest stage runs
    result = _ingest(tmp_path, str(bad))
    # then it exits 2 naming the file and the missing column, with no traceback
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-2:]
    assert any("questions.csv" in line and "text" in line for line in last), result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "raw.parquet").read_bytes() == b"earlier output"


def test_non_utf8_file_is_reported_without_output(tmp_path):
    bad = tmp_path / "latin.csv"
    bad.write_bytes("text,label\ncaf\xe9 ?,A\nwho ?,B\n".encode("latin-1"))
    result = _ingest(tmp_path, str(bad))
    assert result.returncode == 2
    assert "UTF-8" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "raw.parquet").exists()
    assert not list(tmp_path.glob(".*parquet*")), "no temporary files left behind"


def test_unknown_params_key_is_reported(tmp_path):
    result = _ingest(tmp_path, "trec", epohcs=3)
    assert result.returncode == 2
    assert "train.epohcs: unknown key" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "raw.parquet").exists()
