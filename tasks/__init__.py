"""Prefect tasks: read inputs, call the `frugal` core, write outputs, log to MLflow.

Importing this package sets the project's environment before any task module imports Prefect
or MLflow (see `tasks.env`)."""

from tasks.env import configure_environment

configure_environment()
