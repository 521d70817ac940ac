"""``sdrt serve``'s options checked before Ray starts: each bad one is one line and exit status 2."""

from __future__ import annotations

import argparse
import math
import socket
from pathlib import Path

from sdrt.runtime.backends import AUTO, backend_names
from sdrt.runtime.engines.providers import provider_available
from sdrt.runtime.errors import InputError


def check_options(args: argparse.Namespace) -> None:
    for flag in ("replicas", "max_batch_size", "max_images", "max_steps", "max_prompt_chars"):
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag.replace('_', '-')} must be at least 1")
    for flag, low, above in (
        ("max_body_mb", 0.0, True),
        ("request_timeout", 0.0, True),
        ("batch_wait_ms", 0.0, False),
        ("cpus_per_replica", 0.0, False),
        ("gpus_per_replica", 0.0, False),
    ):
        value = getattr(args, flag)
        if not math.isfinite(value) or value < low or (above and value == low):
            bound = "above" if above else "at least"
            raise InputError(f"--{flag.replace('_', '-')} {value} must be a finite number {bound} {low:g}")
    if args.max_body_mb * 1024 * 1024 < 1:
        raise InputError(f"--max-body-mb {args.max_body_mb} is under one byte")
    for port in (args.port, args.metrics_port):
        if port is not None and not 1 <= port <= 65535:
            raise InputError(f"--port {port} is not a TCP port (1..65535)")
    _check_api_auth(args.api_auth)
    for flag in ("lora_dir", "embeddings_dir"):
        folder = getattr(args, flag, None)
        if folder is not None and not Path(folder).is_dir():
            what = "is not a folder" if Path(folder).exists() else "does not exist"
            raise InputError(f"--{flag.replace('_', '-')} {folder} {what}; give the folder holding the files")
    if args.provider.lower() not in (AUTO, *backend_names()):
        raise InputError(f"--provider {args.provider!r}: use one of {AUTO}, {', '.join(backend_names())}")


def _check_api_auth(value: str | None) -> None:
    if value is None:
        return
    for entry in value.split(","):
        user, colon, password = entry.partition(":")
        if not (colon and user and password):
            raise InputError("--api-auth takes USER:PASS (several separated by commas), each part non-empty")


def check_local_machine(args: argparse.Namespace) -> None:
    """What a local Ray would wait on forever or fail on with a traceback: the ports, GPUs, provider."""
    for flag, port in (("--port", args.port), ("--metrics-port", args.metrics_port)):
        if port is not None and not _port_free(args.host if flag == "--port" else "127.0.0.1", port):
            raise InputError(
                f"{flag} {port} is in use on this machine; stop what holds it or pick another port"
            )
    if args.gpus_per_replica > 0 and gpu_count() == 0:
        raise InputError(
            f"--gpus-per-replica {args.gpus_per_replica:g}: this machine has no NVIDIA GPU, so no replica could "
            "start; leave it at 0, or join a cluster with GPUs (--address)"
        )
    provider = args.provider.lower()
    if provider != AUTO and not provider_available(provider):
        raise InputError(
            f"--provider {provider} cannot run on this machine (its packages or its device are missing); "
            "use --provider auto or cpu"
        )


def gpu_count() -> int:
    """NVIDIA GPUs the driver lists (what Ray counts on Linux), without importing a GPU library."""
    gpus = Path("/proc/driver/nvidia/gpus")
    return len(list(gpus.iterdir())) if gpus.is_dir() else 0


def _port_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will: TIME_WAIT is free
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True
