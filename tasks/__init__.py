"""Prefect tasks: read inputs, call the `frugal` core, write outputs, log to MLflow. Every
module here defines `@task`s; what they run on (tracking, the task runner, the Prefect server)
is in `orchestration`.

Importing this package sets the project's environment before any task module imports Prefect
or MLflow (see `orchestration.env`)."""

from orchestration.env import configure_environment

configure_environment()
