"""Our content hashes are the ones DVC itself records (`dvc add` in a fresh repository), so an
MLflow run names the exact data DVC versions."""

from __future__ import annotations

import subprocess

import yaml

from frugal.hashing import data_md5, dir_md5, file_md5


def _dvc_add(repo, target) -> str:
    """The md5 `dvc add` records for `target`."""
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["dvc", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["dvc", "add", "-q", target.name], cwd=repo, check=True)
    record = yaml.safe_load((repo / f"{target.name}.dvc").read_text(encoding="utf-8"))
    return record["outs"][0]["md5"]


def test_a_folder_hashes_as_dvc_hashes_it(tmp_path):
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "b.bin").write_bytes(bytes(range(256)) * 10)
    (folder / "a.txt").write_text("tokenizer\n", encoding="utf-8")
    (folder / "sub" / "c.json").write_text('{"x": 1}', encoding="utf-8")
    ours = dir_md5(folder)
    assert ours.endswith(".dir")
    assert ours == _dvc_add(tmp_path, folder)


def test_a_file_hashes_as_dvc_hashes_it(tmp_path):
    data = tmp_path / "raw.parquet"
    data.write_bytes(b"PAR1" + bytes(3000) + b"PAR1")
    assert data_md5(data) == file_md5(data) == _dvc_add(tmp_path, data)
