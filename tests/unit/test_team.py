"""The team stack's switches are params, not code: configs/team.yaml (what the README shows a
clone setting) is exactly what `make team-up` starts at its default ports, and it validates.
(The stack itself runs in tests/e2e/test_team_stack.py.)"""

from __future__ import annotations

import yaml

from frugal.config import load_params
from orchestration.team import Stack, describe
from tests.conftest import ROOT


def test_configs_team_yaml_points_at_the_default_stack_and_validates():
    overrides = yaml.safe_load((ROOT / "configs/team.yaml").read_text())["overrides"]
    stack = Stack("/srv/team")
    assert overrides == stack.params()
    params = load_params(ROOT / "params.yaml", overrides)
    assert params.orchestration.task_runner == "dask"
    assert params.tracking.tracking_uri == stack.tracking_uri == "http://127.0.0.1:5050"
    # what `make team-up` prints for a clone: the same params, Prefect's URL and the remote
    said = describe(stack)
    assert "export PREFECT_API_URL=http://127.0.0.1:4242/api" in said
    assert "dvc remote add --local -d team /srv/team/dvc-remote" in said
    assert "dask_address: tcp://127.0.0.1:8786" in said
