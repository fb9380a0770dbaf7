"""`dvc repro` outside the project's environment, as a user meets it: DVC installed apart
(pipx, the system's package) and the virtual environment not active, so `python` in each
stage's command is an interpreter without the project's packages. The first stage refuses in
one sentence, and DVC stops before it deletes any later stage's outputs."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from tests.e2e.conftest import VENV_BIN, make_repo_copy


def test_dvc_repro_outside_the_environment_stops_at_source_and_keeps_the_raw_data(
    tmp_path_factory,
):
    # given a copy of the repository that has ingested before (its raw data on disk)
    repo = make_repo_copy(tmp_path_factory.mktemp("outside"), {})
    raw = repo / "data" / "raw.parquet"
    raw.write_bytes(b"the raw data of an earlier run")
    # ... and a PATH where `python` is an interpreter without the project's packages (the one
    # this environment was made from, without site-packages) and the venv's bin is absent
    bare_bin = repo.parent / "bare-bin"
    bare_bin.mkdir()
    base = getattr(sys, "_base_executable", sys.executable)
    python = bare_bin / "python"
    python.write_text(f'#!/bin/sh\nexec "{base}" -S -s -E -B "$@"\n')
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    keep = ("HOME", "LANG", "TMPDIR")
    env = {k: v for k, v in os.environ.items() if k in keep}
    env.update(PATH=f"{bare_bin}:/usr/local/bin:/usr/bin:/bin", DVC_NO_ANALYTICS="1")
    # when the user runs `dvc repro` (DVC's own interpreter is its installation's, not `python`)
    done = subprocess.run(
        [str(Path(VENV_BIN) / "dvc"), "repro"],
        cwd=repo, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    output = done.stdout + done.stderr
    # then it fails in the `source` stage, with one sentence saying which interpreter and how
    # to activate the environment, and no traceback
    assert done.returncode != 0, output
    (sentence,) = [line for line in output.splitlines() if line.startswith("error: ")]
    assert f"{base} is not the project's environment" in sentence
    assert "`source .venv/bin/activate`" in sentence and "`make run`" in sentence
    assert "Traceback" not in output and "ModuleNotFoundError" not in output
    assert "Running stage 'ingest'" not in output
    # and the raw data of the earlier run is still there, unchanged
    assert raw.read_bytes() == b"the raw data of an earlier run"
