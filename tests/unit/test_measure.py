"""Measured CPU figures: RAPL reading (real files laid out as the kernel does), stored bytes,
and a clear error for a missing model. (A real timing run of a saved classifier in a fresh
process: tests/e2e/test_pretrained_model.py.)"""

from pathlib import Path

import pandas as pd
import pytest

from frugal.energy.measure import measure_in_fresh_process, rapl_joules, read_rapl, weights_bytes


def _domain(root: Path, name: str, energy_uj: int, max_uj: int = 1000) -> None:
    (root / name).mkdir(parents=True, exist_ok=True)
    (root / name / "energy_uj").write_text(f"{energy_uj}\n")
    (root / name / "max_energy_range_uj").write_text(f"{max_uj}\n")


def test_rapl_joules_sum_packages_and_handle_wrap_around(tmp_path):
    _domain(tmp_path, "intel-rapl:0", 100)
    _domain(tmp_path, "intel-rapl:1", 900)
    _domain(tmp_path, "intel-rapl:0:0", 5)  # a sub-domain inside package 0: not added again
    before = read_rapl(tmp_path)
    _domain(tmp_path, "intel-rapl:0", 400)
    _domain(tmp_path, "intel-rapl:1", 50)  # wrapped past 1000 µJ
    after = read_rapl(tmp_path)
    assert before.unavailable is None and set(before.counters_uj) == {
        "intel-rapl:0",
        "intel-rapl:1",
    }
    assert rapl_joules(before, after) == pytest.approx((300 + 150) / 1e6)


def test_rapl_unavailable_says_why_and_gives_no_number(tmp_path):
    missing = read_rapl(tmp_path / "powercap")
    assert missing.unavailable and "does not exist" in missing.unavailable
    assert rapl_joules(missing, missing) is None
    _domain(tmp_path, "intel-rapl:0", 1)
    (tmp_path / "intel-rapl:0" / "energy_uj").chmod(0)
    unreadable = read_rapl(tmp_path)
    if unreadable.unavailable is None:  # root reads any file: only the layout is checked
        assert unreadable.counters_uj == {"intel-rapl:0": 1}
    else:
        assert "not readable" in unreadable.unavailable


def test_weights_bytes_counts_the_served_graph_only(tmp_path):
    (tmp_path / "model.safetensors").write_bytes(b"x" * 1000)  # the torch reference
    (tmp_path / "tokenizer.json").write_text("{}" * 100)
    (tmp_path / "model.onnx").write_bytes(b"y" * 24)
    assert weights_bytes(tmp_path) == 24


def test_measuring_a_missing_model_fails_with_its_path(tmp_path):
    with pytest.raises(RuntimeError, match="model.onnx: missing"):
        pd.DataFrame({"text": ["hi"]}).to_parquet(tmp_path / "texts.parquet")
        measure_in_fresh_process(tmp_path / "nothing", tmp_path / "texts.parquet", 1, 1, 1)
