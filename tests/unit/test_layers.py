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
    "frugal/modeling.py": "a saved model's frugal.json",
    "frugal/runtime.py": "a served model's frugal.json and compression.json",
    "frugal/compressed.py": "a compressed model's frugal.json and compression.json",
    "frugal/latency.py": "the measured kernel latency table",
    "frugal/annotation.py": "a Label Studio export",
    "frugal/readers.py": "a user's JSON Lines data",
    "frugal/measure.py": "the measuring subprocess's answer",
    "frugal/conformal.py": "the packaged forecast calibration",
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
