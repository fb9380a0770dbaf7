"""Frugal: annotation, accuracy and energy budgets for small on-device NLU models.

The `frugal` package is the pure core: typed stage logic with no Prefect or MLflow imports.
Orchestration lives in `orchestration/` (what stages run on), `tasks/` and `flows/`.
"""

__version__ = "0.1.0"
