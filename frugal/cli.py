"""The `frugal` command: thin wiring from files and flags to the pure functions in `frugal`.

    frugal forecast POINTS.csv --at 5000 20000 [--target 0.9]
    frugal annotate export [--size N] [--params params.yaml]
    frugal annotate import FILE [--params params.yaml]
    frugal energy MODEL_DIR [--profile phone] [--workload batch|streaming] [--params params.yaml]
    frugal plan --target 0.92 [--energy-budget UJ] [--profile P] [--workload W] [--params params.yaml]
    frugal latency [--measure [--output PATH] [--rounds N]] [--params params.yaml]

Results go to stdout as one JSON object, so other tools can parse them. Bad input ends with
exit status 2 and a one-line message on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from frugal.config import load_params
from frugal.errors import DataError, FrugalError
from frugal.forecast.curves import fit_curve, forecast_report
from frugal.labels import annotation

if TYPE_CHECKING:
    from frugal.energy.latency import LatencyTable

EXIT_BAD_INPUT = 2


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

    annotate = commands.add_parser(
        "annotate",
        help="export the next batch for people to label, import their labels",
        description="Real annotation rounds. `export` writes the next batch chosen by "
        "sample.strategy (CSV and Label Studio tasks); `import` validates a labeled CSV or a "
        "Label Studio export and merges it into sample.annotations.",
    )
    annotate.set_defaults(
        command="annotate", run=lambda _: annotate.error("choose export or import")
    )
    actions = annotate.add_subparsers(metavar="ACTION")
    export = actions.add_parser("export", help="write the next batch to sample.export_dir")
    export.add_argument("--size", type=_positive_int, help="batch size (default sample.batch_size)")
    export.add_argument("--params", type=Path, default=Path("params.yaml"))
    export.set_defaults(command="annotate export", run=_annotate_export)
    importer = actions.add_parser("import", help="merge a labeled batch into sample.annotations")
    importer.add_argument(
        "file", type=Path, metavar="FILE", help="labeled .csv or Label Studio .json"
    )
    importer.add_argument("--params", type=Path, default=Path("params.yaml"))
    importer.set_defaults(command="annotate import", run=_annotate_import)

    energy = commands.add_parser(
        "energy",
        help="modeled energy per request of a saved model, by component and tensor",
        description="Count how often each module runs over profile.workload_data (first "
        "profile.max_requests texts), place tensors in the profile's SRAM and price every read "
        "and MAC (frugal/energy/modeled.py). Figures are modeled, not measured.",
    )
    energy.add_argument("model_dir", type=Path, metavar="MODEL_DIR")
    energy.add_argument("--profile", default="phone", help="a profile in profile.profiles")
    energy.add_argument("--workload", choices=("batch", "streaming"), default="batch")
    energy.add_argument("--params", type=Path, default=Path("params.yaml"))
    energy.set_defaults(command="energy", run=_energy)

    planner = commands.add_parser(
        "plan",
        help="labels to buy for a target accuracy, and the model to ship within an energy budget",
        description="From the last `dvc repro`: the fitted learning curve (forecast.output), each "
        "model's dev accuracy difference (evaluate.output) and modeled energy (profile.output), "
        "answer how many labels the target needs (90%% interval) and the lowest-energy model "
        "variant within the budget, with its expected accuracy (frugal/forecast/planning.py).",
    )
    planner.add_argument("--target", type=_fraction, required=True, metavar="ACC")
    planner.add_argument(
        "--energy-budget", type=_positive_float, metavar="UJ", help="µJ per utterance at most"
    )
    planner.add_argument("--profile", help="a profile in profile.profiles (default: evaluate's)")
    planner.add_argument(
        "--workload", choices=("batch", "streaming"), help="default: profile.workloads' first"
    )
    planner.add_argument("--params", type=Path, default=Path("params.yaml"))
    planner.set_defaults(command="plan", run=_plan)

    latency = commands.add_parser(
        "latency",
        help="the measured latency table of linear-layer kernels: its status, or measure it",
        description="Without --measure: whether compress.latency_table was measured as this "
        "machine would run it (CPU, onnxruntime, compress.threads, compress.block_size), and "
        "its µs per call. With --measure: time MatMul (32 bits), DynamicQuantizeMatMul (8) and "
        "MatMulNBits (4) on every linear-layer shape of train.output_dir's model and write the "
        "table (frugal/energy/latency.py). Measure on an otherwise idle machine.",
    )
    latency.add_argument(
        "--measure", action="store_true", help="time the kernels and write the table"
    )
    latency.add_argument(
        "--output", type=Path, metavar="PATH", help="with --measure: default compress.latency_table"
    )
    latency.add_argument(
        "--rounds", type=_positive_count, metavar="N", help="with --measure: interleaved rounds"
    )
    latency.add_argument("--params", type=Path, default=Path("params.yaml"))
    latency.set_defaults(command="latency", run=_latency)
    return parser


# Token counts each kernel is timed at (capped at the model's max_length, which is always added).
LATENCY_TOKENS = (1, 4, 8, 16, 32, 64, 128)  # 1: the head, which reads the pooled text


def _latency(args: argparse.Namespace) -> dict[str, Any]:
    from frugal.compress.pruning import kept_channels
    from frugal.energy import latency  # onnxruntime, only when needed

    cfg = load_params(args.params)
    if not args.measure:
        if args.output is not None or args.rounds is not None:
            raise FrugalError("--output and --rounds apply to --measure only")
        table, warning = latency.usable_table(
            cfg.compress.latency_table, cfg.compress.threads, cfg.compress.block_size
        )
        return {
            "path": str(cfg.compress.latency_table),
            "status": warning or "ok",
            **(_latency_summary(table) if table is not None else {}),
        }

    hidden, ffn, n_classes, max_length = _base_model_shape(cfg.train.output_dir)
    tokens = sorted({t for t in LATENCY_TOKENS if t <= max_length} | {max_length})
    options = {"rounds": args.rounds} if args.rounds is not None else {}
    started = time.perf_counter()
    table = latency.measure_table(
        latency.model_shapes(
            hidden,
            ffn,
            n_classes,
            [kept_channels(ffn, cfg.compress.channel_group, k) for k in cfg.compress.ffn_keep],
        ),  # fmt: skip
        tokens,
        block_size=cfg.compress.block_size,
        threads=cfg.compress.threads,
        **options,
    )
    seconds = time.perf_counter() - started
    path = latency.save_table(table, args.output or cfg.compress.latency_table)
    return {
        "path": str(path),
        "machine": table.machine,
        "ort_version": table.ort_version,
        "threads": table.threads,
        "block_size": table.block_size,
        "tokens": table.tokens,
        "entries": len(table.entries),
        "seconds": round(seconds, 1),
    }


def _latency_summary(table: LatencyTable) -> dict[str, Any]:
    """The table as JSON: its provenance and, per kernel and shape (in x out), µs per call at
    each of its token counts."""
    from frugal.energy.latency import KERNELS

    latency_us: dict[str, dict[str, list[float]]] = {}
    for (bits, in_features, out_features), times in sorted(
        table.entries.items(), key=lambda item: (-item[0][0], item[0][1], item[0][2])
    ):
        kernel = f"{bits} bits ({KERNELS[bits]})"
        latency_us.setdefault(kernel, {})[f"{in_features}x{out_features}"] = times
    return {
        "machine": table.machine,
        "ort_version": table.ort_version,
        "threads": table.threads,
        "block_size": table.block_size,
        "tokens": table.tokens,
        "latency_us": latency_us,
    }


def _base_model_shape(model_dir: Path) -> tuple[int, int, int, int]:
    """(hidden size, feed-forward size, classes, max_length) of the trained base model, from
    its config.json and frugal.json."""
    found: dict[str, dict[str, Any]] = {}
    for name in ("config.json", "frugal.json"):
        path = model_dir / name
        if not path.is_file():
            raise DataError(
                f"{path}: not found; run `dvc repro train` first (its shapes are timed)"
            )
        try:
            found[name] = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise DataError(f"{path}: not valid JSON ({error})") from None
        if not isinstance(found[name], dict):
            raise DataError(f"{path}: expected a JSON object")
    config, meta = found["config.json"], found["frugal.json"]
    n_classes = config.get("num_labels") or len(config.get("id2label") or meta.get("labels") or [])
    values = (
        ("config.json hidden_size", config.get("hidden_size")),
        ("config.json intermediate_size", config.get("intermediate_size")),
        ("config.json id2label (the classes)", n_classes),
        ("frugal.json max_length", meta.get("max_length")),
    )
    for key, value in values:
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise DataError(f"{model_dir}: {key} must be a positive integer, got {value!r}")
    hidden, ffn, classes, max_length = (value for _, value in values)
    return hidden, ffn, classes, max_length


def _plan(args: argparse.Namespace) -> dict[str, Any]:
    from frugal import catalog
    from frugal.forecast.planning import plan_from_reports

    params = load_params(args.params)
    if not params.forecast.output.is_file():
        raise DataError(
            f"{params.forecast.output}: not found; run `dvc repro` first (the plan reads it)"
        )
    return plan_from_reports(
        catalog.FORECAST.read(params),
        catalog.METRICS.read(params),
        catalog.PROFILE.read(params),
        args.target,
        args.energy_budget,
        args.profile or params.evaluate.champion_profile,
        args.workload or params.profile.workloads[0],
    )


def _energy(args: argparse.Namespace) -> dict[str, Any]:
    from frugal.compress.packed import model_energy_of
    from frugal.energy import modeled  # torch and transformers, only when needed

    cfg = load_params(args.params).profile
    if args.profile not in cfg.profiles:
        raise DataError(
            f"no device profile {args.profile!r} in {args.params} (profile.profiles has: "
            f"{', '.join(cfg.profiles)})"
        )
    if not cfg.workload_data.is_file():
        raise DataError(f"{cfg.workload_data}: workload data not found; run `dvc repro prepare`")
    texts = pd.read_parquet(cfg.workload_data)["text"].astype(str).tolist()[: cfg.max_requests]
    profile = modeled.device_profile(args.profile, cfg.profiles[args.profile])
    (result,) = model_energy_of(args.model_dir, texts, [profile], (args.workload,))
    report = result.reports[args.profile]
    table = report.table()
    components = report.by_component()
    return {
        "kind": "modeled",
        "model": str(args.model_dir),
        "profile": args.profile,
        "source": profile.source,
        "workload": args.workload,
        "texts": result.texts,
        "requests": result.requests,
        "energy_uj_per_text": round(report.total_pj / 1e6, 3),
        "by_memory_uj": {key: round(pj / 1e6, 3) for key, pj in report.by_memory().items()},
        "by_layer_uj": {
            layer: round(row["total_pj"] / 1e6, 3) for layer, row in report.by_layer().iterrows()
        },
        "by_component": {
            name: {"uj": round(row["total_pj"] / 1e6, 3), "share": round(row["share"], 4)}
            for name, row in components.iterrows()
        },
        "sram_resident_tensors": int((table["memory"] == "sram").sum()),
        "top_tensors_uj": {
            row.tensor: round(row.total_pj / 1e6, 3)
            for row in table.nlargest(5, "total_pj").itertuples()
        },
    }


def _forecast(args: argparse.Namespace) -> dict[str, Any]:
    return forecast_report(fit_curve(_read_points(args.points)), args.at, args.target)


def _annotate_export(args: argparse.Namespace) -> dict[str, Any]:
    from frugal.labels import sampling  # the proxy's scikit-learn / torch imports, only when needed

    cfg = load_params(args.params).sample
    inputs = sampling.load_inputs(cfg)
    annotations = annotation.read_annotations(cfg.annotations)
    pool_ids = inputs.pool["id"].astype(str).tolist()
    first = annotations.empty
    size = args.size or (cfg.initial_size if first else cfg.batch_size)
    positions = sampling.next_batch(inputs.features, annotations, pool_ids, cfg, size)
    round_no = 1 if first else int(annotations["round"].max()) + 1
    batch = inputs.pool.iloc[positions][["id", "text"]]
    written = annotation.write_batch(
        batch, sorted(set(inputs.eval_labels)), cfg.export_dir, round_no
    )
    return {
        "round": round_no,
        "size": len(batch),
        "strategy": "cold start: " + cfg.cold_start if first else cfg.strategy,
        "files": {kind: str(path) for kind, path in written.items()},
    }


def _annotate_import(args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_params(args.params).sample
    for path in (cfg.pool_data, cfg.eval_data):
        if not path.is_file():
            raise DataError(f"{path}: split not found; run `dvc repro prepare` first")
    pool_ids = pd.read_parquet(cfg.pool_data, columns=["id"])["id"].astype(str)
    labels = pd.read_parquet(cfg.eval_data, columns=["label"])["label"].astype(str)
    result = annotation.import_annotations(args.file, cfg.annotations, pool_ids, set(labels))
    print(
        f"next: `git add {cfg.annotations}` and `dvc repro` to train on the new labels",
        file=sys.stderr,
    )
    return {
        "added": result.added,
        "already_present": result.already_present,
        "unlabeled": result.unlabeled,
        "round": result.round,
        "store": str(result.store),
    }


def _read_points(path: Path) -> pd.DataFrame:
    """Read the points CSV, turning every way it can be unreadable into a `FrugalError`."""
    if not path.is_file():
        raise DataError(f"{path}: no such file; pass a CSV with columns n_labels,score")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else "unreadable"
        raise DataError(f"{path}: not a readable CSV ({reason})") from None


def _positive_int(text: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of labels") from None
    if value <= 0 or not value.is_integer():
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive whole number of labels")
    return int(value)


def _positive_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be positive")
    return value


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
