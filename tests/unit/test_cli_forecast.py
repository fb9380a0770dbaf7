"""`frugal forecast`: the JSON contract other tools parse, and clean failures on bad input.
(The same command as its own process: tests/e2e/test_entry_points.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from frugal.cli import main


@pytest.fixture(scope="module")
def points_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two seeds per size of a saturating curve, as an experiment log would hold them."""
    rng = np.random.default_rng(0)
    n_labels = np.repeat([100, 200, 400, 800, 1600], 2)
    score = 0.9 - 0.5 * n_labels**-0.4 + rng.normal(0, 0.003, n_labels.size)
    path = tmp_path_factory.mktemp("points") / "points.csv"
    pd.DataFrame({"n_labels": n_labels, "score": score}).to_csv(path, index=False)
    return path


def assert_band(band: dict, keys: tuple[str, ...] = ("score", "low", "high")) -> None:
    assert set(band) == set(keys)
    assert all(isinstance(band[key], float) for key in keys)
    assert band["low"] <= band["score"] <= band["high"]


def test_forecast_prints_one_json_object_with_the_contract_keys(
    points_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["forecast", str(points_csv), "--at", "3200", "20000"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"forecasts", "max_score", "method", "calibration"}
    assert [f["n_labels"] for f in result["forecasts"]] == [3200, 20000]
    for forecast in result["forecasts"]:
        assert set(forecast) == {"n_labels", "score", "low", "high"}
        assert isinstance(forecast["n_labels"], int)
        assert_band({k: v for k, v in forecast.items() if k != "n_labels"})
    assert_band(result["max_score"])


def test_target_adds_labels_for_target(
    points_csv: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["forecast", str(points_csv), "--at", "5000", "--target", "0.85"]) == 0
    reached = json.loads(capsys.readouterr().out)["labels_for_target"]
    assert set(reached) == {"target", "n_labels", "low", "high"}
    assert reached["target"] == 0.85
    assert isinstance(reached["n_labels"], int) and 100 <= reached["n_labels"] <= 1000

    assert main(["forecast", str(points_csv), "--at", "5000", "--target", "0.99"]) == 0
    out_of_reach = json.loads(capsys.readouterr().out)["labels_for_target"]
    assert out_of_reach["n_labels"] is None


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("n_labels,accuracy\n100,0.5\n200,0.6\n400,0.7\n", "missing column"),
        ("n_labels,score\n100,0.5\n200,high\n400,0.7\n", "non-numeric"),
        ("n_labels,score\n100,0.5\n200,1.5\n400,0.7\n", "outside [0, 1]"),
        ("n_labels,score\n100,0.5\n100,0.52\n200,0.6\n", "at least 3 distinct n_labels"),
        (None, "no such file"),
    ],
    ids=["missing-column", "non-numeric", "score-1.5", "two-sizes", "missing-file"],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(
    tmp_path: Path, content: str | None, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "points.csv"
    if content is not None:
        path.write_text(content)
    code = main(["forecast", str(path), "--at", "1000"])  # an uncaught exception fails here
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
