"""Prefect flows: one per stage plus the end-to-end pipeline. Wiring only."""
