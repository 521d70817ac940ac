"""A local ``sdrt serve`` listens on 127.0.0.1 only: ``cli/serve.py`` starts Ray with its node IP on loopback
(GCS, raylet, workers and agents bind there), and each replica calls ``keep_on_loopback()``.

Ray Serve 2.60 binds every replica's inter-deployment gRPC server to all interfaces (``[::]:0``) whatever
the node's IP; on a node whose IP is 127.0.0.1 nothing can reach it from elsewhere anyway, so it is bound
to 127.0.0.1 instead. On a cluster (a real node IP) Ray's own binding is left as it is.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("ray.serve")
_patched: list[bool] = []


def keep_on_loopback() -> None:
    import ray

    if _patched or ray.util.get_node_ip_address() != "127.0.0.1":
        return
    try:
        from ray.serve._private import replica
    except ImportError:
        return
    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None:
        log.warning("sdrt: this Ray Serve has no add_port_to_grpc_server; replicas bind as Ray decides")
        return

    def on_loopback(server: Any, address: str) -> Any:
        host, _, port = address.rpartition(":")
        return original(server, f"127.0.0.1:{port}" if host in ("[::]", "0.0.0.0") else address)

    replica.add_port_to_grpc_server = on_loopback
    _patched.append(True)
