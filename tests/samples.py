"""Tiny real data sets the data tests share: a user's intents under their own column names, a
labeled table of n per class, and the ingest settings that read them."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from frugal.config import IngestConfig

COARSE = {"ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"}  # TREC's coarse classes
QUESTIONS = {
    "weather": [
        "will it rain tomorrow",
        "how hot is it outside",
        "is it snowing in oslo",
        "what is the forecast for friday",
    ],
    "music": [
        "play some jazz",
        "skip this song",
        "turn the volume up",
        "who sings this track",
    ],
    "alarm": [
        "wake me up at seven",
        "cancel my morning alarm",
        "set an alarm for noon",
        "snooze for ten minutes",
    ],
}


def user_frame() -> pd.DataFrame:
    """Twelve intents with user-style column names."""
    rows = [(q, intent) for intent, qs in QUESTIONS.items() for q in qs]
    return pd.DataFrame({"utterance": [q for q, _ in rows], "intent": [i for _, i in rows]})


def ingest_config(source: str | Path, **overrides: object) -> IngestConfig:
    values: dict[str, object] = {
        "source": str(source),
        "text_column": "utterance",
        "label_column": "intent",
        "trec_labels": "coarse",
        "conflicts": "majority",
        "max_rows": None,
        "seed": 13,
        "output": Path("data/raw.parquet"),
    }
    values.update(overrides)
    return IngestConfig.model_validate(values)


def labeled(n_per_class: int, classes: tuple[str, ...] = ("a", "b", "c")) -> pd.DataFrame:
    rows = [
        (f"{label}-{i}", f"question number {i} about {label}", label)
        for label in classes
        for i in range(n_per_class)
    ]
    return pd.DataFrame(rows, columns=["id", "text", "label"])


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path
