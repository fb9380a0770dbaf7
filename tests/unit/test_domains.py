"""A user's own new-domain file (`continual.update_source`): read and validated as ingest reads
its source, split as prepare splits, refused clearly when it cannot be an update."""

from __future__ import annotations

import pandas as pd
import pytest

from frugal.data.domains import update_splits
from frugal.errors import DataError

KNOWN = pd.DataFrame(
    {"text": ["what is a bird", "who wrote hamlet", "where is paris"], "label": ["A", "B", "C"]}
)
WEATHER = [f"will it rain in city number {i} tomorrow" for i in range(12)]
MUSIC = [f"play song number {i} by the band" for i in range(12)]


def _update(tmp_path, monkeypatch, rows: list[tuple[str, str]], name="new.csv", **kwargs):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "data" / "updates"
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / name).relative_to(tmp_path)
    pd.DataFrame(rows, columns=["utterance", "intent"]).to_csv(path, index=False)
    args = {"source": path, "text_column": "utterance", "label_column": "intent",
            "conflicts": "majority", "dev_fraction": 0.2, "test_fraction": 0.2, "seed": 0,
            "known": KNOWN} | kwargs  # fmt: skip
    return update_splits(**args)


def test_an_update_file_is_split_like_the_source(tmp_path, monkeypatch):
    rows = [(t, "weather") for t in WEATHER] + [(t, "A") for t in MUSIC]
    splits = _update(tmp_path, monkeypatch, rows)
    assert set(splits) == {"pool", "dev", "test"}
    for frame in splits.values():  # stratified: every class in every split
        assert set(frame["label"]) == {"weather", "A"}
    assert sum(len(f) for f in splits.values()) == 24


def test_an_update_without_a_new_class_is_refused(tmp_path, monkeypatch):
    with pytest.raises(DataError, match=r"new.csv: its classes \['A'\] are all classes the"):
        _update(tmp_path, monkeypatch, [(t, "A") for t in WEATHER])


def test_an_update_repeating_a_known_text_is_refused(tmp_path, monkeypatch):
    rows = [(t, "weather") for t in WEATHER] + [("What is  a BIRD", "weather")]
    with pytest.raises(
        DataError, match="1 text\\(s\\) also in the labeled data \\('What is  a BIRD'"
    ):
        _update(tmp_path, monkeypatch, rows)


def test_an_update_file_gets_the_ingest_checks(tmp_path, monkeypatch):
    rows = [(t, "weather") for t in WEATHER] + [("", "weather")]
    with pytest.raises(DataError, match="1 row\\(s\\) with empty or whitespace-only text"):
        _update(tmp_path, monkeypatch, rows)
    with pytest.raises(DataError, match="missing column.*continual.update_text_column"):
        _update(tmp_path, monkeypatch, [(t, "weather") for t in WEATHER], text_column="text")


def test_an_update_file_outside_the_tracked_folder_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    pd.DataFrame({"utterance": WEATHER, "intent": "weather"}).to_csv("new.csv", index=False)
    with pytest.raises(DataError, match="put the file in data/updates/"):
        update_splits("new.csv", "utterance", "intent", "majority", 0.2, 0.2, 0, KNOWN)
