"""The team stack: the shared servers a team's pipelines run against, each a real server in its
own process on 127.0.0.1, all under one folder (default `.team/`).

- PostgreSQL (Debian's package; apt-get installs it where it is missing): a cluster initialised
  in `<dir>/postgres`, run as the `postgres` user when started by root (PostgreSQL refuses root);
- an MLflow tracking server over it (database `mlflow`), artifacts in `<dir>/artifacts`;
- a Dask scheduler and two Dask workers (each under a nanny, which restarts a killed worker);
- a Prefect server (its database in `<dir>/prefect`);
- a DVC remote: the folder `<dir>/dvc-remote`.

`python -m orchestration.team up|down|status [--dir DIR]` (`make team-up` / `make team-down`).
`up` writes `<dir>/stack.json` (addresses, pids) and prints what a clone sets to use the stack:
`configs/team.yaml`'s params, `PREFECT_API_URL` and the DVC remote. Nothing in the pipeline's
code forks on it: the same stages run, pointed at other addresses."""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from frugal.errors import FrugalError
from orchestration.env import ROOT, TELEMETRY_OFF

START_TIMEOUT_S = 180.0  # MLflow's first start migrates an empty database: tens of seconds here


class StackError(FrugalError):
    """A server of the team stack did not start or stop."""


@dataclass
class Stack:
    """Where the team stack's servers listen and which processes they are."""

    dir: str
    postgres_port: int = 5433
    mlflow_port: int = 5050
    dask_port: int = 8786
    prefect_port: int = 4242
    workers: int = 2
    pids: dict[str, int] = field(default_factory=dict)

    @property
    def store_uri(self) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.postgres_port}/mlflow"

    @property
    def tracking_uri(self) -> str:
        return f"http://127.0.0.1:{self.mlflow_port}"

    @property
    def dask_address(self) -> str:
        return f"tcp://127.0.0.1:{self.dask_port}"

    @property
    def prefect_api_url(self) -> str:
        return f"http://127.0.0.1:{self.prefect_port}/api"

    @property
    def dvc_remote(self) -> Path:
        return Path(self.dir) / "dvc-remote"

    def params(self) -> dict:
        """The params.yaml sections that point a clone at this stack (configs/team.yaml's)."""
        return {
            "orchestration": {"task_runner": "dask", "dask_address": self.dask_address},
            "tracking": {"tracking_uri": self.tracking_uri},
        }


def _state(folder: Path) -> Path:
    return folder / "stack.json"


def load(folder: Path) -> Stack:
    path = _state(folder)
    if not path.is_file():
        raise StackError(f"{path}: no team stack here; start one with `make team-up`")
    return Stack(**json.loads(path.read_text(encoding="utf-8")))


def _save(stack: Stack) -> None:
    path = _state(Path(stack.dir))
    path.write_text(json.dumps(asdict(stack), indent=2) + "\n", encoding="utf-8")


def _environment(**extra: str) -> dict[str, str]:
    env = {**os.environ, **TELEMETRY_OFF, **extra}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    # Dask workers import the project's tasks by module name: from this checkout.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _wait(
    what: str, ready, log: Path, pid: int | None = None, timeout: float = START_TIMEOUT_S
) -> None:
    """Until `ready()`; an error with the log's tail when the process `pid` ends first or
    `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return
        if pid is not None and not _alive(pid):
            break
        time.sleep(0.5)
    tail = log.read_text(errors="replace")[-2000:] if log.is_file() else ""
    raise StackError(f"{what} did not start; its log ({log}):\n{tail}")


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _spawn(stack: Stack, name: str, command: list[str], **env: str) -> int:
    logs = Path(stack.dir) / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with open(logs / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            env=_environment(**env),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `make team-up`; `down` ends its whole group
        )
    stack.pids[name] = process.pid
    return process.pid


# PostgreSQL ---------------------------------------------------------------------------------


def _pg_bin() -> Path:
    """The folder of Debian's PostgreSQL server programs, installed by apt-get if missing."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "postgresql"]
        if subprocess.run(install, env=env, capture_output=True).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
            done = subprocess.run(install, env=env, capture_output=True, text=True)
            if done.returncode != 0:
                raise StackError(
                    "PostgreSQL is not installed and `apt-get install postgresql` failed: "
                    + done.stderr[-500:]
                )
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent


def _as_postgres() -> list[str]:
    """PostgreSQL refuses to run as root: as root, its programs run as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []


def pg_ctl(stack: Stack, action: str) -> subprocess.CompletedProcess:
    """`pg_ctl start|stop|status` on the stack's cluster."""
    data = Path(stack.dir) / "postgres"
    options = f"-p {stack.postgres_port} -c listen_addresses=127.0.0.1 -k {data}"
    command = [str(_pg_bin() / "pg_ctl"), "-D", str(data), "-w", "-t", "60"]
    if action == "start":
        command += ["-l", str(data / "server.log"), "-o", options]
    if action == "stop":
        command += ["-m", "fast"]
    return subprocess.run([*_as_postgres(), *command, action], capture_output=True, text=True)


def _start_postgres(stack: Stack) -> None:
    data = Path(stack.dir) / "postgres"
    if not (data / "PG_VERSION").is_file():
        data.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(data, "postgres", "postgres")
        init = [str(_pg_bin() / "initdb"), "-D", str(data), "-U", "postgres", "-E", "UTF8"]
        done = subprocess.run(
            [*_as_postgres(), *init, "--auth=trust"], capture_output=True, text=True
        )
        if done.returncode != 0:
            raise StackError(
                f"initdb in {data} failed (the folder and every folder above it must be "
                f"reachable by the postgres user): {done.stderr.strip()[-500:]}"
            )
    done = pg_ctl(stack, "start")
    if done.returncode != 0:
        raise StackError(f"PostgreSQL did not start: {(done.stdout + done.stderr)[-800:]}")
    import psycopg2

    connection = psycopg2.connect(
        host="127.0.0.1", port=stack.postgres_port, user="postgres", dbname="postgres"
    )
    connection.autocommit = True  # CREATE DATABASE runs outside a transaction
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = 'mlflow'")
            if cursor.fetchone() is None:
                cursor.execute("CREATE DATABASE mlflow")
    finally:
        connection.close()


# The stack ----------------------------------------------------------------------------------


def start_mlflow(stack: Stack) -> None:
    """The MLflow tracking server over the stack's PostgreSQL (also after a fault's restart)."""
    pid = _spawn(
        stack,
        "mlflow",
        [
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(stack.mlflow_port),
            "--workers",
            "2",
            "--backend-store-uri",
            stack.store_uri,
            "--artifacts-destination",
            str(Path(stack.dir) / "artifacts"),
        ],
    )
    log = Path(stack.dir) / "logs" / "mlflow.log"
    _wait("the MLflow server", lambda: _http_ok(f"{stack.tracking_uri}/health"), log, pid)


def up(stack: Stack) -> Stack:
    """Start every server of the stack (PostgreSQL, MLflow, Dask, Prefect) and the DVC remote's
    folder; returns the stack with its pids, saved in `<dir>/stack.json`."""
    folder = Path(stack.dir)
    folder.mkdir(parents=True, exist_ok=True)
    if _state(folder).is_file() and load(folder).pids:
        raise StackError(f"a team stack already runs from {folder}; `make team-down` first")
    busy = [
        p
        for p in (stack.postgres_port, stack.mlflow_port, stack.dask_port, stack.prefect_port)
        if _port_open(p)
    ]
    if busy:
        raise StackError(f"port(s) {busy} on 127.0.0.1 are taken; stop what listens there")
    stack.dvc_remote.mkdir(exist_ok=True)
    _save(stack)
    try:
        _start_postgres(stack)
        start_mlflow(stack)
        _spawn(
            stack,
            "dask-scheduler",
            ["dask", "scheduler", "--host", "127.0.0.1", "--port", str(stack.dask_port)]
            + ["--no-dashboard"],
        )
        _wait(
            "the Dask scheduler",
            lambda: _port_open(stack.dask_port),
            folder / "logs" / "dask-scheduler.log",
        )
        for i in range(1, stack.workers + 1):
            _spawn(
                stack,
                f"dask-worker-{i}",
                ["dask", "worker", stack.dask_address, "--name", f"worker-{i}"]
                + ["--host", "127.0.0.1", "--nthreads", "1", "--no-dashboard"]
                + ["--local-directory", str(folder / "dask" / f"worker-{i}")],
            )
        _spawn(
            stack,
            "prefect",
            ["prefect", "server", "start", "--host", "127.0.0.1", "--port"]
            + [str(stack.prefect_port)],
            PREFECT_HOME=str(folder / "prefect"),
        )
        _wait(
            "the Prefect server",
            lambda: _http_ok(f"{stack.prefect_api_url}/health"),
            folder / "logs" / "prefect.log",
        )
        _wait("2 Dask workers", lambda: _workers(stack) >= stack.workers, folder / "logs")
    except BaseException:
        down(stack)
        raise
    _save(stack)
    return stack


def _workers(stack: Stack) -> int:
    from distributed import Client

    try:
        with Client(stack.dask_address, timeout=5) as client:
            return len(client.scheduler_info(n_workers=-1)["workers"])
    except OSError:
        return 0


def stop_process(stack: Stack, name: str, timeout: float = 20.0) -> None:
    """End a server's process group: SIGTERM, then SIGKILL after `timeout` s."""
    pid = stack.pids.pop(name, None)
    if pid is None:
        return
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def down(stack: Stack) -> None:
    """Stop every server of the stack; its data (database, artifacts, remote) stays."""
    for name in list(stack.pids):
        stop_process(stack, name)
    if (Path(stack.dir) / "postgres" / "postmaster.pid").is_file():
        pg_ctl(stack, "stop")
    _save(stack)


def describe(stack: Stack) -> str:
    """What a clone sets to run against the stack."""
    import yaml

    return (
        f"team stack up in {stack.dir}: MLflow {stack.tracking_uri} (store {stack.store_uri}), "
        f"Dask {stack.dask_address} ({stack.workers} workers), Prefect {stack.prefect_api_url}\n"
        "In each clone:\n"
        + "".join(
            f"  params.yaml {line}\n"
            for line in yaml.safe_dump(stack.params(), sort_keys=False).splitlines()
        )
        + f"  export PREFECT_API_URL={stack.prefect_api_url}\n"
        + f"  dvc remote add --local -d team {stack.dvc_remote}   # then `dvc push` after a run"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=Path, default=ROOT / ".team", help="the stack's folder")
    for name, default in (("postgres", 5433), ("mlflow", 5050), ("dask", 8786), ("prefect", 4242)):
        parser.add_argument(f"--{name}-port", type=int, default=default)
    args = parser.parse_args(argv)
    folder = args.dir.resolve()
    try:
        if args.action == "up":
            ports = {k: v for k, v in vars(args).items() if k.endswith("_port")}
            print(describe(up(Stack(str(folder), **ports))))
        elif args.action == "down":
            down(load(folder))
            print(f"team stack in {folder} stopped (its data stays)")
        else:
            stack = load(folder)
            alive = {n: _alive(p) for n, p in stack.pids.items()}
            print(json.dumps({"dir": stack.dir, "alive": alive}, indent=2))
    except FrugalError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)


def _alive(pid: int) -> bool:
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)  # reaps a child of this process that ended
        return waited == 0
    except ChildProcessError:  # not our child: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


if __name__ == "__main__":
    main()
