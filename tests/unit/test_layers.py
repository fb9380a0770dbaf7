"""The core is plain Python: no module under frugal/ imports Prefect, MLflow, DVC or the
packages that wire them (orchestration, tasks, flows), at the top or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("prefect", "prefect_dask", "mlflow", "dvc", "orchestration", "tasks", "flows")


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
