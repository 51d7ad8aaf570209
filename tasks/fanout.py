"""Task that fans work out as flow runs of a deployment, with a bound on how many run at once."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from prefect import get_client, get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.deployments import run_deployment


@task(name="run-deployment-batches", cache_policy=NO_CACHE)
def run_deployment_batches(deployment: str, parameter_sets: list[dict[str, Any]], max_in_flight: int,
                           poll_seconds: float = 2.0) -> list[dict[str, Any]]:
    """Start one flow run of ``deployment`` per parameter set, at most ``max_in_flight`` at a time.

    Each run is started as a child of this task (``run_deployment(timeout=0)``) and goes to its
    deployment's work pool, which decides where it executes (a Kubernetes GPU pod, or a local
    process). Returns, in input order, each run's name, final state type and state message.
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight}")
    logger = get_run_logger()
    pending = deque(enumerate(parameter_sets))
    running: dict[Any, tuple[int, str]] = {}
    outcomes: dict[int, dict[str, Any]] = {}
    with get_client(sync_client=True) as client:
        while pending or running:
            while pending and len(running) < max_in_flight:
                index, parameters = pending.popleft()
                flow_run = run_deployment(deployment, parameters=parameters, timeout=0)
                running[flow_run.id] = (index, flow_run.name)
                logger.info("started %s (%d of %d)", flow_run.name, index + 1, len(parameter_sets))
            time.sleep(poll_seconds)
            for run_id, (index, name) in list(running.items()):
                state = client.read_flow_run(run_id).state
                if state is not None and state.is_final():
                    outcomes[index] = {"flow_run": name, "state": state.type.value, "message": state.message}
                    del running[run_id]
                    logger.info("%s finished: %s", name, state.type.value)
    return [outcomes[index] for index in range(len(parameter_sets))]
