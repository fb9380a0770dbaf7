"""What the stages run on, not stages themselves: the process environment (`env`), the shared
Prefect API server (`prefect_server`), the task runner (`runner`), MLflow tracking
(`tracking`) and the logged model's code (`pyfunc_model`), the repository lock (`repo_lock`)
and progress bars (`progress`). The core (`frugal`) never imports it; Prefect tasks (`tasks`)
and flows (`flows`) do.

Importing this package sets the project's environment (see `orchestration.env`) before any
module imports Prefect or MLflow. It imports neither itself: `prefect_server.ensure_api` must
run before Prefect reads its settings."""

from orchestration.env import configure_environment

configure_environment()
