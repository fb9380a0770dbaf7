"""One local Prefect API server per pipeline run, shared by every stage process.

`dvc repro` runs each stage as its own process. Left alone, each would start Prefect's
temporary server (~10 s, and under CPU load it can miss Prefect's start-up deadline). Instead
the first stage starts this server, detached, over the project's Prefect database
(`$PREFECT_HOME/prefect.db`, the one `make prefect-ui` shows); later stages find it through
`$PREFECT_HOME/server.json` and connect in milliseconds. Each stage process registers its pid
under `$PREFECT_HOME/server-clients/`; the server exits once no registered process has been
alive for `IDLE_EXIT_S`, so a run needs no manual start or stop and leaves nothing behind.

A user's own server (`PREFECT_API_URL` set) is used as it is, never started here.

This module imports no Prefect at import time: `ensure_api` must run before Prefect reads its
settings. `python -m orchestration.prefect_server` is the server process itself.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from frugal.errors import FrugalError

IDLE_EXIT_S = 60.0  # the server outlives its last client by this long (gaps between stages)
START_TIMEOUT_S = 120.0  # a busy 2-core machine can take tens of seconds to start it


class PrefectUnreachable(FrugalError):
    """The Prefect API cannot be reached or started."""


def _home() -> Path:
    home = Path(os.environ["PREFECT_HOME"])  # set by orchestration.env.configure_environment
    home.mkdir(parents=True, exist_ok=True)
    return home


@contextmanager
def _locked(home: Path) -> Iterator[None]:
    with open(home / "server.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _healthy(api_url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError):
        return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _live_clients(home: Path) -> list[int]:
    clients = home / "server-clients"
    alive = []
    for entry in clients.glob("*") if clients.is_dir() else []:
        if entry.name.isdigit() and _alive(int(entry.name)):
            alive.append(int(entry.name))
        else:
            entry.unlink(missing_ok=True)
    return alive


def _register(home: Path) -> None:
    clients = home / "server-clients"
    clients.mkdir(exist_ok=True)
    (clients / str(os.getpid())).touch()


def ensure_api() -> str:
    """The Prefect API URL this process should use, exported as `PREFECT_API_URL` (for this
    process's Prefect, when imported after this call, and for worker processes it starts).

    `PREFECT_API_URL` set by the user: checked, used. Otherwise the project's shared server is
    reused, or started and waited for. Raises `PrefectUnreachable` with one clear sentence."""
    user_url = os.environ.get("PREFECT_API_URL")
    if user_url:
        if not _healthy(user_url, timeout=10.0):
            raise PrefectUnreachable(
                f"PREFECT_API_URL={user_url}: no Prefect API answers there; start that server "
                "(`make prefect-ui`), or unset PREFECT_API_URL to let the pipeline start its own"
            )
        return user_url
    home = _home()
    state = home / "server.json"
    with _locked(home):
        _register(home)  # before the health check: a server never exits under a registered pid
        if state.exists():
            url = json.loads(state.read_text())["api_url"]
            if _healthy(url):
                os.environ["PREFECT_API_URL"] = url
                return url
            state.unlink()
        url = _start(home)
    os.environ["PREFECT_API_URL"] = url
    return url


def _start(home: Path) -> str:
    log = home / "server.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "orchestration.prefect_server",
                "--idle-exit-s",
                str(IDLE_EXIT_S),
            ],
            cwd=Path(__file__).resolve().parents[1],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # not killed with the stage; exits on its own when idle
        )
    state = home / "server.json"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise PrefectUnreachable(
                f"the local Prefect server exited with code {process.returncode} while "
                f"starting; see {log}"
            )
        if state.exists():
            url = json.loads(state.read_text())["api_url"]
            if _healthy(url):
                return url
        time.sleep(0.2)
    process.kill()
    raise PrefectUnreachable(
        f"the local Prefect server did not answer within {START_TIMEOUT_S:.0f} s (see {log}); "
        "the machine may be overloaded: retry when it is less busy"
    )


def serve(idle_exit_s: float) -> None:
    """The server process: Prefect's API (no UI, no background services) on a free port of
    127.0.0.1, exiting once no client has been alive for `idle_exit_s`."""
    import threading

    import uvicorn

    os.environ.setdefault("PREFECT_UI_ENABLED", "0")
    from prefect.server.api.server import create_app

    home = _home()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/api"
    server = uvicorn.Server(
        uvicorn.Config(create_app(ephemeral=True, final=True), log_level="error", lifespan="on")
    )

    def exit_when_idle() -> None:
        while not server.started:
            time.sleep(0.1)
        state = home / "server.json"
        tmp = state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"api_url": url, "pid": os.getpid()}))
        tmp.replace(state)
        idle_since = time.monotonic()
        while True:
            time.sleep(1.0)
            if _live_clients(home):
                idle_since = time.monotonic()
            elif time.monotonic() - idle_since > idle_exit_s:
                with _locked(home):
                    if _live_clients(home):  # registered while we waited for the lock
                        continue
                    if state.exists() and json.loads(state.read_text())["pid"] == os.getpid():
                        state.unlink()
                server.should_exit = True
                return

    threading.Thread(target=exit_when_idle, daemon=True).start()
    server.run(sockets=[sock])


if __name__ == "__main__":
    import argparse

    from orchestration.env import configure_environment

    parser = argparse.ArgumentParser(description="The pipeline's shared Prefect API server.")
    parser.add_argument("--idle-exit-s", type=float, default=IDLE_EXIT_S)
    configure_environment()
    serve(parser.parse_args().idle_exit_s)
