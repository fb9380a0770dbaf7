"""Measured latency of the kernels a linear layer can run as, stored so plans are reproducible.

The compression planner gives each linear layer a width, and each width runs as a different
ONNX Runtime kernel (`KERNELS`); energy is modeled, but time on a real CPU is not a formula: on
a CPU without int8 dot-product instructions, a 4-bit `MatMulNBits` can be slower than the
float32 `MatMul` it replaces. So each kernel is timed once per machine, on every (in, out)
shape the model has and a few token counts, and the medians are committed as a JSON file
(`frugal latency --measure`). Plans read that file rather than timing anything, so the same
inputs give the same plan on every run.

numpy, onnx and onnxruntime only: this module runs where the model is served.
"""

from __future__ import annotations

import json
import math
import platform
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import TensorProto, helper, numpy_helper

from frugal.errors import FrugalError
from frugal.files import write_json
from frugal.model.export import MS_DOMAIN, OPSET, lower_matmul
from frugal.model.runtime import ACCURACY_LEVEL, KERNEL_OF

# Weight width (bits) -> the ONNX Runtime kernel that executes a linear layer stored at it.
# 0 bits (pruned) has no kernel: the layer is gone and costs nothing.
KERNELS: dict[int, str] = {bits: op for bits, op in KERNEL_OF.items() if op}
MEASURE_COMMAND = "frugal latency --measure"
# MatMulNBits accuracy_level 4: activations quantized to int8, int8 multiply-accumulates.
NBITS_ACCURACY_LEVEL = ACCURACY_LEVEL[8]
# Instruction sets that change which int8 / int4 code path ONNX Runtime's MLAS takes.
_ISA_FLAGS = (
    "avx2",
    "avx_vnni",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "asimddp",  # ARM: int8 dot product
    "i8mm",  # ARM: int8 matrix multiply
    "sve",
)
_TABLE_KEYS = ("machine", "ort_version", "threads", "block_size", "tokens", "entries")
_ENTRY_KEYS = ("bits", "in_features", "out_features", "latency_us")

Shape = tuple[int, int]  # (in_features K, out_features N)


@dataclass(frozen=True)
class LatencyTable:
    """Median µs per call of each kernel, shape and token count, and where it was measured.

    `entries[(bits, in_features, out_features)][i]` is the time at `tokens[i]` tokens (rows of
    the activation). A call is one `run_with_iobinding` of a one-node graph with its input and
    output bound in advance, so the figure holds the kernel and ONNX Runtime's per-run
    dispatch (a few µs), not Python's argument conversion or output allocation. Worker
    threads sleep between calls instead of spinning (see `measure_table`).
    """

    machine: str  # `machine_key()` where it was measured
    ort_version: str
    threads: int  # intra-op threads of the sessions timed
    block_size: int  # MatMulNBits weights per scale
    tokens: list[int]  # increasing
    entries: dict[tuple[int, int, int], list[float]]


def machine_key() -> str:
    """CPU model and the instruction sets that decide the kernels' speed, e.g.
    "AMD EPYC (avx2 avx512f avx512_vnni)": two machines with the same key run these kernels
    alike. Falls back to `platform.processor()` where /proc/cpuinfo is missing."""
    fields: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                fields.setdefault(key.strip().lower(), value.strip())
    except OSError:
        pass
    name = (
        fields.get("model name")
        or fields.get("hardware")
        or platform.processor()
        or platform.machine()
        or "unknown CPU"
    )
    present = set((fields.get("flags") or fields.get("features") or "").split())
    isa = [flag for flag in _ISA_FLAGS if flag in present]
    return f"{name} ({' '.join(isa)})" if isa else name


def model_shapes(
    hidden_size: int, intermediate_size: int, n_classes: int, ffn_widths: Sequence[int] = ()
) -> list[Shape]:
    """The distinct (in_features, out_features) of a BERT classifier's linear layers: attention
    projections (h, h), feed-forward in (h, ffn) and out (ffn, h), and the head (h, classes);
    and the feed-forward layers at each of `ffn_widths` channels (pruned shares)."""
    for name, value in (
        ("hidden_size", hidden_size),
        ("intermediate_size", intermediate_size),
        ("n_classes", n_classes),
    ):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise FrugalError(f"model_shapes: {name} must be a positive integer, got {value!r}")
    shapes = [
        (hidden_size, hidden_size),
        (hidden_size, intermediate_size),
        (intermediate_size, hidden_size),
        (hidden_size, n_classes),
    ]
    for width in ffn_widths:
        shapes += [(hidden_size, width), (width, hidden_size)]
    return list(dict.fromkeys(shapes))


def measure_table(
    shapes: Iterable[Shape],
    tokens: Iterable[int],
    bits: Iterable[int] = (32, 8, 4),
    block_size: int = 64,
    threads: int = 2,
    rounds: int = 15,
    calls: int = 100,
) -> LatencyTable:
    """Time every kernel of `bits` on every shape at every token count, on this machine.

    Each (bits, shape) is its own one-node graph with random weights (speed does not depend on
    their values). After a warm-up, the timing runs in `rounds` rounds; each round times
    `calls` calls of every (kernel, shape, tokens) in a shuffled order, so a noisy moment (another
    process, a frequency change) hits all kernels alike instead of one. The figure is the
    median over rounds of each round's median call. Takes about rounds × calls × (sum of all
    call times): MiniLM's 4 shapes at 4 to 32 tokens took 11 s with the defaults on 2 cores of
    an AMD EPYC (up to 128 tokens: several times that, estimated). Keep the machine otherwise
    idle.
    """
    shapes = list(dict.fromkeys((int(k), int(n)) for k, n in shapes))
    tokens = sorted(set(int(t) for t in tokens))
    bits = list(dict.fromkeys(int(b) for b in bits))
    _check_measure_args(shapes, tokens, bits, block_size, threads, rounds, calls)
    rng = np.random.default_rng(0)

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    # Idle workers of one session's pool otherwise spin while the next session runs: on 2 cores
    # that doubled MatMul's time when 12 sessions were interleaved, and made it vary 30% from
    # run to run (vs 5% without spinning).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    cells: list[tuple[tuple[int, int, int], int, ort.InferenceSession, ort.IOBinding]] = []
    buffers: list[ort.OrtValue] = []  # the bindings' inputs and outputs: alive while timed
    for width in bits:
        for in_features, out_features in shapes:
            graph = _kernel_graph(width, in_features, out_features, block_size, rng)
            session = ort.InferenceSession(
                graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            for position, count in enumerate(tokens):
                binding, values = _bound(session, rng, count, in_features, out_features)
                buffers += values
                cells.append(((width, in_features, out_features), position, session, binding))

    warmup_calls = max(3, calls // 5)
    for _, _, session, binding in cells:
        for _ in range(warmup_calls):
            session.run_with_iobinding(binding)

    per_round: dict[tuple[tuple[int, int, int], int], list[float]] = {}
    durations_ns = np.empty(calls, dtype=np.int64)
    for _ in range(rounds):
        for index in rng.permutation(len(cells)):
            key, position, session, binding = cells[index]
            for call in range(calls):
                start = time.perf_counter_ns()
                session.run_with_iobinding(binding)
                durations_ns[call] = time.perf_counter_ns() - start
            per_round.setdefault((key, position), []).append(float(np.median(durations_ns)) / 1e3)

    entries = {
        key: [
            round(float(np.median(per_round[(key, position)])), 2)
            for position in range(len(tokens))
        ]
        for key in dict.fromkeys(key for key, _, _, _ in cells)
    }
    return LatencyTable(
        machine=machine_key(),
        ort_version=ort.__version__,
        threads=threads,
        block_size=block_size,
        tokens=tokens,
        entries=entries,
    )


def latency_us(
    table: LatencyTable, bits: int, in_features: int, out_features: int, tokens: float
) -> float:
    """µs per call of a linear layer (in_features -> out_features) at `bits` on `tokens` rows.

    Linear in the token count between measured points and past the ends (from the two nearest
    points), never below 0: a kernel's time grows about linearly with rows once they fill its
    tiles. 0 bits is a pruned layer: no kernel, 0 µs.
    """
    if bits == 0:
        return 0.0
    if bits not in KERNELS:
        raise FrugalError(
            f"no kernel for a {bits}-bit linear layer; widths with a kernel: "
            f"{', '.join(str(b) for b in KERNELS)} (and 0 = pruned)"
        )
    if not math.isfinite(tokens) or tokens < 0:
        raise FrugalError(f"token count must be a finite number >= 0, got {tokens!r}")
    times = table.entries.get((bits, in_features, out_features))
    if times is None:
        measured = sorted({(k, n) for (b, k, n) in table.entries if b == bits})
        raise FrugalError(
            f"the latency table has no {KERNELS[bits]} ({bits}-bit) time for a "
            f"{in_features} x {out_features} linear layer (in x out features; it holds "
            f"{', '.join(f'{k} x {n}' for k, n in measured) or 'no shape'} at {bits} bits); "
            f"run `{MEASURE_COMMAND}` to measure the model's shapes"
        )
    points = table.tokens
    if len(points) == 1:
        return max(0.0, float(times[0]))
    if tokens <= points[0]:
        low, high = 0, 1
    elif tokens >= points[-1]:
        low, high = len(points) - 2, len(points) - 1
    else:
        high = next(i for i, point in enumerate(points) if point >= tokens)
        low = high - 1
    slope = (times[high] - times[low]) / (points[high] - points[low])
    return max(0.0, float(times[low] + slope * (tokens - points[low])))


def save_table(table: LatencyTable, path: str | Path) -> Path:
    """Write `table` as JSON (atomically: a reader sees the old table or the new one)."""
    payload = {
        "machine": table.machine,
        "ort_version": table.ort_version,
        "threads": table.threads,
        "block_size": table.block_size,
        "tokens": list(table.tokens),
        "entries": [
            {
                "bits": width,
                "kernel": KERNELS.get(width, ""),
                "in_features": in_features,
                "out_features": out_features,
                "latency_us": list(times),
            }
            for (width, in_features, out_features), times in sorted(
                table.entries.items(), key=lambda item: (-item[0][0], item[0][1], item[0][2])
            )
        ],
    }
    return write_json(payload, path)


def load_table(path: str | Path) -> LatencyTable:
    """Read a table written by `save_table`; anything missing or mistyped is a FrugalError naming
    the file and the key."""
    path = Path(path)
    fix = f"run `{MEASURE_COMMAND}` to write it again"
    if not path.is_file():
        raise FrugalError(f"{path}: no latency table; {fix}")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as error:
        raise FrugalError(f"{path}: not valid JSON ({error}); {fix}") from None

    def bad(key: str, expected: str) -> FrugalError:
        return FrugalError(f"{path}: key {key!r} {expected}; {fix}")

    if not isinstance(payload, dict):
        raise FrugalError(f"{path}: expected a JSON object of a latency table; {fix}")
    for key in _TABLE_KEYS:
        if key not in payload:
            raise bad(key, "is missing")
    for key in ("machine", "ort_version"):
        if not isinstance(payload[key], str):
            raise bad(key, "must be a string")
    for key in ("threads", "block_size"):
        if not _is_count(payload[key]):
            raise bad(key, "must be a positive integer")
    tokens = payload["tokens"]
    if (
        not isinstance(tokens, list)
        or not tokens
        or not all(_is_count(t) for t in tokens)
        or tokens != sorted(set(tokens))
    ):
        raise bad("tokens", "must be a non-empty increasing list of positive integers")
    if not isinstance(payload["entries"], list):
        raise bad("entries", "must be a list")
    entries: dict[tuple[int, int, int], list[float]] = {}
    for index, entry in enumerate(payload["entries"]):
        where = f"entries[{index}]"
        if not isinstance(entry, dict):
            raise bad(where, "must be an object")
        for key in _ENTRY_KEYS:
            if key not in entry:
                raise bad(f"{where}.{key}", "is missing")
        if entry["bits"] not in KERNELS or isinstance(entry["bits"], bool):
            raise bad(f"{where}.bits", f"must be one of {', '.join(map(str, KERNELS))}")
        for key in ("in_features", "out_features"):
            if not _is_count(entry[key]):
                raise bad(f"{where}.{key}", "must be a positive integer")
        times = entry["latency_us"]
        if (
            not isinstance(times, list)
            or len(times) != len(tokens)
            or not all(_is_number(t) and t >= 0 for t in times)
        ):
            raise bad(
                f"{where}.latency_us",
                f"must be a list of {len(tokens)} numbers >= 0 (one per token count)",
            )
        entries[(entry["bits"], entry["in_features"], entry["out_features"])] = [
            float(t) for t in times
        ]
    return LatencyTable(
        machine=payload["machine"],
        ort_version=payload["ort_version"],
        threads=payload["threads"],
        block_size=payload["block_size"],
        tokens=list(tokens),
        entries=entries,
    )


def usable_table(
    path: str | Path, threads: int, block_size: int
) -> tuple[LatencyTable | None, str | None]:
    """The table at `path` and a warning, None when it was measured as it would run here.

    Never raises for the table's sake: a plan made with a stale table (or none) is still a
    plan, so the caller decides. No table, or one that cannot be read: (None, why). A table
    from another CPU, onnxruntime version, thread count or block size: (table, what differs).
    """
    path = Path(path)
    if not path.is_file():
        return None, f"{path}: no latency table; run `{MEASURE_COMMAND}` to measure this machine"
    try:
        table = load_table(path)
    except FrugalError as error:
        return None, str(error)
    here = {
        "machine": machine_key(),
        "onnxruntime": ort.__version__,
        "threads": threads,
        "block_size": block_size,
    }
    measured = {
        "machine": table.machine,
        "onnxruntime": table.ort_version,
        "threads": table.threads,
        "block_size": table.block_size,
    }
    differences = [
        f"{key} {measured[key]!r} (here: {here[key]!r})"
        for key in here
        if measured[key] != here[key]
    ]
    if not differences:
        return table, None
    return table, (
        f"{path}: measured with {'; '.join(differences)}, so its latencies may not hold here; "
        f"run `{MEASURE_COMMAND}` on this machine to refresh it"
    )


def _kernel_graph(
    bits: int, in_features: int, out_features: int, block_size: int, rng: np.random.Generator
) -> onnx.ModelProto:
    """One node computing A [1, M, K] x W -> [1, M, N] with the kernel of `bits` and random W,
    lowered exactly as `frugal.model.export` lowers a model's linear layer to that width."""
    if bits not in KERNELS:
        raise FrugalError(f"no kernel for {bits} bits; widths with a kernel: {list(KERNELS)}")
    weight = torch.from_numpy(rng.standard_normal((out_features, in_features), dtype=np.float32))
    node = helper.make_node("MatMul", ["A", "W"], ["Y"])
    if bits == 32:
        nodes, weights = [node], [numpy_helper.from_array(weight.numpy().T.copy(), "W")]
    else:
        nodes, weights = lower_matmul("W", weight, bits, node, block_size, NBITS_ACCURACY_LEVEL)
    graph = helper.make_graph(
        nodes,
        f"{KERNELS[bits]}_{in_features}x{out_features}",
        [helper.make_tensor_value_info("A", TensorProto.FLOAT, [1, "tokens", in_features])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, "tokens", out_features])],
        weights,
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)]
    )


def _bound(
    session: ort.InferenceSession,
    rng: np.random.Generator,
    tokens: int,
    in_features: int,
    out_features: int,
) -> tuple[ort.IOBinding, list[ort.OrtValue]]:
    """Input and output bound once, so a timed call allocates and converts nothing. The
    binding points into the OrtValues' numpy buffers: keep the OrtValues while it is used."""
    values = [
        ort.OrtValue.ortvalue_from_numpy(
            rng.standard_normal((1, tokens, in_features), dtype=np.float32)
        ),
        ort.OrtValue.ortvalue_from_numpy(np.empty((1, tokens, out_features), dtype=np.float32)),
    ]
    binding = session.io_binding()
    binding.bind_ortvalue_input("A", values[0])
    binding.bind_ortvalue_output("Y", values[1])
    return binding, values


def _check_measure_args(
    shapes: Sequence[Shape],
    tokens: Sequence[int],
    bits: Sequence[int],
    block_size: int,
    threads: int,
    rounds: int,
    calls: int,
) -> None:
    if not shapes or any(k < 1 or n < 1 for k, n in shapes):
        raise FrugalError(f"measure_table: shapes must be (in, out) pairs >= 1, got {shapes}")
    if not tokens or tokens[0] < 1:
        raise FrugalError(f"measure_table: token counts must be >= 1, got {tokens}")
    unknown = [b for b in bits if b not in KERNELS]
    if not bits or unknown:
        raise FrugalError(
            f"measure_table: bits {unknown or bits} have no kernel; choose from {list(KERNELS)}"
        )
    if block_size < 16 or block_size & (block_size - 1):
        raise FrugalError(
            f"measure_table: block_size must be a power of 2 >= 16 (MatMulNBits), got {block_size}"
        )
    for name, value in (("threads", threads), ("rounds", rounds), ("calls", calls)):
        if value < 1:
            raise FrugalError(f"measure_table: {name} must be >= 1, got {value}")


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
