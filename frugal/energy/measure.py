"""Measured CPU figures of a saved model: latency, throughput, peak memory, stored bytes, and
joules from RAPL where the machine exposes it.

Every figure here is *measured* on this machine (the energy model in `frugal.energy.modeled` is
*modeled*). RAPL counters (`/sys/class/powercap/intel-rapl:*`) are read only where readable;
elsewhere the joules are recorded as unavailable with the reason, never estimated.

Models run as they serve: `model.onnx` on ONNX Runtime (`frugal.model.runtime`), tokenizing
included. `measure_in_fresh_process` runs the measurement in a new interpreter that imports no
torch, so that its resident memory is that one model's plus the bare serving runtime's.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from frugal.model.runtime import ONNX_FILE, OnnxClassifier

POWERCAP = Path("/sys/class/powercap")


@dataclass(frozen=True)
class RaplReading:
    """Energy counters of the CPU packages (µJ), or why there are none."""

    counters_uj: dict[str, int]
    max_uj: dict[str, int]
    unavailable: str | None = None


def read_rapl(root: Path = POWERCAP) -> RaplReading:
    """Read every package-level RAPL counter under `root` (its `intel-rapl:N` domains)."""
    if not root.is_dir():
        return RaplReading({}, {}, f"{root} does not exist (no RAPL on this machine or VM)")
    counters, ranges = {}, {}
    for domain in sorted(root.glob("intel-rapl:*")):
        if domain.name.count(":") != 1:  # sub-domains (core, uncore) are inside the package
            continue
        try:
            counters[domain.name] = int((domain / "energy_uj").read_text())
            ranges[domain.name] = int((domain / "max_energy_range_uj").read_text())
        except (OSError, ValueError) as error:
            return RaplReading({}, {}, f"{domain / 'energy_uj'} not readable ({error})")
    if not counters:
        return RaplReading({}, {}, f"no intel-rapl package domains under {root}")
    return RaplReading(counters, ranges)


def rapl_joules(before: RaplReading, after: RaplReading) -> float | None:
    """Joules the packages used between two readings (counter wrap-around handled)."""
    if before.unavailable or after.unavailable:
        return None
    total_uj = 0
    for name, start in before.counters_uj.items():
        end = after.counters_uj[name]
        total_uj += end - start if end >= start else end + before.max_uj[name] - start
    return total_uj / 1e6


def weights_bytes(model_dir: Path) -> int:
    """Bytes of the served graph (model.onnx: weights, scales and ops: what a device ships)."""
    return (Path(model_dir) / ONNX_FILE).stat().st_size


@dataclass(frozen=True)
class CpuMeasurement:
    threads: int
    latency_requests: int  # batch-1 requests timed
    latency_ms_p50: float
    latency_ms_p95: float
    throughput_batch: int
    throughput_texts: int
    throughput_per_s: float  # texts per second at `throughput_batch`
    cpu_ms_per_text: float  # process CPU time per text in the throughput run
    peak_rss_mb: float  # whole process: interpreter + ONNX Runtime + model + activations
    runtime_rss_mb: float  # the same process after importing the runtime, before the model
    weights_bytes: int
    rapl_joules_per_text: float | None
    rapl: str  # "measured: whole CPU package, ..." or "unavailable: <reason>"

    def as_dict(self) -> dict:
        return asdict(self)


def _rss_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak) of this process, MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def measure_cpu(
    model_dir: Path,
    texts: list[str],
    threads: int,
    latency_requests: int,
    throughput_batch: int,
    warmup: int = 5,
) -> CpuMeasurement:
    """Time batch-1 requests (the first `latency_requests` texts) and batched throughput (all
    `texts`), with `threads` intra-op threads."""
    if not texts:
        raise ValueError("no texts to measure on")
    runtime_rss = _rss_mb("VmRSS")
    clf = OnnxClassifier(model_dir, threads)

    for text in texts[:warmup]:
        clf.logits([text])
    latencies = []
    for text in texts[:latency_requests]:
        start = time.perf_counter()
        clf.logits([text])  # tokenizing is part of serving a request
        latencies.append(time.perf_counter() - start)

    rapl_before = read_rapl()
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for start in range(0, len(texts), throughput_batch):
        clf.logits(texts[start : start + throughput_batch])
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    rapl_after = read_rapl()
    joules = rapl_joules(rapl_before, rapl_after)
    rapl = (
        f"unavailable: {rapl_before.unavailable or rapl_after.unavailable}"
        if joules is None
        else "measured: whole CPU package (all processes) during the throughput run"
    )
    ms = np.array(latencies) * 1e3
    return CpuMeasurement(
        threads=threads,
        latency_requests=len(latencies),
        latency_ms_p50=float(np.percentile(ms, 50)),
        latency_ms_p95=float(np.percentile(ms, 95)),
        throughput_batch=throughput_batch,
        throughput_texts=len(texts),
        throughput_per_s=len(texts) / wall,
        cpu_ms_per_text=cpu / len(texts) * 1e3,
        peak_rss_mb=_rss_mb("VmHWM"),
        runtime_rss_mb=runtime_rss,
        weights_bytes=weights_bytes(model_dir),
        rapl_joules_per_text=None if joules is None else joules / len(texts),
        rapl=rapl,
    )


def measure_in_fresh_process(
    model_dir: Path,
    workload: Path,
    threads: int,
    latency_requests: int,
    throughput_batch: int,
) -> CpuMeasurement:
    """`measure_cpu` on the texts of `workload` (a parquet file with a text column) in a new
    interpreter that imports only this module, so its memory is this model's and the runtime's."""
    command = [sys.executable, "-m", "frugal.energy.measure", str(model_dir), str(workload)]
    command += [str(threads), str(latency_requests), str(throughput_batch)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
        raise RuntimeError(f"measuring {model_dir} failed: {lines[-1]}")
    return CpuMeasurement(**json.loads(done.stdout.strip().splitlines()[-1]))


if __name__ == "__main__":
    import pandas as pd

    model, data, *numbers = sys.argv[1:]
    threads, latency, batch = map(int, numbers)
    texts = pd.read_parquet(data, columns=["text"])["text"].astype(str).tolist()
    print(json.dumps(measure_cpu(Path(model), texts, threads, latency, batch).as_dict()))
