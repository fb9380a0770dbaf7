"""dvc.yaml's data paths are written once, in params.yaml: every stage's deps, outs, metrics and
plots name them by DVC's templating (`${section.key}`), so a path changed in params.yaml is the
path DVC tracks."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT

CODE_DIRS = ("flows/", "frugal/", "orchestration/")  # code deps: test_dvc_deps.py


def _paths(stage: dict) -> list[str]:
    """Every path of a stage; an entry with options (`- reports/x.csv: {cache: false}`) is a
    one-key mapping."""
    entries = [e for kind in ("deps", "outs", "metrics", "plots") for e in stage.get(kind, [])]
    return [next(iter(e)) if isinstance(e, dict) else e for e in entries]


def test_no_stage_writes_a_data_path_as_a_literal():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    literals = [
        f"{name}: {path}"
        for name, stage in stages.items()
        for path in _paths(stage)
        if not path.startswith(("${", *CODE_DIRS))
    ]
    assert not literals, "write these in params.yaml and refer to them as ${section.key}:\n" + (
        "\n".join(literals)
    )


def test_every_reference_names_a_path_in_params_yaml_or_vars():
    text = (ROOT / "dvc.yaml").read_text()
    context = yaml.safe_load((ROOT / "params.yaml").read_text())
    for var in yaml.safe_load(text).get("vars", []):
        context.update(var)
    references = re.findall(r"\$\{\s*([\w.]+)\s*\}", text)
    assert references
    for reference in references:
        value = context
        for key in reference.split("."):
            assert isinstance(value, dict) and key in value, f"${{{reference}}}: no such value"
            value = value[key]
        assert isinstance(value, str), f"${{{reference}}} is {value!r}, not a path"
