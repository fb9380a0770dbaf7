"""Prefect tasks: read inputs, call the `frugal` core, write outputs, log to MLflow."""
