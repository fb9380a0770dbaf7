"""Serve the deployment `frugal-pipeline/default` from this process (Ctrl-C stops it).

prefect server start --host 127.0.0.1          # one terminal
PREFECT_API_URL=http://127.0.0.1:4200/api python -m flows.serve   # another
prefect deployment run 'frugal-pipeline/default' -p overrides='{"train": {"epochs": 3}}'
"""

from flows.pipeline import frugal_pipeline

if __name__ == "__main__":
    frugal_pipeline.serve(name="default")
