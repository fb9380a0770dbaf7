"""The core is plain Python: no module under frugal/ imports Prefect, MLflow, DVC or the
packages that wire them (orchestration, flows), at the top or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("prefect", "prefect_dask", "mlflow", "dvc", "orchestration", "flows")


def _imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def core_imports_of_wiring() -> list[str]:
    return sorted(
        f"{path.relative_to(ROOT)}: {name}"
        for path in (ROOT / "frugal").rglob("*.py")
        for name in _imported(path)
        if name.split(".")[0] in FORBIDDEN
    )


def test_the_core_imports_no_orchestration():
    found = core_imports_of_wiring()
    assert not found, "frugal/ must stay free of orchestration:\n" + "\n".join(found)


def test_the_check_sees_an_import_inside_a_function(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    import mlflow.tracking\n    from prefect import task\n")
    assert _imported(module) == {"mlflow.tracking", "prefect"}


# Modules that parse JSON that is not a stage's report, and what they parse (reports are read
# by `frugal.catalog`, through their schemas).
READS_OTHER_JSON = {
    "frugal/model/modeling.py": "a saved model's frugal.json",
    "frugal/model/runtime.py": "a served model's frugal.json and compression.json",
    "frugal/compress/packed.py": "a compressed model's frugal.json and compression.json",
    "frugal/energy/latency.py": "the measured kernel latency table",
    "frugal/labels/annotation.py": "a Label Studio export",
    "frugal/data/readers.py": "a user's JSON Lines data",
    "frugal/energy/measure.py": "the measuring subprocess's answer",
    "frugal/forecast/conformal.py": "the packaged forecast calibration",
    "frugal/cli.py": "a model's config.json",
    "orchestration/prefect_server.py": "the Prefect server's state file",
    "orchestration/team.py": "the team stack's stack.json",
}


def _parses_json(path: Path) -> bool:
    return any(
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr in ("load", "loads")
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "json"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
    )


def test_stages_read_reports_only_through_the_catalog():
    # a consumer that parses a report itself indexes it by string keys: a renamed key then
    # breaks it at run time, stages later; through frugal.catalog it is a typed read
    parsing = {
        path.relative_to(ROOT).as_posix()
        for package in ("frugal", "flows", "orchestration")
        for path in (ROOT / package).rglob("*.py")
        if _parses_json(path)
    }
    unexpected = sorted(parsing - set(READS_OTHER_JSON))
    assert not unexpected, (
        "read reports through frugal.catalog (or list what else the module parses): "
        + ", ".join(unexpected)
    )
    assert not set(READS_OTHER_JSON) - parsing, "stale entries in READS_OTHER_JSON"


# The wiring holds no stage logic: the adapter runs any row of the table, the flows read the
# table. A function of theirs that grows past this is logic to move into the stage's module.
WIRING = ("flows", "orchestration/adapter.py")
MAX_WIRING_LINES = 40


def _functions(path: Path) -> list[tuple[str, int]]:
    return [
        (node.name, node.end_lineno - node.lineno + 1)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno
    ]


def test_no_wiring_function_holds_stage_logic():
    files = [
        p
        for where in WIRING
        for p in ((ROOT / where).rglob("*.py") if (ROOT / where).is_dir() else [ROOT / where])
    ]
    long = [
        f"{path.relative_to(ROOT)}: {name} ({lines} lines)"
        for path in files
        for name, lines in _functions(path)
        if lines > MAX_WIRING_LINES
    ]
    assert not long, f"over {MAX_WIRING_LINES} lines:\n" + "\n".join(long)
    assert not (ROOT / "tasks").exists(), "a stage is its module and its row: no tasks/ package"


def test_every_row_of_the_table_is_a_core_module_with_run():
    from frugal.stages.table import STAGES

    for row in STAGES:
        path = ROOT.joinpath(*row.module.split(".")).with_suffix(".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        runs = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "run"]
        assert len(runs) == 1, row.name
        assert [a.arg for a in runs[0].args.args] == ["params", "ctx"], row.name


# The core's concerns, each a subpackage; the base modules beside them import none of them.
BASE = ("config", "errors", "files", "hashing", "catalog", "registry")
TOP = ("cli", "stages")  # what puts the concerns together: it may import any


def _package_imports() -> dict[str, set[str]]:
    """{concern: the other concerns its modules import} over frugal/'s subpackages."""
    graph: dict[str, set[str]] = {}
    for path in (ROOT / "frugal").rglob("*.py"):
        parts = path.relative_to(ROOT / "frugal").with_suffix("").parts
        if len(parts) == 1 and parts[0] not in BASE + ("__init__",) + TOP:
            raise AssertionError(f"frugal/{parts[0]}.py: a module outside any concern")
        here = parts[0]
        for name in _imported(path):
            bits = name.split(".")
            if bits[0] == "frugal" and len(bits) > 1 and bits[1] != here:
                graph.setdefault(here, set()).add(bits[1])
    return graph


def test_the_core_is_grouped_by_concern_without_cycles():
    graph = _package_imports()
    for base in BASE:
        assert not graph.get(base, set()) - set(BASE), f"{base} imports a concern"
    concerns = {c: deps - set(BASE) - set(TOP) for c, deps in graph.items() if c not in TOP}
    for concern, deps in concerns.items():
        assert not deps & set(TOP), f"{concern} imports {deps & set(TOP)}"

    def reaches(start: str, goal: str, seen: set[str]) -> bool:
        return any(
            d == goal or (d not in seen and reaches(d, goal, seen | {d}))
            for d in concerns.get(start, ())
        )

    cycles = sorted(c for c in concerns if reaches(c, c, {c}))
    assert not cycles, f"concerns importing each other in a cycle: {cycles}"


def test_no_module_imports_itself_back():
    # the one module-level cycle there was (modeling <-> export) stays broken
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts): _imported(p)
        for p in (ROOT / "frugal").rglob("*.py")
    }
    pairs = sorted(
        f"{a} <-> {b}"
        for a, deps in modules.items()
        for b in deps
        if b in modules and a in modules[b] and a < b
    )
    assert not pairs, pairs
