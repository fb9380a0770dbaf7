"""One pipeline run per repository at a time. `frugal-pipeline` holds DVC's own repository
lock (`.dvc/tmp/lock`) for its whole run, so it, `dvc repro` and a second deployment run
exclude each other: whichever comes second is refused with a clear message, and the first
finishes with its outputs and MLflow runs intact."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dvc.lock import LockError, make_lock

from frugal.errors import FrugalError


@contextmanager
def repo_lock(root: Path | None = None) -> Iterator[None]:
    """Hold the DVC repository lock of `root` (default: the working directory)."""
    dvc_dir = (root or Path.cwd()) / ".dvc"
    if not dvc_dir.is_dir():
        raise FrugalError(
            f"{dvc_dir.parent}: not a DVC repository; run the pipeline from the repo root"
        )
    (dvc_dir / "tmp").mkdir(exist_ok=True)
    lock = make_lock(str(dvc_dir / "tmp" / "lock"))
    try:
        lock.lock()
    except LockError:
        raise FrugalError(
            f"{dvc_dir / 'tmp' / 'lock'}: another pipeline run (`dvc repro` or frugal-pipeline) "
            "holds this repository; wait for it to finish, then run again"
        ) from None
    try:
        yield
    finally:
        lock.unlock()
