"""dvc.yaml is generated whole from the table of stages (`python -m orchestration.dvc_yaml`),
and it is current: every repo module a stage's command imports, directly or through other repo
modules (any import statement, also inside functions), is a dep of that stage, and no code dep
is one it does not import. Otherwise a change to that module leaves the stage's outputs stale,
or reruns it for nothing."""

from __future__ import annotations

import dataclasses
import re

import yaml

from frugal.stages import table
from orchestration import dvc_yaml
from orchestration.dvc_yaml import DVC_YAML, ROOT, code_deps, imported_closure, module_file


def test_dvc_yaml_is_what_the_table_generates() -> None:
    assert DVC_YAML.read_text(encoding="utf-8") == dvc_yaml.render(), (
        "dvc.yaml is stale: run `python -m orchestration.dvc_yaml`"
    )


def test_every_stage_lists_exactly_the_modules_its_command_imports() -> None:
    stages = yaml.safe_load(DVC_YAML.read_text(encoding="utf-8"))["stages"]
    assert list(stages) == list(table.NAMES)
    for row in table.STAGES:
        listed = {d for d in stages[row.name]["deps"] if d.endswith(".py")}
        main = module_file("flows.__main__")
        assert main is not None and stages[row.name]["cmd"] == f"python -m flows {row.name}"
        closure = imported_closure(main, module_file(row.module)) - {dvc_yaml.TABLE}
        assert listed == closure, row.name


def test_the_check_finds_a_real_hole() -> None:
    # train's stage imports frugal.model.training: the closure the check relies on must contain it
    closure = set(code_deps(table.stage("train")))
    assert {"flows/__init__.py", "flows/__main__.py", "frugal/model/training.py"} <= closure
    assert "frugal/stages/train.py" in closure and "frugal/stages/evaluate.py" not in closure
    assert not any(m.startswith("tests/") for m in closure)


def test_an_import_inside_a_function_counts() -> None:
    module = ROOT / "orchestration" / "adapter.py"  # imports the Tracker inside a function
    assert "orchestration/tracking.py" in imported_closure(module)


def test_the_table_is_no_dep_because_a_row_change_changes_its_stage_entry(monkeypatch) -> None:
    # the table is read by every stage's command, yet listed by none: what a row says (its
    # module, data deps, params, outs) is its stage's entry, so DVC sees a row's change there
    before = yaml.safe_load(dvc_yaml.render())["stages"]
    rows = list(table.STAGES)
    i = [r.name for r in rows].index("forecast")
    rows[i] = dataclasses.replace(rows[i], params=(*rows[i].params, "learning_curve.order"))
    monkeypatch.setattr(dvc_yaml, "STAGES", tuple(rows))
    after = yaml.safe_load(dvc_yaml.render())["stages"]
    changed = [name for name in before if before[name] != after[name]]
    assert changed == ["forecast"]
    assert after["forecast"]["params"][-1] == "learning_curve.order"


def test_every_param_and_path_a_row_names_is_in_params_yaml() -> None:
    # a renamed section left in a row fails here, not in `dvc repro` stages later
    raw = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
    variables = {"source_fingerprint"}

    def resolves(dotted: str) -> bool:
        node = raw
        for key in dotted.split("."):
            if not isinstance(node, dict) or key not in node:
                return False
            node = node[key]
        return True

    missing = []
    for row in table.STAGES:
        entries = [e if isinstance(e, str) else e[0] for e in (*row.outs, *row.metrics, *row.plots)]
        for text in (*row.deps, *entries):
            for name in re.findall(r"\$\{([^}]+)\}", text):
                if name not in variables and not resolves(name):
                    missing.append(f"{row.name}: ${{{name}}}")
        missing += [f"{row.name}: params {p}" for p in row.params if not resolves(p)]
    assert not missing, "not in params.yaml:\n" + "\n".join(missing)
