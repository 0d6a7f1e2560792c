"""Sync group runs on worker processes, through Dramatiq and Redis (``[hub] queue``), for scale.

The server's watch loop (or anything else) enqueues a group's name; ``calmesh worker`` processes,
each with the same config, take names off the queue and run those groups with their own
connectors. A Redis mutex per group keeps two workers from running one group at the same time
(overlapping runs would race each other's writes); a run that finds its group busy is dropped,
since the one in progress does the same work. Runs are not retried by Dramatiq: the next interval
runs the group again, from whatever state the failed run left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.rate_limits import ConcurrentRateLimiter
from dramatiq.rate_limits.backends import RedisBackend

from calmesh.config import Config
from calmesh.services.hub import Hub
from calmesh.services.scheduler import RunGroup, hub_engine, logged_runner
from calmesh.services.sync import SyncEngine, SyncReport

log = logging.getLogger(__name__)

QUEUE_NAME = "calmesh-sync"
ACTOR_NAME = "calmesh_sync_group"
NAMESPACE = "calmesh"
RUN_TTL_MS = 60 * 60 * 1000
"""The longest a run may take (Dramatiq's default limit, 10 minutes, would interrupt a big first
sync); a group's mutex outlives a killed worker by at most this long."""


def broker(url: str, namespace: str = NAMESPACE) -> RedisBroker:
    """The broker for ``[hub] queue``; ``namespace`` keeps calmesh's keys apart in a shared Redis."""
    return RedisBroker(url=url, namespace=namespace)


def enqueuer(queue: RedisBroker) -> RunGroup:
    """A :data:`RunGroup` that only puts the group's name on the queue."""
    queue.declare_queue(QUEUE_NAME)

    def enqueue(name: str, _group: object) -> None:
        queue.enqueue(dramatiq.Message(queue_name=QUEUE_NAME, actor_name=ACTOR_NAME, args=(name,),
                                       kwargs={}, options={}))

    return enqueue


def declare_worker_actor(queue: RedisBroker, config: Config, engine: Callable[[], SyncEngine],
                         namespace: str = NAMESPACE, *,
                         on_report: Callable[[SyncReport], object] | None = None) -> dramatiq.Actor[[str], None]:
    """Register, on ``queue``, the actor that runs a named group of ``config`` (in a worker);
    ``on_report`` sees each finished run (the hub's cache invalidation)."""
    run = logged_runner(engine, on_report)
    backend = RedisBackend(client=queue.client)

    def run_group(name: str) -> None:
        group = config.sync.groups.get(name)
        if group is None:
            log.error("sync group %r is not in this worker's config; dropped", name)
            return
        mutex = ConcurrentRateLimiter(backend, f"{namespace}:sync-run:{name}", limit=1, ttl=RUN_TTL_MS)
        with mutex.acquire(raise_on_failure=False) as acquired:
            if not acquired:
                log.info("sync group %s is already running on another worker; skipped", name)
                return
            run(name, group)

    return dramatiq.actor(actor_name=ACTOR_NAME, queue_name=QUEUE_NAME, broker=queue, max_retries=0,
                          time_limit=RUN_TTL_MS)(run_group)


def worker(queue: RedisBroker, threads: int = 1) -> dramatiq.Worker:
    """A (not yet started) worker taking group runs off ``queue``."""
    return dramatiq.Worker(queue, queues={QUEUE_NAME}, worker_threads=threads, worker_timeout=200)


def loop_runner(hub: Hub) -> RunGroup:
    """What the server's watch loop does with a due group: enqueue it when ``[hub] queue`` is
    set, else run it in-process."""
    if hub.config.hub.queue:
        return enqueuer(broker(hub.config.hub.queue))
    return logged_runner(lambda: hub_engine(hub), lambda report: hub.calendars_changed(report.changed_members))
