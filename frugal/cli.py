"""The `frugal` command: thin wiring from files and flags to the pure functions in `frugal`.

    frugal forecast POINTS.csv --at 5000 20000 [--target 0.9]

Results go to stdout as one JSON object, so other tools can parse them. Bad input ends with
exit status 2 and a one-line message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from frugal.curves import fit_curve
from frugal.errors import DataError, FrugalError

EXIT_BAD_INPUT = 2
_DIGITS = 6


def main(argv: list[str] | None = None) -> int:
    """Run the `frugal` command; returns the process exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_BAD_INPUT
    try:
        result = args.run(args)
    except FrugalError as error:
        print(f"frugal {args.command}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(result))
    return 0


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="frugal", description="Frugal labeling tools.")
    parser.set_defaults(command=None)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    forecast = commands.add_parser(
        "forecast",
        help="forecast a learning curve from (n_labels, score) points",
        description="Fit learning curves to POINTS.csv (columns n_labels,score; scores are "
        "fractions in [0, 1]; several rows per n_labels allowed) and print forecasts with 90%% "
        "intervals as JSON.",
    )
    forecast.add_argument("points", type=Path, metavar="POINTS.csv")
    forecast.add_argument(
        "--at",
        type=_positive_int,
        nargs="+",
        required=True,
        metavar="N",
        help="numbers of labels to forecast the score at",
    )
    forecast.add_argument(
        "--target", type=_fraction, metavar="SCORE", help="also report the labels needed for it"
    )
    forecast.set_defaults(command="forecast", run=_forecast)
    return parser


def _forecast(args: argparse.Namespace) -> dict[str, Any]:
    curve = fit_curve(_read_points(args.points))
    score, low, high = curve.predict(args.at)
    best, best_low, best_high = curve.max_score()
    result: dict[str, Any] = {
        "forecasts": [
            {"n_labels": n, "score": _round(s), "low": _round(lo), "high": _round(hi)}
            for n, s, lo, hi in zip(args.at, score, low, high, strict=True)
        ],
        "max_score": {"score": _round(best), "low": _round(best_low), "high": _round(best_high)},
    }
    if args.target is not None:
        n_labels, fewest, most = curve.labels_for_target(args.target)
        result["labels_for_target"] = {
            "target": args.target,
            "n_labels": n_labels,
            "low": fewest,
            "high": most,
        }
    return result


def _read_points(path: Path) -> pd.DataFrame:
    """Read the points CSV, turning every way it can be unreadable into a `FrugalError`."""
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a CSV with columns n_labels,score")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise DataError(f"{path}: not a readable CSV ({reason})") from None


def _round(value: float) -> float:
    return round(float(value), _DIGITS)


def _positive_int(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of labels") from None
    if value <= 0 or not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive whole number of labels")
    return int(value)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a score") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a fraction in [0, 1] (0.9, not 90)")
    return value


if __name__ == "__main__":
    sys.exit(main())
