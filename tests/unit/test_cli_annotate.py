"""Real annotation rounds through the `frugal annotate` command: export a batch, label it
(here: with the pool's hidden labels), import it back, and the sample stage resumes from it."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from frugal.cli import main
from frugal.config import load_params
from frugal.files import write_embeddings_atomic, write_parquet_atomic
from frugal.labels.annotation import read_annotations
from frugal.labels.sampling import buy_labels, load_inputs
from frugal.model.modeling import embed_texts
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def embedded(trec_sample):
    frames = {name: trec_sample[name].reset_index(drop=True) for name in ("pool", "dev")}
    return {
        name: (frame, embed_texts(frame["text"].tolist(), max_length=48))
        for name, frame in frames.items()
    }


@pytest.fixture()
def project(tmp_path, embedded):
    """Splits, cached embeddings and a params file pointing at them, in a temp folder."""
    splits = tmp_path / "splits"
    for name, (frame, vectors) in embedded.items():
        write_parquet_atomic(frame, splits / f"{name}.parquet")
        write_embeddings_atomic(frame["id"].tolist(), vectors, tmp_path / "emb" / f"{name}.npz")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["sample"].update(
        pool_data=str(splits / "pool.parquet"),
        eval_data=str(splits / "dev.parquet"),
        embeddings_dir=str(tmp_path / "emb"),
        annotations=str(tmp_path / "labels" / "annotations.csv"),
        export_dir=str(tmp_path / "batches"),
        initial_size=10,
        batch_size=8,
        budget=40,
    )
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def _export(params_path, capsys) -> dict:
    assert main(["annotate", "export", "--params", str(params_path)]) == 0
    return json.loads(capsys.readouterr().out)


def _import(file, params_path, capsys) -> dict:
    assert main(["annotate", "import", str(file), "--params", str(params_path)]) == 0
    return json.loads(capsys.readouterr().out)


def test_export_label_import_rounds_then_the_stage_resumes(project, trec_sample, capsys):
    cfg = load_params(project).sample
    truth = trec_sample["pool"].set_index("id")["label"]

    first = _export(project, capsys)
    assert first["round"] == 1 and first["size"] == 10
    batch = pd.read_csv(first["files"]["csv"], encoding="utf-8-sig")
    batch["label"] = truth.loc[batch["id"]].to_numpy()
    batch.to_csv(cfg.export_dir / "done-1.csv", index=False)
    assert _import(cfg.export_dir / "done-1.csv", project, capsys)["added"] == 10

    second = _export(project, capsys)
    assert second["round"] == 2 and second["size"] == 8
    tasks = json.loads(open(second["files"]["label_studio"]).read())
    assert not {t["data"]["frugal_id"] for t in tasks} & set(batch["id"])  # never asked twice
    for task in tasks:  # a Label Studio export of the labeled tasks
        choice = truth.loc[task["data"]["frugal_id"]]
        task["annotations"] = [{"result": [{"type": "choices", "value": {"choices": [choice]}}]}]
    (cfg.export_dir / "done-2.json").write_text(json.dumps(tasks))
    assert _import(cfg.export_dir / "done-2.json", project, capsys)["round"] == 2

    store = read_annotations(cfg.annotations)
    assert list(store["round"].value_counts().sort_index()) == [10, 8]
    inputs = load_inputs(cfg)
    human = cfg.model_copy(update={"annotator": "human"})
    labeled, run = buy_labels(inputs, store, human)
    assert list(labeled["id"]) == list(store["id"]) and set(labeled["source"]) == {"human"}
    assert [p.n_labels for p in run.curve] == [10, 18]
    # the simulated annotator tops the imported labels up to the budget, keeping them first
    labeled, _ = buy_labels(inputs, store, cfg)
    assert len(labeled) == 40 and list(labeled["id"][:18]) == list(store["id"])
    assert list(labeled["round"][:18]) == list(store["round"])
    assert labeled["source"].value_counts().to_dict() == {"simulated": 22, "human": 18}


def test_exporting_twice_gives_the_same_batch(project, capsys):
    a = pd.read_csv(_export(project, capsys)["files"]["csv"], encoding="utf-8-sig")
    b = pd.read_csv(_export(project, capsys)["files"]["csv"], encoding="utf-8-sig")
    assert a["id"].tolist() == b["id"].tolist()


def test_a_bad_import_exits_2_lists_the_rows_and_keeps_the_store(project, capsys):
    cfg = load_params(project).sample
    first = _export(project, capsys)
    batch = pd.read_csv(first["files"]["csv"], encoding="utf-8-sig")
    batch["label"] = "HUM"
    batch.to_csv(cfg.export_dir / "ok.csv", index=False)
    _import(cfg.export_dir / "ok.csv", project, capsys)
    before = cfg.annotations.read_bytes()

    batch.loc[2, "label"] = "NOT_A_LABEL"
    batch.loc[4, "id"] = "no-such-id"
    batch.to_csv(cfg.export_dir / "bad.csv", index=False)
    assert (
        main(["annotate", "import", str(cfg.export_dir / "bad.csv"), "--params", str(project)]) == 2
    )
    err = capsys.readouterr().err
    assert "NOT_A_LABEL" in err and "no-such-id" in err
    assert "line 4" in err and "line 6" in err  # header is line 1
    assert "Traceback" not in err
    assert cfg.annotations.read_bytes() == before


def test_human_annotator_without_labels_says_what_to_do(project):
    cfg = load_params(project).sample.model_copy(update={"annotator": "human"})
    inputs = load_inputs(cfg)
    from frugal.errors import DataError

    with pytest.raises(DataError, match="frugal annotate export"):
        buy_labels(inputs, read_annotations(cfg.annotations), cfg)
