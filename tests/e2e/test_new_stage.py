"""A new stage is three additions: a core module `frugal/stages/<name>.py` (plain Python, no
Prefect, no MLflow), its params section, and a row of the table of stages. In a copy of the
repository, a toy stage added that way gets its dvc.yaml entry from the generator, runs under
`dvc repro` through the one adapter, writes its output, and is recorded in MLflow under the
execution's parent run; nothing else is edited."""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from tests.e2e.conftest import TINY_OVERRIDES, make_repo_copy, project_env

TOY_MODULE = '''\
"""The toy stage: how many raw rows each label has."""

from __future__ import annotations

import pandas as pd

from frugal.config import Params
from frugal.files import write_json
from frugal.stages import Context, Outcome, RunLog


def run(params: Params, ctx: Context) -> Outcome:
    """Count the raw rows per label; write them; record their number."""
    raw = pd.read_parquet(params.ingest.output)
    counts = raw["label"].astype(str).value_counts().sort_index().to_dict()
    out = params.toy.output
    write_json({"rows": len(raw), "labels": counts, "greeting": params.toy.greeting}, out)
    ctx.log(f"{len(raw)} rows")
    toy_run = RunLog(run_name="toy", tags={"frugal.stage": "toy"}, metrics={"rows": len(raw)})
    return Outcome(value=out, reports=(out,), runs=[toy_run])
'''

TOY_SECTION = '''

class ToyConfig(_Section):
    greeting: str
    output: Path


'''

TOY_ROW = """\
    Stage(
        "toy",
        about="Count the raw rows per label.",
        deps=("${ingest.output}",),
        params=("toy",),
        metrics=(kept("${toy.output}"),),
    ),
)
NAMES = """


def _add_toy_stage(repo) -> None:
    (repo / "frugal/stages/toy.py").write_text(TOY_MODULE)
    config = (repo / "frugal/config.py").read_text()
    config = config.replace("\n\nclass Params(_Section):", TOY_SECTION + "class Params(_Section):")
    config = config.replace(
        "    orchestration: OrchestrationConfig\n",
        "    orchestration: OrchestrationConfig\n    toy: ToyConfig\n",
        1,
    )
    (repo / "frugal/config.py").write_text(config)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["toy"] = {"greeting": "hello", "output": "reports/toy.json"}
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    table = (repo / "frugal/stages/table.py").read_text()
    assert table.count("\n)\nNAMES = ") == 1
    (repo / "frugal/stages/table.py").write_text(table.replace("\n)\nNAMES = ", "\n" + TOY_ROW))


def test_a_toy_stage_is_a_module_a_params_section_and_a_row(tmp_path):
    repo = make_repo_copy(tmp_path, TINY_OVERRIDES)
    _add_toy_stage(repo)
    env = project_env(repo)

    def run(*cmd: str) -> subprocess.CompletedProcess:
        return subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=600)

    stale = run(sys.executable, "-m", "orchestration.dvc_yaml", "--check")
    assert stale.returncode == 1  # the row is not in dvc.yaml until it is generated
    assert run(sys.executable, "-m", "orchestration.dvc_yaml").returncode == 0
    entry = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["toy"]
    assert entry["cmd"] == "python -m flows toy"
    assert "frugal/stages/toy.py" in entry["deps"] and entry["params"] == ["toy"]
    assert "frugal/stages/evaluate.py" not in entry["deps"]

    result = run("dvc", "repro", "toy")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    written = json.loads((repo / "reports/toy.json").read_text())
    assert written["greeting"] == "hello" and written["rows"] == sum(written["labels"].values())
    assert written["rows"] == TINY_OVERRIDES["ingest"]["max_rows"]
    assert "toy" in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{repo / 'mlruns/mlflow.db'}"
    client = MlflowClient(uri, uri)
    runs = client.search_runs(
        [client.get_experiment_by_name("frugal").experiment_id], "attributes.run_name = 'toy'"
    )
    assert len(runs) == 1 and runs[0].data.metrics["rows"] == written["rows"]
    assert "mlflow.parentRunId" in runs[0].data.tags
    reports = client.list_artifacts(runs[0].data.tags["mlflow.parentRunId"], "reports")
    assert [f.path for f in reports] == ["reports/toy.json"]
