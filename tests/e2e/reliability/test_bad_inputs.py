"""Bad input through the real entry points (`python -m flows.<stage>`, as DVC runs them, and
the `frugal` command), in a small real repository that has run the whole pipeline: each
gives a clear message and exit status 2, no traceback, no partial output, and nothing already
written (data, labels, models, reports, MLflow runs) is changed or lost."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from tests.e2e.conftest import project_env

KEPT = ("data", "models", "reports", "mlruns")  # everything a run has written


@pytest.fixture(scope="module")
def repo(tiny_pipeline) -> Path:
    """The shared tiny repository after a full `dvc repro`: raw data, splits, embeddings,
    bought labels, models, reports and MLflow runs."""
    return tiny_pipeline.repo


def _snapshot(repo: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file a run has written (the MLflow database
    aside: a failed attempt may add a run to it, but must never change one)."""
    out = {}
    for top in KEPT:
        for path in sorted((repo / top).rglob("*")):
            if path.is_file() and path.name != "mlflow.db":
                stat = path.stat()
                out[str(path.relative_to(repo))] = (stat.st_size, stat.st_mtime_ns)
    return out


def _runs(repo: Path) -> set[tuple[str, str]]:
    with sqlite3.connect(repo / "mlruns" / "mlflow.db") as db:
        return set(db.execute("select run_uuid, status from runs where status != 'RUNNING'"))


def _params(repo: Path, tmp_path: Path, **sections: dict) -> Path:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for section, values in sections.items():
        params[section].update(values)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _run(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args],
        cwd=repo,
        env=project_env(repo),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _csv(tmp_path: Path, name: str, content: bytes) -> str:
    (tmp_path / name).write_bytes(content)
    return str(tmp_path / name)


GOOD_ROWS = b"What is DVC ?,DESC\nWho wrote it ?,HUM\n" * 3

# (name, file name, file bytes, words the message must contain)
BAD_SOURCES = [
    (
        "malformed CSV",
        "q.csv",
        b'text,label\n"What is an unclosed quote ?,DESC\n' + GOOD_ROWS,
        ["q.csv", "not a valid CSV", "quoting"],
    ),
    (
        "missing column",
        "q.csv",
        b"question,category\nWhat is DVC ?,DESC\nWho ?,HUM\n",
        ["q.csv", "missing column", "text", "ingest.text_column"],
    ),
    ("empty file", "q.csv", b"", ["q.csv", "empty"]),
    (
        "non-UTF-8 bytes",
        "q.csv",
        "text,label\ncafé ?,DESC\n".encode("latin-1") + GOOD_ROWS,
        ["q.csv", "UTF-8"],
    ),
    (
        "one class",
        "q.csv",
        b"text,label\n" + b"What is DVC ?,DESC\n" * 8,
        ["q.csv", "1 class", "at least 2"],
    ),
    ("empty JSON lines", "q.jsonl", b"\n\n", ["q.jsonl", "no records"]),
    ("unsupported type", "q.xlsx", b"PK\x03\x04", ["q.xlsx", "unsupported file type"]),
]


@pytest.mark.parametrize(
    ("name", "file", "content", "words"), BAD_SOURCES, ids=[case[0] for case in BAD_SOURCES]
)
def test_bad_source_file(repo, tmp_path, name, file, content, words):
    before, runs = _snapshot(repo), _runs(repo)
    params = _params(repo, tmp_path, ingest={"source": _csv(tmp_path, file, content)})
    result = _run(repo, "-m", "flows", "ingest", "--params", str(params))
    _assert_refused(result, words)
    assert _snapshot(repo) == before, "an earlier output changed"
    assert runs <= _runs(repo), "an MLflow run was lost or changed"


BAD_PARAMS = [
    ("out of range", {"prepare": {"test_fraction": 0.7}}, ["prepare.test_fraction", "0.5"]),
    ("wrong type", {"train": {"epochs": "three"}}, ["train.epochs", "integer"]),
    ("unknown key", {"train": {"epohcs": 3}}, ["train.epohcs", "unknown key"]),
    ("unknown choice", {"sample": {"strategy": "psychic"}}, ["sample.strategy", "psychic"]),
]


@pytest.mark.parametrize(
    ("name", "sections", "words"), BAD_PARAMS, ids=[case[0] for case in BAD_PARAMS]
)
def test_bad_params(repo, tmp_path, name, sections, words):
    before = _snapshot(repo)
    result = _run(repo, "-m", "flows", "prepare", "--params", str(_params(repo, tmp_path, **sections)))
    _assert_refused(result, words)
    assert _snapshot(repo) == before


def test_params_file_that_is_not_yaml(repo, tmp_path):
    (tmp_path / "params.yaml").write_text("ingest: [\n")
    result = _run(repo, "-m", "flows", "ingest", "--params", str(tmp_path / "params.yaml"))
    _assert_refused(result, ["params.yaml", "not valid YAML", "line 2"])


def test_label_set_changed_between_runs(repo, tmp_path):
    # given human labels imported under a class name the current data no longer has
    pool = pd.read_parquet(repo / "data/splits/pool.parquet")
    store = tmp_path / "annotations.csv"
    rows = pool.head(6)
    labels = ["LOCATION" if label == "LOC" else label for label in rows["label"]]
    labels[0] = "LOCATION"
    pd.DataFrame({"id": rows["id"], "label": labels, "round": 1, "source": "batch.csv"}).to_csv(
        store, index=False
    )
    before, runs = _snapshot(repo), _runs(repo)
    params = _params(
        repo,
        tmp_path,
        sample={"annotator": "human", "annotations": str(store)},
        # the failed run's MLflow parent run goes to a store of its own: the shared repo's
        # experiment keeps exactly one pipeline run (tests/e2e/test_pipeline.py checks it)
        tracking={"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
                  "artifact_root": str(tmp_path / "artifacts")},
    )  # fmt: skip
    # when the sample stage runs on them
    result = _run(repo, "-m", "flows", "sample", "--params", str(params))
    # then it names the stray label and the fix, and the bought labels are untouched
    _assert_refused(result, ["annotations.csv", "LOCATION", "label set changed"])
    assert _snapshot(repo) == before
    assert runs == _runs(repo)


def test_import_with_unknown_ids_and_labels(repo, tmp_path):
    store = tmp_path / "annotations.csv"
    params = str(_params(repo, tmp_path, sample={"annotations": str(store)}))
    pool = pd.read_parquet(repo / "data/splits/pool.parquet")
    first = pool.iloc[0]
    good = tmp_path / "round1.csv"
    good.write_text(f"id,label\n{first['id']},{first['label']}\n")
    imported = _run(repo, "-m", "frugal.cli", "annotate", "import", str(good), "--params", params)
    assert imported.returncode == 0, imported.stderr
    kept = store.read_bytes()
    bad = tmp_path / "round2.csv"
    bad.write_text(f"id,label\nno-such-id,DESC\n{pool.iloc[1]['id']},WEATHER\n")
    result = _run(repo, "-m", "frugal.cli", "annotate", "import", str(bad), "--params", params)
    _assert_refused(result, ["round2.csv", "no-such-id", "WEATHER", "nothing imported"])
    assert store.read_bytes() == kept, "the labels already imported changed"


SERVED_DAMAGE = [
    ("missing", lambda d: (d / "model.onnx").unlink(), ["model.onnx", "missing", "dvc repro"]),
    (
        "truncated",
        lambda d: (d / "model.onnx").write_bytes((d / "model.onnx").read_bytes()[:5000]),
        ["model.onnx", "not a valid onnx model", "dvc repro"],
    ),
    (
        "not its plan",
        lambda d: (d / "compression.json").write_text(
            (d / "compression.json")
            .read_text()
            .replace(
                '"bert.encoder.layer.0.attention.self.query.weight": 8',
                '"bert.encoder.layer.0.attention.self.query.weight": 4',
            )
        ),  # fmt: skip
        ["model.onnx", "does not match its plan", "planned 4, runs 8", "dvc repro"],
    ),
]


@pytest.mark.parametrize(
    ("name", "damage", "words"), SERVED_DAMAGE, ids=[case[0] for case in SERVED_DAMAGE]
)
def test_broken_served_model(repo, tmp_path, name, damage, words):
    # given a copy of a compressed model folder whose served graph is damaged
    import shutil

    folder = tmp_path / "compressed" / "int8_ptq"
    shutil.copytree(repo / "models/compressed/int8_ptq", folder)
    damage(folder)
    before = _snapshot(repo)
    # when a user asks for its energy, which prices the graph
    result = _run(repo, "-m", "frugal.cli", "energy", str(folder))
    # then the message names the file and the fix, and nothing of the repository changed
    _assert_refused(result, words)
    assert _snapshot(repo) == before


def _assert_refused(result: subprocess.CompletedProcess, words: list[str]) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-3000:])
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-3000:]
    message = result.stderr.lower()
    missing = [word for word in words if word.lower() not in message]
    assert not missing, f"message lacks {missing}: {result.stderr[-2000:]}"
