"""Provenance of a benchmark result: the commit, the params hash and the machine it was measured on.

A benchmark script stamps what it writes, so every figure in benchmarks/README.md names the code
and the parameters that produced it:

    from stamp import provenance          # benchmarks/ is on sys.path when a script runs
    result["provenance"] = provenance()

Results committed before provenance existed are stamped after the fact, never re-measured:

    python benchmarks/stamp.py --stamp-existing

adds `"provenance": {"commit": <the commit that last changed the file>, "params_md5": <md5 of
params.yaml at that commit>, "machine": ..., "stamped": true}` to every committed
benchmarks/results/*.json that lacks the key, and leaves every other byte of the file as it was.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
# Every committed result so far was measured on this session's machine; /proc/cpuinfo there
# names only "AMD EPYC", the family is from the machine's description.
STAMPED_MACHINE = "AMD EPYC Zen 4, 2 vCPU (stamped later, not re-measured)"


def _git(*args: str, root: Path = ROOT) -> str:
    done = subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=False, encoding="utf-8"
    )
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {root}: {done.stderr.strip()}")
    return done.stdout


def _git_bytes(*args: str, root: Path = ROOT) -> bytes:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed in {root}: {done.stderr.decode().strip()}")
    return done.stdout


def machine() -> str:
    """CPU model, the CPUs this process may use, and the OS, e.g. 'AMD EPYC, 2 CPUs, Linux x86_64'."""
    model = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{model}, {cpus} CPUs, {platform.system()} {platform.machine()}"


def provenance(root: Path = ROOT) -> dict[str, object]:
    """Where a result measured now comes from: HEAD, whether tracked code differs from it,
    the md5 of params.yaml as it is now, and this machine."""
    commit = _git("rev-parse", "HEAD", root=root).strip()
    # Results being written are not the code that wrote them: only the rest counts as dirty.
    changed = _git("status", "--porcelain", "--untracked-files=no", root=root).splitlines()
    dirty = any(not line[3:].startswith("benchmarks/results/") for line in changed)
    params_md5 = hashlib.md5((root / "params.yaml").read_bytes()).hexdigest()
    return {
        "commit": commit,
        "dirty": dirty,
        "params_md5": params_md5,
        "machine": machine(),
        "stamped": False,
    }


def stamped_provenance(path: Path, root: Path = ROOT) -> dict[str, object] | None:
    """Provenance of a result already committed: the commit that last changed it and params.yaml
    there. None when git has no commit of the file (a new result: its benchmark stamps it)."""
    relative = path.resolve().relative_to(root.resolve()).as_posix()
    commit = _git("log", "-1", "--format=%H", "--", relative, root=root).strip()
    if not commit:
        return None
    params = _git_bytes("show", f"{commit}:params.yaml", root=root)
    return {
        "commit": commit,
        "params_md5": hashlib.md5(params).hexdigest(),
        "machine": STAMPED_MACHINE,
        "stamped": True,
    }


def with_provenance(text: str, stamp: dict[str, object]) -> str:
    """`text` (a JSON object) with a last top-level key "provenance", every other byte kept:
    inserted before the closing brace, at the file's own indentation."""
    body = text.rstrip()
    if not body.endswith("}"):
        raise ValueError("the top level is not a JSON object")
    lines = body.splitlines()
    if len(lines) == 1:  # a one-line file stays one line
        head = body[:-1].rstrip()
        separator = "" if head.endswith("{") else ", "
        stamped = f'{head}{separator}"provenance": {json.dumps(stamp, ensure_ascii=False)}}}'
        return stamped + text[len(text.rstrip()) :]
    inner = next((line for line in lines[1:] if line.strip()), "")
    indent = len(inner) - len(inner.lstrip(" ")) or 2
    block = json.dumps(stamp, indent=indent, ensure_ascii=False)
    block = textwrap.indent(block, " " * indent)[indent:]
    head = body[:-1].rstrip()
    separator = "" if head.endswith("{") else ","
    stamped = f'{head}{separator}\n{" " * indent}"provenance": {block}\n}}'
    return stamped + text[len(text.rstrip()) :]


def stamp_existing(results: Path = RESULTS, root: Path = ROOT) -> list[str]:
    """Stamp every committed results JSON that lacks "provenance"; one line per file, what was done."""
    report = []
    for path in sorted(results.glob("*.json")):
        name = path.relative_to(root).as_posix()
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
        if not isinstance(data, dict):
            report.append(
                f"{name}: skipped, its top level is a {type(data).__name__}, not an object"
            )
            continue
        if "provenance" in data:
            report.append(f"{name}: has provenance")
            continue
        stamp = stamped_provenance(path, root)
        if stamp is None:
            report.append(
                f"{name}: skipped, never committed (its benchmark should call provenance())"
            )
            continue
        new_text = with_provenance(text, stamp)
        if json.loads(new_text) != {**data, "provenance": stamp}:
            raise RuntimeError(f"{name}: stamping would change its content; left as it was")
        path.write_text(new_text, encoding="utf-8")
        report.append(f"{name}: stamped with {stamp['commit'][:7]}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--stamp-existing",
        action="store_true",
        help="stamp committed benchmarks/results/*.json that lack provenance",
    )
    args = parser.parse_args(argv)
    if args.stamp_existing:
        print("\n".join(stamp_existing()))
    else:
        print(json.dumps(provenance(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
