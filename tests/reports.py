"""Report entries shaped exactly as the committed reports (HEAD's default run), with a test's
own figures: what `frugal.catalog`'s schemas accept, without typing every key."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@cache
def _committed(name: str) -> dict:
    return json.loads((ROOT / "reports" / name).read_text(encoding="utf-8"))


def metrics_entry(accuracy: float, selection_difference: float, **figures: object) -> dict:
    """A model's entry of reports/metrics.json: the committed base model's, with this test
    accuracy, selection difference to the base model, and any other top-level figures."""
    entry = copy.deepcopy(_committed("metrics.json")["base"])
    entry["accuracy"] = accuracy
    entry["selection_accuracy_vs_baseline"]["difference"] = selection_difference
    return entry | figures


def profile_entry(uj_per_utterance: dict[str, dict[str, float]]) -> dict:
    """A model's entry of reports/profile.json: the committed base model's, with this modeled
    energy (profile → workload → µJ)."""
    entry = copy.deepcopy(_committed("profile.json")["base"])
    entry["modeled"]["uj_per_utterance"] = uj_per_utterance
    return entry
