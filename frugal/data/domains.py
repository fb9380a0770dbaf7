"""The domains a continual update sees arrive: the labeled pool cut into steps by domain, and
a user's own file of new-domain rows arriving last (`continual.update_source`), read and
validated as `ingest` reads the source, and split as `prepare` splits it.

Pure: data frames in, data frames out; the update file is read, never written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pandas as pd

from frugal.config import ConflictPolicy
from frugal.data.dataset import MIN_PER_CLASS, split, text_key, validate_raw
from frugal.data.readers import SHOWN, excerpt, read_source
from frugal.errors import DataError


def auto_steps(domains: pd.Series) -> list[list[str]]:
    """Domains in arrival order derived from the data: all but the two smallest first (at
    least two, so step 0 is a classifier), then the remaining ones one per step, larger first.
    TREC coarse gives [ENTY, HUM, DESC, NUM], [LOC], [ABBR]."""
    sizes = domains.value_counts()
    order = sorted(sizes.index, key=lambda name: (-sizes[name], name))
    if len(order) < 3:
        raise DataError(
            f"continual: the data has {len(order)} domain(s) {order}; domain updates need at "
            "least 3 (2 to start, 1 arriving). Add classes, or drop the continual stage"
        )
    first = max(2, len(order) - 2)
    return [order[:first]] + [[name] for name in order[first:]]


def domain_steps(
    pool: pd.DataFrame, steps: list[list[str]] | Literal["auto"]
) -> list[pd.DataFrame]:
    """The labeled data arriving at each step: the rows of `pool` whose domain (the `domain`
    column, else the label) is in that step's list (`auto`: `auto_steps`). Errors name the
    step: a domain in no row, a domain in two steps."""
    column = "domain" if "domain" in pool.columns else "label"
    domains = pool[column].astype(str)
    if steps == "auto":
        steps = auto_steps(domains)
    seen: dict[str, int] = {}
    out = []
    for index, names in enumerate(steps):
        for name in names:
            if name in seen:
                raise DataError(
                    f"continual.steps: domain {name!r} arrives at step {seen[name]} and again "
                    f"at step {index}; each domain arrives once"
                )
            seen[name] = index
        data = pool[domains.isin(names)]
        missing = sorted(set(names) - set(domains[domains.isin(names)]))
        if missing:
            raise DataError(
                f"continual.steps[{index}]: no labeled examples of domain {missing}; the "
                f"{column} column has {sorted(domains.unique())}"
            )
        out.append(data.reset_index(drop=True))
    return out


def check_update(old_labels: list[str], new: pd.DataFrame) -> list[str]:
    """The label set after adding `new` to a model of `old_labels`; a clear error for an empty
    update or an update that re-labels nothing new."""
    if new.empty:
        raise DataError("the new-domain data is empty: nothing to update the model with")
    added = sorted(set(new["label"].astype(str)) - set(old_labels))
    if not added:
        raise DataError(
            f"the new-domain data only has classes the model already knows "
            f"({sorted(set(new['label'].astype(str)))}); a domain update must add a class"
        )
    return list(old_labels) + added


def check_memory(memory: pd.DataFrame, labels: list[str]) -> None:
    """Old data kept for replay must only hold classes the model was trained on."""
    unknown = sorted(set(memory["label"].astype(str)) - set(labels))
    if unknown:
        raise DataError(
            f"the old data (memory) has labels {unknown} that the old model never saw "
            f"(it knows {labels}); old data must come from earlier steps"
        )


def update_splits(
    source: Path,
    text_column: str,
    label_column: str,
    conflicts: ConflictPolicy,
    dev_fraction: float,
    test_fraction: float,
    seed: int,
    known: pd.DataFrame,
    updates_dir: Path = Path("data/updates"),
) -> dict[str, pd.DataFrame]:
    """A user's file of new-domain rows as pool / dev / test: read and validated as `ingest`
    does (the same errors: unreadable file, missing columns, empty texts or labels, a text
    with two labels, classes too small to split), split as `prepare` does. It must bring at
    least one class the model does not know, and no text of `known` (the labeled data the
    model was built from: a text in both would be trained on and tested on)."""
    source = Path(source)
    if Path(updates_dir) not in source.parents:
        raise DataError(
            f"continual.update_source {source}: put the file in {updates_dir}/ (continual.updates_dir, the folder "
            "DVC tracks as the continual stage's input) and point update_source at it"
        )
    if not source.exists():
        raise DataError(
            f"continual.update_source {source}: file not found (a path relative to the "
            "repository root)"
        )
    raw = read_source(source, text_column, label_column, "continual.update_")
    rows = validate_raw(raw, str(source), MIN_PER_CLASS, conflicts, 1, "continual.update_")
    old = set(known["label"].astype(str))
    if not set(rows["label"]) - old:
        raise DataError(
            f"{source}: its classes {sorted(set(rows['label']))} are all classes the model "
            f"already knows ({sorted(old)}); an update file brings at least one new class"
        )
    seen = set(map(text_key, known["text"].astype(str)))
    repeated = [text for text in rows["text"] if text_key(text) in seen]
    if repeated:
        shown = ", ".join(excerpt(text) for text in repeated[:SHOWN])
        raise DataError(
            f"{source}: {len(repeated)} text(s) also in the labeled data ({shown}"
            f"{', ...' if len(repeated) > SHOWN else ''}); remove them: a text in both would "
            "be trained on and tested on"
        )
    return split(rows, dev_fraction, test_fraction, seed)
