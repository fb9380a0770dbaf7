"""The words `make run` ends with: what the run bought, forecast, shipped and where to look.

    python -m frugal.report.summary [--params params.yaml]

Reads the reports the stages wrote (no model is loaded); `dvc metrics show` has every figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from frugal import catalog
from frugal.catalog import ContinualReport, ForecastReport, Metrics, SampleReport
from frugal.config import Params, load_params, registered_model_name
from frugal.errors import FrugalError

ANCHOR = "ort_int8"  # ONNX Runtime's one-line quantize_dynamic: what a user would ship instead


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _count(value: float | None) -> str:
    return "more than the pool" if value is None else f"{int(value):,}"


def summary_lines(
    sample: SampleReport,
    forecast: ForecastReport,
    metrics: Metrics,
    continual: ContinualReport | None,
    params: Params,
) -> list[str]:
    """The run in a few lines: labels bought, the forecast, the champion against the base model
    and the int8 anchor (modeled energy, said so), the continual method, the report's path."""
    ev = params.evaluate
    workload = params.profile.workloads[0]
    lines = [
        f"labels bought: {sample.labels:,} ({sample.strategy}, {sample.annotator}); "
        f"proxy dev accuracy {_pct(sample.proxy_accuracy)}",
    ]
    full = forecast.forecasts[-1]
    lines.append(
        f"forecast: {_pct(full.score)} [{_pct(full.low)}, {_pct(full.high)}] with "
        f"{full.n_labels:,} labels (the whole pool)"
    )
    target = forecast.labels_for_target
    if target is not None:
        lines.append(
            f"labels for {_pct(target.target)}: {_count(target.n_labels)} "
            f"[{_count(target.low)}, {_count(target.high)}]"
        )

    def energy(name: str) -> float:
        return metrics[name].modeled_uj_per_utterance[ev.champion_profile][workload]

    base = params.train.output_dir.name
    best = metrics.champion()
    if best is None:
        lines.append(
            f"champion: none within {100 * ev.accuracy_budget:g} pt of {base} on selection"
        )
    else:
        m = metrics[best]
        line = (
            f"champion: {best}: test {_pct(m.accuracy)} ({base} {_pct(metrics[base].accuracy)}), "
            f"selection {_pct(m.selection_accuracy)}; {energy(best):,.0f} µJ per utterance, modeled "
            f"({ev.champion_profile}, {workload})"
        )
        if ANCHOR in metrics and best != ANCHOR:
            saving = 1 - energy(best) / energy(ANCHOR)
            line += (
                f", {saving:.0%} below {ANCHOR} ({energy(ANCHOR):,.0f} µJ, test "
                f"{_pct(metrics[ANCHOR].accuracy)})"
            )
        lines.append(line + f"; serve it: models:/{registered_model_name(params)}@champion")
    if continual is not None:
        lines.append(f"continual: {continual.shipped.method}: {continual.shipped.why}")
    lines.append(f"report: {params.report.output} (every figure: `dvc metrics show`)")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    args = parser.parse_args(argv)
    try:
        params = load_params(args.params)
        read = {
            "sample": catalog.SAMPLE.read(params),
            "forecast": catalog.FORECAST.read(params),
            "metrics": catalog.METRICS.read(params),
        }
        report = params.continual.report
        continual = catalog.CONTINUAL.read(params) if report.is_file() else None
    except FrugalError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(summary_lines(**read, continual=continual, params=params)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
