"""The one way effnas starts or joins Ray: a local Ray on 127.0.0.1 only, or the cluster the user named.

Used by ``nas search`` (its workers and Tune trials), ``nas scale-search``, ``nas train`` and
``nas supernet train`` alike.

A local Ray listens on the loopback interface only.  Ray 2.60 binds its gRPC servers (GCS, raylet,
object manager, workers, agents) to the node IP, and takes the loopback address as the node IP when
``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` -- the single-machine mode it uses on macOS and Windows (read
by ``ray._private.services.get_node_ip_address``).  :func:`start_local_ray` sets it for the processes
it starts (and for this, already imported, driver), then restores it, so a later cluster in the same
process gets Ray's default.  Ray's token auth is off for that local Ray (``RAY_AUTH_MODE=disabled``,
unless the user set a mode): with every socket on loopback only local users reach it.  Joining a
cluster (``--address``) is the user's choice and uses the cluster's own settings; the address is
probed first, within a bounded time (:func:`nas.cluster.check_address`).  Tests check the sockets
(tests/test_search_hardening.py, tests/test_train_ray.py).
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import Iterator

import ray

from ..cluster import DEFAULT_CONNECT_TIMEOUT_S, check_address
from ..config import ConfigError

log = logging.getLogger(__name__)

#: Ray's own switch; "0": a node takes 127.0.0.1 as its IP, so everything it starts binds loopback only.
_CLUSTER_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start_local_ray(num_cpus: int | None = None, num_gpus: int | None = None, dashboard: bool = False) -> None:
    """Start a local Ray that listens on 127.0.0.1 only (nothing reachable from another host)."""
    from ray._private import ray_constants

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    saved = os.environ.get(_CLUSTER_SWITCH), ray_constants.ENABLE_RAY_CLUSTER
    os.environ[_CLUSTER_SWITCH] = "0"  # inherited by the GCS, the raylet (and the workers it starts), agents
    ray_constants.ENABLE_RAY_CLUSTER = False  # this process read the variable when it imported Ray
    try:
        ray.init(address="local", num_cpus=num_cpus, num_gpus=num_gpus, include_dashboard=dashboard,
                 dashboard_host="127.0.0.1", _node_ip_address="127.0.0.1", logging_level=logging.WARNING,
                 log_to_driver=False)
    finally:
        if saved[0] is None:
            os.environ.pop(_CLUSTER_SWITCH, None)
        else:
            os.environ[_CLUSTER_SWITCH] = saved[0]
        ray_constants.ENABLE_RAY_CLUSTER = saved[1]


def join_cluster(address: str, connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> None:
    """Connect to the Ray cluster at ``address``; a dead address fails within ``connect_timeout_s``, one line."""
    check_address(address, connect_timeout_s)
    log.info("joining the Ray cluster at %s", address)
    try:
        ray.init(address=address, logging_level=logging.WARNING, log_to_driver=False)
    except ConnectionError as err:
        raise ConfigError(f"--address {address}: {str(err).strip().splitlines()[0]}; start the cluster "
                          "(`ray start --head`) or drop --address to run a local Ray") from None


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None, num_gpus: int | None = None,
                dashboard: bool = False, connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S) -> Iterator[bool]:
    """Reuse a running Ray, join ``address``, or start a local one; yields whether it was started here
    (and then shuts it down on the way out)."""
    if ray.is_initialized():
        yield False
        return
    if address:
        join_cluster(address, connect_timeout_s)
    else:
        start_local_ray(num_cpus, num_gpus, dashboard)
    try:
        yield True
    finally:
        ray.shutdown()
