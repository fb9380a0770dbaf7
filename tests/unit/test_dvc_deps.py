"""dvc.yaml's code deps are complete: every repo module a stage's command imports, directly or
through other repo modules (any import statement, also inside functions), is a dep of that
stage. Otherwise a change to that module leaves the stage's outputs stale."""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("frugal", "orchestration", "tasks", "flows")


def _module_file(name: str) -> Path | None:
    if name.split(".")[0] not in PACKAGES:
        return None
    base = ROOT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[Path]:
    """Repo files `path` imports (a package's __init__ too, which Python runs first)."""
    found: set[Path] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # a.b.c runs a/__init__, a/b/__init__, a/b/c
                file = _module_file(".".join(parts[:i]))
                if file is not None:
                    found.add(file)
    return found


def imported_closure(entry: Path) -> set[str]:
    seen: set[Path] = set()
    package_init = ROOT / entry.relative_to(ROOT).parts[0] / "__init__.py"  # `-m` runs it first
    todo = [entry, package_init]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imports(path))
    return {p.relative_to(ROOT).as_posix() for p in seen}


def _entry(cmd: str) -> Path:
    module = cmd.split("-m", 1)[1].split()[0]
    file = _module_file(module)
    assert file is not None, f"{cmd}: not a repo module"
    return file


def stage_holes() -> list[tuple[str, str]]:
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    holes = []
    for name, stage in stages.items():
        deps = set(stage.get("deps", []))
        for module in sorted(imported_closure(_entry(stage["cmd"]))):
            if module not in deps:
                holes.append((name, module))
    return holes


def test_every_imported_repo_module_is_a_dep_of_its_stage() -> None:
    holes = stage_holes()
    assert not holes, "dvc.yaml deps omit modules their stage imports:\n" + "\n".join(
        f"  {stage}: {module}" for stage, module in holes
    )


def test_no_code_dep_is_stale() -> None:
    # a code dep nothing imports reruns the stage for nothing, and one that no longer exists
    # stops `dvc repro` ("No such file or directory")
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    stale = [
        (name, dep)
        for name, stage in stages.items()
        for dep in stage.get("deps", [])
        if dep.endswith(".py") and dep not in imported_closure(_entry(stage["cmd"]))
    ]
    assert not stale, "dvc.yaml lists code deps its stage does not import:\n" + "\n".join(
        f"  {stage}: {module}" for stage, module in stale
    )


def test_the_check_finds_a_real_hole() -> None:
    # train's flow imports frugal.training: the closure the check relies on must contain it
    closure = imported_closure(ROOT / "flows" / "train.py")
    assert {"flows/__init__.py", "frugal/training.py", "tasks/train.py"} <= closure
    assert not any(m.startswith("tests/") for m in closure)


def _rewrite_deps(text: str) -> str:
    """dvc.yaml with each stage's code deps replaced by the imported closure (data deps kept,
    in order, before the sorted code deps); comments and everything else untouched."""
    stages = yaml.safe_load(text)["stages"]
    lines, out, stage = text.splitlines(), [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("  ") and not line.startswith("   ") and line.strip().endswith(":"):
            stage = line.strip()[:-1]
        out.append(line)
        i += 1
        if stage in stages and line == "    deps:":
            while i < len(lines) and lines[i].startswith("      - "):
                i += 1
            data = [d for d in stages[stage]["deps"] if not d.endswith(".py")]
            code = sorted(imported_closure(_entry(stages[stage]["cmd"])))
            out.extend(f"      - {dep}" for dep in data + code)
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # python tests/unit/test_dvc_deps.py: write the complete deps lists
    dvc_yaml = ROOT / "dvc.yaml"
    dvc_yaml.write_text(_rewrite_deps(dvc_yaml.read_text()))
    print(f"{dvc_yaml}: {len(stage_holes())} holes left")
