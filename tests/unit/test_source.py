"""The `source` stage's fingerprint: it changes exactly when what `ingest` would read changes."""

from __future__ import annotations

import yaml

from frugal.source import fingerprint
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
