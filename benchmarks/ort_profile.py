"""Where each millisecond goes, per op, in the ONNX models Frugal serves: ONNX Runtime's own
profiler on batch-1 test questions, and the graph ORT actually runs after its load-time fusions.

For each model: ONNX Runtime FP32 (`train.output_dir`), the int8 anchor (`ort_int8`, ORT's
`quantize_dynamic`) and the champion of `reports/metrics.json` (or the compressed variants named
with `--models`). Each is loaded once more, apart from the session that tokenizes, with profiling
on (`profile.threads` intra-op threads, one inter-op thread, every graph optimization), warmed up
with 10 requests, then answers `--requests` test questions one at a time. From the profiler's
trace: node time per request by op type and by (op type, input shapes), next to the whole
`model_run` time, so the time outside the kernels shows. The profiler slows runs down
(onnxruntime issue #20238; on 2 cores far more at 2 intra-op threads than at 1), so the same
requests are also timed in the serving session with the profiler off: read the per-op figures
as shares. From the graphs: op counts of `model.onnx` as stored and after ORT's session
optimizations, so one sees which fusions (attention, skip layer norm, GELU, ...) are in the file
and which ORT applies at load.

    dvc repro && python benchmarks/ort_profile.py      (nothing else busy on the CPU)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import onnx
import onnxruntime as ort
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import machine, provenance  # noqa: E402  (benchmarks/ is sys.path[0])

from frugal.config import Params, load_params  # noqa: E402
from frugal.model.runtime import ONNX_FILE, OnnxClassifier  # noqa: E402

DEFAULT_OUTPUT = ROOT / "benchmarks" / "results" / "ort_profile.json"
FP32 = "ORT FP32"
ANCHOR = "ort_int8"
WARMUP_REQUESTS = 10
TOP_OPS = 15
# Op types counted in every graph even when absent: the fusions ORT's transformer optimizations
# produce (or that a file already holds) and the plain ops they replace.
WATCHED_OPS = (
    "MultiHeadAttention",
    "Attention",
    "QAttention",
    "SkipLayerNormalization",
    "BiasGelu",
    "FastGelu",
    "Gelu",
    "EmbedLayerNormalization",
    "LayerNormalization",
    "MatMul",
    "MatMulInteger",
    "DynamicQuantizeMatMul",
    "MatMulIntegerToFloat",
    "MatMulNBits",
    "GatherBlockQuantized",
    "Gather",
)
VARYING = "T"  # an input dimension that changes from request to request (the token count)


# --- profiling ----------------------------------------------------------------------------


def profiling_session(model_path: Path, threads: int, workdir: Path) -> ort.InferenceSession:
    """`model_path` served as Frugal serves it, with ORT's profiler on; the graph after ORT's
    own optimizations is written to `workdir/optimized.onnx`, the trace under `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_profiling = True
    options.profile_file_prefix = str(workdir / "profile")
    options.optimized_model_filepath = str(workdir / "optimized.onnx")
    options.log_severity_level = 3  # ORT warns that the saved graph is hardware specific
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def profiled_runs(session: ort.InferenceSession, feeds: list[dict]) -> list[dict]:
    """Run every feed once, in order, and return the profiler's trace events (Chrome trace)."""
    for feed in feeds:
        session.run(None, feed)
    trace = Path(session.end_profiling())
    return json.loads(trace.read_text(encoding="utf-8"))


def _shape_label(shapes: list[list[object]]) -> str:
    return "x".join("[" + ",".join(str(d) for d in shape) + "]" for shape in shapes)


def _input_shapes(event: dict) -> list[list[int]]:
    """A node event's input shapes (`input_type_shape` is a list of {type: shape}). ORT lists
    no shape for a weight it pre-packed at load (MatMul's, for one): those rows show only the
    activations' shapes."""
    return [next(iter(typed.values()), []) for typed in event["args"].get("input_type_shape", [])]


def _shape_templates(nodes: list[dict]) -> dict[str, str]:
    """Node name -> its input shapes with every dimension that differs between runs written as
    `T`: the same weight-multiply of two requests of different lengths is one row."""
    seen: dict[str, list[list[list[int]]]] = defaultdict(list)
    for event in nodes:
        seen[event["name"]].append(_input_shapes(event))
    templates = {}
    for name, runs in seen.items():
        first = runs[0]
        same_ranks = all(
            len(r) == len(first) and all(len(a) == len(b) for a, b in zip(r, first, strict=True))
            for r in runs
        )
        if not same_ranks:  # not one shape pattern: keep each run's own shapes
            continue
        templates[name] = _shape_label(
            [
                [
                    dim if all(r[i][j] == dim for r in runs) else VARYING
                    for j, dim in enumerate(shape)
                ]
                for i, shape in enumerate(first)
            ]
        )
    return templates


def aggregate(events: list[dict], skip_runs: int = 0, top: int = TOP_OPS) -> dict:
    """Per-request figures from an ORT profiler trace, leaving out the first `skip_runs` runs
    (warm-up): node (kernel) time and whole `model_run` time in ms per request, node time by op
    type and the `top` (op type, input shapes) rows, each with its share of the node time."""
    runs = sorted(
        (e for e in events if e.get("cat") == "Session" and e.get("name") == "model_run"),
        key=lambda e: e["ts"],
    )
    measured = runs[skip_runs:]
    if not measured:
        raise ValueError(
            f"the trace holds {len(runs)} model_run events, none after the {skip_runs} warm-up "
            "runs: run at least one request after warming up"
        )
    start = measured[0]["ts"]
    nodes = [
        e
        for e in events
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= start
    ]
    requests = len(measured)
    node_us = sum(e["dur"] for e in nodes)

    by_type_us: Counter[str] = Counter()
    calls: Counter[str] = Counter()
    for event in nodes:
        by_type_us[event["args"]["op_name"]] += event["dur"]
        calls[event["args"]["op_name"]] += 1
    templates = _shape_templates(nodes)
    by_shape_us: Counter[tuple[str, str]] = Counter()
    shape_calls: Counter[tuple[str, str]] = Counter()
    for event in nodes:
        shapes = templates.get(event["name"]) or _shape_label(_input_shapes(event))
        key = (event["args"]["op_name"], shapes)
        by_shape_us[key] += event["dur"]
        shape_calls[key] += 1

    def share(us: float) -> float:
        return us / node_us if node_us else 0.0

    return {
        "requests": requests,
        "ms_per_request_nodes": node_us / 1000 / requests,
        "ms_per_request_run": sum(r["dur"] for r in measured) / 1000 / requests,
        "by_op_type": [
            {
                "op_type": op,
                "ms_per_request": us / 1000 / requests,
                "share": share(us),
                "calls_per_request": calls[op] / requests,
            }
            for op, us in by_type_us.most_common()
        ],
        "top_ops": [
            {
                "op_type": op,
                "shapes": shapes,
                "ms_per_request": us / 1000 / requests,
                "share": share(us),
                "calls_per_request": shape_calls[(op, shapes)] / requests,
            }
            for (op, shapes), us in by_shape_us.most_common(top)
        ],
    }


def op_counts(model: onnx.ModelProto) -> dict[str, int]:
    """Nodes per op type in the main graph: the watched ops first (0 when absent), then the
    others by count."""
    counted = Counter(node.op_type for node in model.graph.node)
    others = sorted((op for op in counted if op not in WATCHED_OPS), key=lambda o: -counted[o])
    return {op: counted.get(op, 0) for op in (*WATCHED_OPS, *others)}


def unprofiled_ms_per_request(session: ort.InferenceSession, feeds: list[dict]) -> float:
    """Mean wall time of `session.run` per feed (ms), profiler off: what the profiled figures
    would be without the profiler's own cost."""
    started = time.perf_counter()
    for feed in feeds:
        session.run(None, feed)
    return 1000 * (time.perf_counter() - started) / len(feeds)


def profile_model(folder: Path, threads: int, texts: list[str], workdir: Path) -> dict:
    """One model folder profiled on `texts`, one request each, after WARMUP_REQUESTS; and the
    same requests timed first in the serving session (OnnxClassifier's), profiler off."""
    served = OnnxClassifier(folder, threads)  # its tokenizer, and its checks of the folder
    warmup = [served.encode([texts[i % len(texts)]]) for i in range(WARMUP_REQUESTS)]
    feeds = [served.encode([text]) for text in texts]
    unprofiled_ms_per_request(served.session, warmup)
    unprofiled = unprofiled_ms_per_request(served.session, feeds)
    del served
    session = profiling_session(folder / ONNX_FILE, threads, workdir)
    figures = aggregate(profiled_runs(session, warmup + feeds), skip_runs=len(warmup))
    del figures["requests"]
    return {
        "folder": folder.resolve().relative_to(ROOT).as_posix()
        if folder.resolve().is_relative_to(ROOT)
        else str(folder),
        "ms_per_request_unprofiled": unprofiled,
        **figures,
        "ops_in_file": op_counts(onnx.load(str(folder / ONNX_FILE), load_external_data=False)),
        "ops_after_session_optimization": op_counts(
            onnx.load(str(workdir / "optimized.onnx"), load_external_data=False)
        ),
    }


# --- which models -------------------------------------------------------------------------


def champion(metrics_path: Path) -> str:
    """The model the evaluate stage chose (`"champion": true` in its metrics)."""
    if not metrics_path.is_file():
        raise SystemExit(
            f"{metrics_path}: missing, so no champion to profile; run `dvc repro evaluate`, or "
            "name the variants to profile with --models"
        )
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    name = next((name for name, m in metrics.items() if m.get("champion")), None)
    if name is None:
        raise SystemExit(
            f'{metrics_path}: no model has "champion": true; rerun `dvc repro evaluate`, or '
            "name the variants to profile with --models"
        )
    return name


def models_to_profile(params: Params, variants: list[str] | None) -> dict[str, Path]:
    """Display name -> model folder: ORT FP32 (the base model) always, then `variants` (folder
    names under compress.output_dir; default the anchor and the champion). `base` is ORT FP32."""
    compressed = ROOT / params.compress.output_dir
    if variants is None:
        variants = [ANCHOR, champion(ROOT / params.evaluate.output)]
    folders = {FP32: ROOT / params.train.output_dir}
    for name in variants:
        if name == "base":
            continue
        folder = compressed / name
        if not folder.is_dir():
            present = sorted(p.name for p in compressed.iterdir() if p.is_dir())
            raise SystemExit(
                f"{folder}: no such variant folder; compress.output_dir holds "
                f"{', '.join(present) or 'nothing'} (`dvc repro compress` writes them)"
            )
        folders[name] = folder
    return folders


# --- output -------------------------------------------------------------------------------


def print_tables(result: dict) -> None:
    models = result["models"]
    print(
        f"{result['requests']} batch-1 requests per model, {result['threads']} threads, "
        f"onnxruntime {result['onnxruntime_version']}, {result['cpu']}\n"
    )
    summary = pd.DataFrame(
        [
            {
                "model": name,
                "nodes ms/req": m["ms_per_request_nodes"],
                "run ms/req": m["ms_per_request_run"],
                "nodes / run": m["ms_per_request_nodes"] / m["ms_per_request_run"],
                "unprofiled run ms/req": m["ms_per_request_unprofiled"],
                "profiled / unprofiled": m["ms_per_request_run"] / m["ms_per_request_unprofiled"],
            }
            for name, m in models.items()
        ]
    )
    print(summary.to_string(index=False, float_format=lambda v: f"{v:.3f}"), "\n")

    ops = list(dict.fromkeys(r["op_type"] for m in models.values() for r in m["by_op_type"]))
    rows = []
    for op in ops:
        row = {"op type": op}
        for name, m in models.items():
            r = next((r for r in m["by_op_type"] if r["op_type"] == op), None)
            row[name] = (
                f"{r['ms_per_request']:.3f} ({100 * r['share']:.1f}%, {r['calls_per_request']:g}×)"
                if r
                else "–"
            )
        rows.append(row)
    print("ms per request by op type (share of node time, calls per request):")
    print(pd.DataFrame(rows).to_string(index=False), "\n")

    counted = list(dict.fromkeys(op for m in models.values() for op in m["ops_in_file"]))
    counted += [
        op
        for m in models.values()
        for op in m["ops_after_session_optimization"]
        if op not in counted
    ]
    rows = []
    for op in dict.fromkeys(counted):
        row = {"op type": op}
        for name, m in models.items():
            before = m["ops_in_file"].get(op, 0)
            after = m["ops_after_session_optimization"].get(op, 0)
            row[name] = f"{before} -> {after}" if before != after else str(after)
        rows.append(row)
    print("op counts: in model.onnx -> after ORT's session optimizations:")
    print(pd.DataFrame(rows).to_string(index=False), "\n")

    for name, m in models.items():
        print(f"{name} ({m['folder']}): top {len(m['top_ops'])} ops by (op type, input shapes)")
        top = pd.DataFrame(m["top_ops"])[
            ["op_type", "shapes", "ms_per_request", "share", "calls_per_request"]
        ]
        print(top.to_string(index=False, float_format=lambda v: f"{v:.3f}"), "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=ROOT / "params.yaml")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--requests", type=int, default=100, help="batch-1 test questions")
    parser.add_argument(
        "--models",
        nargs="+",
        metavar="NAME",
        help="compressed variant folders (under compress.output_dir) to profile after ORT FP32 "
        f"(default: {ANCHOR} and the champion of evaluate.output)",
    )
    args = parser.parse_args()
    if args.requests < 1:
        parser.error("--requests must be at least 1")
    params = load_params(args.params)
    threads = params.profile.threads
    folders = models_to_profile(params, args.models)
    texts = pd.read_parquet(ROOT / params.evaluate.test_data)["text"].astype(str).tolist()
    texts = texts[: args.requests]

    temp = Path(tempfile.mkdtemp(prefix="ort_profile_"))
    try:
        models = {
            name: profile_model(folder, threads, texts, temp / str(i))
            for i, (name, folder) in enumerate(folders.items())
        }
    finally:
        shutil.rmtree(temp, ignore_errors=True)

    result = {
        "requests": len(texts),
        "threads": threads,
        "onnxruntime_version": ort.__version__,
        "cpu": machine().rsplit(", ", 2)[0],  # stamp's machine(): "<model>, <n> CPUs, <os>"
        "models": models,
        "provenance": provenance(),
    }
    print_tables(result)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
