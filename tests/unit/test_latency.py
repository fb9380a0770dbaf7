"""The latency table of linear-layer kernels (given / when / then): a tiny real measurement of
each kernel, interpolation on a hand-made table, the file round trip, clear errors, warnings for
a table measured elsewhere, and `frugal latency` on a tiny model's shapes."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import onnxruntime as ort
import pytest
import yaml

from frugal.cli import main
from frugal.energy.latency import (
    KERNELS,
    LatencyTable,
    latency_us,
    load_table,
    machine_key,
    measure_table,
    model_shapes,
    save_table,
    usable_table,
)
from frugal.errors import FrugalError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def table() -> LatencyTable:
    """Measured here (so `usable_table` finds it current), with hand-made times."""
    return LatencyTable(
        machine=machine_key(),
        ort_version=ort.__version__,
        threads=2,
        block_size=64,
        tokens=[4, 8, 16],
        entries={
            (32, 384, 384): [10.0, 20.0, 30.0],
            (8, 384, 384): [6.0, 8.0, 16.0],
            (4, 384, 384): [5.0, 5.0, 5.0],
            (32, 384, 6): [2.0, 1.0, 1.5],
        },
    )


def test_a_tiny_real_measurement_times_every_kernel():
    # given one small shape and two token counts
    # when each kernel is timed for a few calls
    measured = measure_table([(64, 64)], [8, 4], rounds=2, calls=3)

    # then every kernel has a positive time at each token count, sorted by tokens
    assert measured.tokens == [4, 8]
    assert set(measured.entries) == {(bits, 64, 64) for bits in KERNELS}
    assert all(len(times) == 2 and min(times) > 0 for times in measured.entries.values())
    assert measured.machine == machine_key() and measured.ort_version == ort.__version__
    assert (measured.threads, measured.block_size) == (2, 64)


def test_a_width_without_kernel_is_refused_before_timing():
    with pytest.raises(FrugalError, match="bits \\[2\\] have no kernel"):
        measure_table([(64, 64)], [4], bits=(2,))


def test_latency_interpolates_between_token_counts_and_extrapolates_past_them(table):
    assert latency_us(table, 32, 384, 384, 8) == 20.0  # a measured point
    assert latency_us(table, 32, 384, 384, 12) == pytest.approx(25.0)  # halfway 8 -> 16
    assert latency_us(table, 8, 384, 384, 32) == pytest.approx(32.0)  # last slope: 1 µs/token
    assert latency_us(table, 32, 384, 384, 2) == pytest.approx(5.0)  # first slope: 2.5 µs/token
    assert latency_us(table, 4, 384, 384, 100) == 5.0  # flat stays flat


def test_extrapolation_never_goes_below_zero(table):
    # given a head whose time falls from 4 to 8 tokens (noise) at 0.25 µs per token
    # when asked far past that end
    # then it stops at 0, not a negative time
    assert latency_us(table, 32, 384, 6, 1) == pytest.approx(2.75)
    assert latency_us(table, 32, 384, 6, 16) == 1.5
    assert latency_us(table, 8, 384, 384, 0) == pytest.approx(4.0)
    falling = replace(table, entries={(32, 384, 6): [9.0, 1.0, 0.5]})
    assert latency_us(falling, 32, 384, 6, 1) > 0
    assert latency_us(falling, 32, 384, 6, 200) == 0.0


def test_a_pruned_layer_costs_nothing_even_unmeasured(table):
    assert latency_us(table, 0, 1536, 384, 32) == 0.0


def test_a_missing_shape_names_what_is_missing_and_the_fix(table):
    with pytest.raises(FrugalError) as error:
        latency_us(table, 4, 1536, 384, 8)
    message = str(error.value)
    assert "MatMulNBits" in message and "1536 x 384" in message
    assert "frugal latency --measure" in message


def test_save_then_load_gives_the_same_table(table, tmp_path):
    path = save_table(table, tmp_path / "configs" / "latency_table.json")
    assert load_table(path) == table
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary file left


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        (lambda payload: payload.pop("block_size"), "'block_size' is missing"),
        (lambda payload: payload["entries"][0].pop("latency_us"), "'entries[0].latency_us'"),
        (lambda payload: payload.update(threads="two"), "'threads' must be a positive integer"),
        (lambda payload: payload["entries"][1].update(latency_us=[1.0]), "one per token count"),
        (lambda payload: payload.update(tokens=[8, 4, 16]), "'tokens' must be"),
    ],
)
def test_a_file_missing_a_key_or_mistyped_names_file_and_key(table, tmp_path, edit, named):
    # given a saved table with one key removed or of the wrong type
    path = save_table(table, tmp_path / "latency_table.json")
    payload = json.loads(path.read_text())
    edit(payload)
    path.write_text(json.dumps(payload))

    # when it is loaded
    with pytest.raises(FrugalError) as error:
        load_table(path)

    # then the error names the file, the key and the fix
    assert str(path) in str(error.value) and named in str(error.value)
    assert "frugal latency --measure" in str(error.value)


def test_usable_table_warns_on_a_missing_file_without_raising(tmp_path):
    table, warning = usable_table(tmp_path / "none.json", threads=2, block_size=64)
    assert table is None
    assert str(tmp_path / "none.json") in warning and "frugal latency --measure" in warning


def test_usable_table_accepts_a_current_table_silently(table, tmp_path):
    path = save_table(table, tmp_path / "latency_table.json")
    assert usable_table(path, threads=2, block_size=64) == (table, None)


def test_usable_table_warns_on_a_table_from_elsewhere_and_still_returns_it(table, tmp_path):
    # given a table measured on another CPU with another onnxruntime
    elsewhere = replace(table, machine="Some Other CPU (avx2)", ort_version="1.20.0")
    path = save_table(elsewhere, tmp_path / "latency_table.json")

    # when it is checked here, with other threads too
    found, warning = usable_table(path, threads=4, block_size=64)

    # then the caller still gets it, with both sides of each difference named
    assert found == elsewhere
    for text in ("Some Other CPU (avx2)", machine_key(), "1.20.0", ort.__version__, "threads"):
        assert text in warning
    assert "block_size" not in warning  # the same on both sides


def test_usable_table_turns_an_unreadable_file_into_a_warning(tmp_path):
    path = tmp_path / "latency_table.json"
    path.write_text("{not json")
    table, warning = usable_table(path, threads=2, block_size=64)
    assert table is None and str(path) in warning


def test_model_shapes_are_the_distinct_linear_layers():
    assert model_shapes(384, 1536, 6) == [(384, 384), (384, 1536), (1536, 384), (384, 6)]
    assert model_shapes(64, 128, 64) == [(64, 64), (64, 128), (128, 64)]


@pytest.fixture
def latency_params(tmp_path: Path) -> Path:
    """params.yaml pointing train.output_dir at a tiny model's config and the table at tmp."""
    model = tmp_path / "base"
    model.mkdir()
    config = {"hidden_size": 64, "intermediate_size": 128, "id2label": {"0": "A", "1": "B"}}
    (model / "config.json").write_text(json.dumps(config))
    (model / "frugal.json").write_text(json.dumps({"labels": ["A", "B"], "max_length": 12}))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["train"]["output_dir"] = str(model)
    params["compress"]["latency_table"] = str(tmp_path / "latency_table.json")
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_cli_measures_the_base_models_shapes_then_reports_the_table(latency_params, capsys):
    # given a base model of hidden 64, feed-forward 128, 2 classes, max_length 12
    # when its table is measured (one round) and then its status asked
    assert main(["latency", "--measure", "--rounds", "1", "--params", str(latency_params)]) == 0
    measured = json.loads(capsys.readouterr().out)
    assert main(["latency", "--params", str(latency_params)]) == 0
    status = json.loads(capsys.readouterr().out)

    # then every kernel × shape was timed at 1 (the head), 4, 8 and the max_length 12, and the table is current
    assert measured["entries"] == 3 * 4 and measured["tokens"] == [1, 4, 8, 12]
    assert measured["path"] == str(latency_params.parent / "latency_table.json")
    assert status["status"] == "ok"
    assert set(status["latency_us"]["4 bits (MatMulNBits)"]) == {
        "64x64",
        "64x128",
        "128x64",
        "64x2",
    }


def test_cli_without_a_trained_model_exits_2_naming_the_file(latency_params, capsys):
    (latency_params.parent / "base" / "frugal.json").unlink()
    assert main(["latency", "--measure", "--params", str(latency_params)]) == 2
    error = capsys.readouterr().err
    assert "frugal.json: not found" in error and "dvc repro train" in error


def test_cli_status_without_a_table_says_how_to_measure(latency_params, capsys):
    assert main(["latency", "--params", str(latency_params)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert "frugal latency --measure" in status["status"] and "latency_us" not in status
