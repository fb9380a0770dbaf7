"""Did a change alter what the pipeline produces? Compares every stage output of two
repositories after `dvc repro` (e.g. a clone at the commit before a redesign and one after),
by the md5 DVC recorded for it in each dvc.lock: files and whole model folders alike.

    python benchmarks/same_outputs.py BEFORE_REPO AFTER_REPO

Prints a table (stage, output, same or not) and writes benchmarks/results/same_outputs.json.
Outputs that hold wall-clock measurements (the profile stage's latency and throughput, and
the evaluate report that quotes them) differ between any two runs; the table says so, and
`--ignore` drops them from the verdict.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import sys
from pathlib import Path

import yaml
from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "benchmarks" / "results" / "same_outputs.json"
TIMED = ("reports/profile.json", "reports/metrics.json", "reports/report.html")
# Keys and columns that hold what a clock or the OS measured (seconds, latency, memory, RAPL):
# a JSON or CSV output whose other values all match is the same output.
WALL_CLOCK = re.compile(r"seconds|latency|throughput|rss_mb|cpu_ms|rapl")


def _without_clock(path: Path) -> object:
    """A JSON or CSV file's content without its wall-clock keys or columns (None: neither)."""

    def strip(value: object) -> object:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if not WALL_CLOCK.search(k)}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    if path.suffix == ".json":
        return strip(json.loads(path.read_text(encoding="utf-8")))
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            return [strip(row) for row in csv.DictReader(fh)]
    return None


def same_apart_from_clock(before: Path, after: Path, output: str) -> bool:
    """Whether one output file holds the same values in both repositories but for wall-clock
    keys and columns (False for folders and other formats)."""
    old, new = before / output, after / output
    if not (old.is_file() and new.is_file()):
        return False
    stripped = _without_clock(old)
    return stripped is not None and stripped == _without_clock(new)


def stage_outputs(repo: Path) -> dict[tuple[str, str], str]:
    """(stage, output path) -> md5, from `repo`'s dvc.lock."""
    lock = repo / "dvc.lock"
    if not lock.is_file():
        raise SystemExit(f"{lock}: not found; run `dvc repro` in {repo} first")
    stages = yaml.safe_load(lock.read_text(encoding="utf-8"))["stages"]
    return {
        (stage, out["path"]): out["md5"]
        for stage, entry in stages.items()
        for out in entry.get("outs", [])
    }


def compare(before: Path, after: Path, ignore: tuple[str, ...] = ()) -> dict:
    old, new = stage_outputs(before), stage_outputs(after)
    rows = []
    for key in sorted(set(old) | set(new)):
        stage, path = key
        rows.append(
            {
                "stage": stage,
                "output": path,
                "before": old.get(key),
                "after": new.get(key),
                "same": old.get(key) == new.get(key),
                "same_apart_from_wall_clock": old.get(key) != new.get(key)
                and same_apart_from_clock(before, after, path),
                "timed": path in TIMED,
            }
        )
    counted = [r for r in rows if r["output"] not in ignore]
    return {
        "before": str(before),
        "after": str(after),
        "identical": all(r["same"] or r["same_apart_from_wall_clock"] for r in counted),
        "ignored": list(ignore),
        "outputs": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore", nargs="*", default=list(TIMED), help="outputs not judged")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    result = compare(args.before, args.after, tuple(args.ignore))
    result["provenance"] = provenance()
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"{'stage':<15} {'output':<45} same")
    for row in result["outputs"]:
        same = "yes" if row["same"] else "NO"
        if row["same_apart_from_wall_clock"]:
            same = "yes, apart from wall-clock fields"
        note = " (wall-clock figures)" if row["timed"] and not row["same"] else ""
        print(f"{row['stage']:<15} {row['output']:<45} {same}{note}")
    print(
        f"\nidentical (ignoring {', '.join(result['ignored']) or 'nothing'}, and wall-clock "
        f"fields): {result['identical']}"
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
