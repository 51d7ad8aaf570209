"""Test helpers: a real local Prefect server, the Prefect CLI, workers and the REST API.

Everything talks to the server through subprocesses and plain HTTP, so the test process's own
Prefect settings (the temporary server other tests use) are never changed.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
PREFECT = str(Path(sys.executable).with_name("prefect"))
FINAL_STATES = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class PrefectServer:
    """``prefect server start`` on a free loopback port with its own PREFECT_HOME."""

    def __init__(self, home: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.api = f"http://127.0.0.1:{self.port}/api"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "PREFECT_HOME": str(home),
            "PREFECT_API_URL": self.api,
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            "PREFECT_UI_ENABLED": "false",
            "PYTHONPATH": str(REPO),
            "ANOGRAPH_PROJECT_DIR": str(REPO),
            **(extra_env or {}),
        }
        self.env.pop("PREFECT_LOGGING_LEVEL", None)
        self.log = (home / "server.log").open("wb")
        self.process = subprocess.Popen(
            [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        self.http = httpx.Client(base_url=self.api, timeout=30)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited with {self.process.returncode}; see {home}/server.log")
            try:
                if self.http.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise RuntimeError("prefect server did not answer within 180 s")

    def stop(self) -> None:
        self.http.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()

    # ----- CLI and workers
    def cli(self, *arguments: str, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([PREFECT, *arguments], env={**self.env, **(env or {})}, cwd=REPO,
                              capture_output=True, text=True, timeout=timeout)

    def start_worker(self, pool: str, *options: str, log: Path) -> subprocess.Popen:
        """A process worker in its own session (so a test can kill it with its flow-run children)."""
        handle = log.open("wb")
        return subprocess.Popen([PREFECT, "worker", "start", "--pool", pool, *options], env=self.env, cwd=REPO,
                                stdout=handle, stderr=subprocess.STDOUT, start_new_session=True)

    # ----- REST API
    def request(self, method: str, url: str, **options: Any) -> httpx.Response:
        """One API call, retried while a busy server answers 503 or drops the connection."""
        for attempt in range(10):
            try:
                response = self.http.request(method, url, **options)
                if response.status_code != 503:
                    return response
            except httpx.TransportError:
                if attempt == 9:
                    raise
            time.sleep(1 + attempt)
        return response

    def deployment_id(self, name: str) -> str:
        response = self.request("GET", f"/deployments/name/{name}")
        response.raise_for_status()
        return response.json()["id"]

    def trigger(self, deployment: str, parameters: dict[str, Any]) -> str:
        """Create a flow run of ``deployment`` (``flow/deployment``) scheduled now; returns its id."""
        response = self.request("POST", f"/deployments/{self.deployment_id(deployment)}/create_flow_run",
                                json={"parameters": parameters})
        response.raise_for_status()
        return response.json()["id"]

    def flow_run(self, run_id: str) -> dict[str, Any]:
        response = self.request("GET", f"/flow_runs/{run_id}")
        response.raise_for_status()
        return response.json()

    def wait(self, run_id: str, timeout: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.flow_run(run_id)
            if run["state_type"] in FINAL_STATES:
                return run
            time.sleep(1)
        raise TimeoutError(f"flow run {run_id} not finished after {timeout} s: {run['state_type']}")

    def state_names(self, run_id: str) -> list[str]:
        response = self.request("GET", "/flow_run_states/", params={"flow_run_id": run_id})
        response.raise_for_status()
        return [state["name"] for state in sorted(response.json(), key=lambda state: state["timestamp"])]

    def set_state(self, run_id: str, state_type: str, name: str, force: bool = True) -> None:
        """Force a flow run's state; a SCHEDULED state is due now."""
        state: dict[str, Any] = {"type": state_type, "name": name}
        if state_type == "SCHEDULED":
            state["state_details"] = {"scheduled_time": datetime.now(timezone.utc).isoformat()}
        response = self.request("POST", f"/flow_runs/{run_id}/set_state", json={"state": state, "force": force})
        response.raise_for_status()

    def artifact(self, key: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/artifacts/{key}/latest")
        return response.json() if response.status_code == 200 else None

    def children(self, parent_id: str) -> list[dict[str, Any]]:
        """Flow runs whose parent task run belongs to ``parent_id`` (runs started with run_deployment)."""
        tasks = self.request("POST", "/task_runs/filter",
                             json={"task_runs": {"flow_run_id": {"any_": [parent_id]}}}).json()
        task_ids = [task["id"] for task in tasks]
        if not task_ids:
            return []
        return self.request("POST", "/flow_runs/filter",
                            json={"flow_runs": {"parent_task_run_id": {"any_": task_ids}}}).json()


def descendants(pid: int) -> list[int]:
    """Process ids below ``pid`` (from /proc), deepest last."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, frontier = [], [pid]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found += children
        frontier += children
    return found


def kill_tree(process: subprocess.Popen) -> None:
    """SIGKILL a worker and every process it started, as a node failure would."""
    victims = [process.pid, *descendants(process.pid)]
    for pid in victims:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait()
