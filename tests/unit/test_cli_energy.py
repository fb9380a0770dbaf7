"""`frugal energy`: the modeled breakdown of a saved model, on both workloads."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from frugal.cli import main
from frugal.config import load_params
from frugal.errors import ParamsError
from frugal.model.export import save_classifier
from frugal.model.modeling import new_classifier
from tests.conftest import ROOT


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("energy")
    save_classifier(new_classifier(["A", "B"], max_length=48), tmp / "model")
    texts = ["Who wrote Hamlet ?", "How far is the Moon from the Earth ?", "What is DVC ?"]
    pd.DataFrame({"text": texts}).to_parquet(tmp / "texts.parquet")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["profile"].update(workload_data=str(tmp / "texts.parquet"), max_requests=2)
    # the tiny encoder's tensors, its word table apart, fit the mcu's 512 KiB as they do the
    # phone's 2 MiB: give the mcu a share small enough to leave some of them in DRAM
    params["profile"]["profiles"]["mcu"]["sram_bytes"] = 65536
    (tmp / "params.yaml").write_text(yaml.safe_dump(params))
    return tmp


def _energy(setup, capsys, *extra) -> tuple[int, dict | str]:
    code = main(["energy", str(setup / "model"), "--params", str(setup / "params.yaml"), *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else err


def test_streaming_costs_more_per_text_than_batch(setup, capsys):
    code, batch = _energy(setup, capsys, "--workload", "batch", "--profile", "phone")
    assert code == 0 and batch["kind"] == "modeled" and batch["texts"] == 2
    assert batch["requests"] == 2
    _, streaming = _energy(setup, capsys, "--workload", "streaming", "--profile", "phone")
    assert streaming["requests"] == 4 + 9  # word prefixes of the first two texts
    assert streaming["energy_uj_per_text"] > 3 * batch["energy_uj_per_text"]
    shares = [c["share"] for c in batch["by_component"].values()]
    assert sum(shares) == pytest.approx(1.0, abs=1e-3)
    assert (
        batch["by_component"]["feed_forward"]["share"]
        > batch["by_component"]["embeddings"]["share"]
    )


def test_less_sram_costs_more_energy(setup, capsys):
    _, phone = _energy(setup, capsys, "--profile", "phone")
    _, mcu = _energy(setup, capsys, "--profile", "mcu")
    assert mcu["sram_resident_tensors"] < phone["sram_resident_tensors"]
    assert mcu["by_memory_uj"]["dram"] > phone["by_memory_uj"]["dram"]


def test_unknown_profile_exits_2_naming_the_choices(setup, capsys):
    code, err = _energy(setup, capsys, "--profile", "watch")
    assert code == 2 and "watch" in err and "phone" in err


def test_a_profile_with_sram_dearer_than_dram_is_rejected():
    with pytest.raises(ParamsError, match="sram_pj_per_byte"):
        load_params(
            ROOT / "params.yaml",
            {"profile": {"profiles": {"phone": {"sram_pj_per_byte": 500.0}}}},
        )
