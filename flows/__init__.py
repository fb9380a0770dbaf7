"""Prefect flows: one per stage plus the end-to-end pipeline. Wiring only.

Importing this package sets the project's environment first (telemetry off, PREFECT_HOME
inside the project): Prefect fixes its settings when first imported, and every entry point
(`python -m flows.<stage>`) imports this package before its flow module imports Prefect."""

from orchestration.env import configure_environment

configure_environment()
