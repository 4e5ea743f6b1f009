"""Ray for ``frugalbench serve``: start or join a cluster, one task per queue entry, task start events.

- ``connect(address, cpus)``: with no address a local Ray instance is started for this process only
  (no dashboard, ``cpus`` logical CPUs, one measurement slot); with one, the driver joins that cluster.
- A task asks for the CPUs it will use (its threads) and, when it measures, the host's measurement
  slot ``MEASURE_RESOURCE``. Declare that resource **once per physical machine** (on one of its nodes):
  two Ray nodes on one machine then share one slot. Tasks are retried by Ray when their worker or node
  dies (``MAX_ATTEMPTS`` in all), never for an error of the evaluation itself.
- ``Tracker``: a zero-CPU actor on the driver's node to which each task attempt says where it started,
  so that the driver (the only writer of the database) records nodes and attempts.
"""
from __future__ import annotations

import os
from functools import cache
from typing import Any

from frugalbench.platform.tasks import TaskSpec, evaluate_entry, node_identity

MEASURE_RESOURCE = 'frugalbench_measure'
MAX_ATTEMPTS = 3
NAMESPACE = 'frugalbench'


def connect(address: str | None, cpus: int | None = None) -> dict[str, Any]:
    """Start a local Ray instance (address None) or join ``address``; return ``ray.init``'s context info."""
    import ray
    os.environ.setdefault('RAY_USAGE_STATS_ENABLED', '0')   # no network at run time
    if address:
        context = ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
    else:
        context = ray.init(num_cpus=cpus or os.cpu_count() or 1, resources={MEASURE_RESOURCE: 1},
                           include_dashboard=False, namespace=NAMESPACE, log_to_driver=False)
    return {'address': context.address_info.get('gcs_address'), 'local': not address}


def disconnect() -> None:
    """Leave the cluster; a local instance started by ``connect`` stops with its processes."""
    import ray
    if ray.is_initialized():
        ray.shutdown()


def alive_nodes() -> list[dict[str, Any]]:
    import ray
    return [node for node in ray.nodes() if node.get('Alive')]


def can_schedule(cpus: int, measure: bool) -> bool:
    """Whether some alive node has the CPUs (and, to measure, a measurement slot) a task asks for."""
    for node in alive_nodes():
        resources = node.get('Resources', {})
        if resources.get('CPU', 0) >= cpus and (not measure or resources.get(MEASURE_RESOURCE, 0) >= 1):
            return True
    return False


def cluster_cpus() -> int:
    return int(sum(node.get('Resources', {}).get('CPU', 0) for node in alive_nodes()))


@cache
def _remote() -> tuple[Any, Any]:
    import ray

    @ray.remote(num_cpus=0)
    class Tracker:
        def __init__(self) -> None:
            self.events: list[dict[str, Any]] = []

        def started(self, event: dict[str, Any]) -> None:
            self.events.append(event)

        def drain(self) -> list[dict[str, Any]]:
            events, self.events = self.events, []
            return events

    return ray.remote(run_task), Tracker


def start_tracker() -> Any:
    """The Tracker actor, pinned to the driver's node (it survives the loss of any other node)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
    _, tracker = _remote()
    here = ray.get_runtime_context().get_node_id()
    return tracker.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False)).remote()


def submit(spec: TaskSpec, shipped: Any, tracker: Any) -> Any:
    """One Ray task for one entry; returns its ObjectRef (the result of ``evaluate_entry``)."""
    task, _ = _remote()
    resources = {MEASURE_RESOURCE: 1} if spec.measure else {}
    return task.options(num_cpus=spec.threads, resources=resources, max_retries=MAX_ATTEMPTS - 1,
                        retry_exceptions=False, name=f'evaluate-{spec.entry_id}').remote(spec, [shipped], tracker)


def run_task(spec: TaskSpec, shipped: list[Any], tracker: Any) -> dict[str, Any]:
    """The task: report where this attempt runs, then evaluate (``frugalbench.platform.tasks``)."""
    import ray
    node = {**node_identity(), 'node_id': ray.get_runtime_context().get_node_id()}
    tracker.started.remote({'entry_id': spec.entry_id, 'node': node})
    result = evaluate_entry(spec, shipped)
    result['node'] = node
    return result
