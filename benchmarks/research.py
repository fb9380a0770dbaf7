"""A research configuration of the pipeline: params.yaml with `configs/<name>.yaml`'s overrides,
run by the same stages (`dvc repro <until>`) in a clone of this repository at HEAD, so the
workspace's dvc.lock and outputs stay the default run's. The clone reads the workspace's DVC
cache: the stages the overrides leave unchanged (data, labels, train's model) are checked out,
not recomputed. The reports named in the config are copied into one results file, next to the
default run's figures they are compared with.

    python benchmarks/research.py compress      # every compression variant (configs/compress.yaml)

`make bench-compress` runs it. Needs a default run first (`make run`): the clone checks its
outputs out of the cache. Run with nothing else busy on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stamp import provenance  # noqa: E402  (benchmarks/ is sys.path[0])

CONFIGS = ROOT / "configs"
RESULTS = ROOT / "benchmarks" / "results"


def deep_update(base: dict, override: dict) -> dict:
    """`base` with `override`'s keys set, section by section (a list replaces a list)."""
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            deep_update(base[key], value)
        else:
            base[key] = value
    return base


def _env(repo: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{ROOT / '.venv' / 'bin'}:{env['PATH']}"
    env["PREFECT_HOME"] = str(repo / ".prefect")
    for key in ("PREFECT_API_URL", "MLFLOW_TRACKING_URI"):
        env.pop(key, None)
    return env


def _run(cmd: list[str], repo: Path) -> None:
    subprocess.run(cmd, cwd=repo, env=_env(repo), check=True)


def clone_with_overrides(repo: Path, overrides: dict) -> None:
    """A clone of HEAD sharing the workspace's DVC cache, with `overrides` in its params.yaml."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    _run(["dvc", "cache", "dir", "--local", str(ROOT / ".dvc" / "cache")], repo)
    _run(["dvc", "checkout", "--quiet"], repo)
    params = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))
    text = yaml.safe_dump(deep_update(params, overrides), sort_keys=False, allow_unicode=True)
    (repo / "params.yaml").write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", help="a file configs/<config>.yaml")
    parser.add_argument("--workdir", type=Path, default=ROOT / ".bench")
    args = parser.parse_args()
    config = yaml.safe_load((CONFIGS / f"{args.config}.yaml").read_text(encoding="utf-8"))
    repo = args.workdir / args.config
    if repo.exists():
        raise SystemExit(f"{repo} exists (an earlier run's clone): remove it first")
    stamp = provenance()  # HEAD, as the clone is
    clone_with_overrides(repo, config["overrides"])
    started = time.monotonic()
    _run(["dvc", "repro", config["until"]], repo)
    seconds = time.monotonic() - started
    result = {
        "provenance": stamp,
        "config": f"configs/{args.config}.yaml",
        "overrides": config["overrides"],
        "repro_s": round(seconds, 1),
        "research": {
            name: json.loads((repo / path).read_text(encoding="utf-8"))
            for name, path in config["reports"].items()
        },
        "default_run": {  # the workspace's: what HEAD's default params produced
            name: json.loads((ROOT / path).read_text(encoding="utf-8"))
            for name, path in config["reports"].items()
        },
    }
    out = RESULTS / config["results"]
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"{out.relative_to(ROOT)}: {config['until']} in {seconds:.0f} s; clone kept at {repo}")


if __name__ == "__main__":
    main()
