"""``sdrt serve BUNDLE [BUNDLE ...]``: the bundles on Ray Serve, with A1111's and OpenAI's image APIs.

sdrt serve engines/sd-shapes                          # a local Ray instance, http://127.0.0.1:7860
sdrt serve engines/a engines/b --replicas 2 --max-batch-size 4
sdrt serve engines/a --address ray://head:10001       # join a cluster (or set RAY_ADDRESS)
sdrt serve engines/a --print-config > serve.yaml      # then: serve deploy serve.yaml
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
from typing import Any

from sdrt.runtime.errors import InputError, ProviderNotAvailableError, SdrtError

from .serve_checks import check_local_machine, check_options

# Set before Ray is imported: a local Ray binds its ports (GCS, raylet, workers, agents) to 127.0.0.1 only,
# as Ray does on macOS and Windows, instead of every interface.
LOCAL_ONLY_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}


def serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundles", nargs="+", metavar="BUNDLE", help="engine bundle folders (engines/NAME)")
    parser.add_argument(
        "--address", default=None, help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)"
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)"
    )
    parser.add_argument(
        "--port", type=int, default=7860, help="HTTP port (default: 7860, as A1111's clients expect)"
    )
    parser.add_argument(
        "--provider", default="auto", help="auto, cpu, openvino, cuda or tensorrt (default: auto)"
    )
    parser.add_argument(
        "--lora-dir",
        default=None,
        metavar="DIR",
        help="LoRA .safetensors files that A1111 prompts name as <lora:FILE_STEM:WEIGHT>",
    )
    parser.add_argument(
        "--embeddings-dir",
        default=None,
        metavar="DIR",
        help="textual-inversion embeddings, each used in prompts by its file's stem (as A1111)",
    )
    _deployment_options(parser)
    _limit_options(parser)
    parser.add_argument(
        "--print-config",
        action="store_true",
        help="print a Ray Serve config file (for serve deploy) and exit",
    )


def _deployment_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--replicas", type=int, default=1, help="replicas per model (default: 1)")
    parser.add_argument(
        "--autoscale",
        default=None,
        metavar="MIN:MAX",
        help="autoscale each model between MIN and MAX replicas",
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=4,
        help="requests (and images) per batched pipeline call (default: 4)",
    )
    parser.add_argument(
        "--batch-wait-ms",
        type=float,
        default=50.0,
        help="how long a batch waits to fill, in ms (default: 50)",
    )
    parser.add_argument(
        "--cpus-per-replica", type=float, default=1.0, help="Ray CPUs per model replica (default: 1)"
    )
    parser.add_argument(
        "--gpus-per-replica", type=float, default=0.0, help="Ray GPUs per model replica (default: 0)"
    )


def _limit_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Ray's Prometheus metrics (Ray Serve's and sdrt_*) on this port (local Ray only)",
    )
    parser.add_argument(
        "--api-key", default=None, help="require Authorization: Bearer KEY (or set $SDRT_API_KEY)"
    )
    parser.add_argument(
        "--api-auth", default=None, metavar="USER:PASS", help="require HTTP Basic auth, as A1111's"
    )
    parser.add_argument(
        "--max-prompt-chars", type=int, default=4000, help="longest prompt accepted (default: 4000)"
    )
    parser.add_argument("--max-images", type=int, default=16, help="most images per request (default: 16)")
    parser.add_argument("--max-steps", type=int, default=150, help="most steps per request (default: 150)")
    parser.add_argument(
        "--max-body-mb", type=float, default=32.0, help="largest request body (default: 32 MB)"
    )
    parser.add_argument(
        "--request-timeout",
        type=float,
        default=600.0,
        help="seconds before a request is answered 504 (default: 600)",
    )


def serve_args(args: argparse.Namespace) -> Any:
    """The application's arguments, every bundle and option checked before Ray starts."""
    from sdrt.serve.application import ServeArgs
    from sdrt.serve.catalog import Catalog, served_model

    check_options(args)
    Catalog([served_model(path) for path in args.bundles])
    limits = {
        "max_prompt_chars": args.max_prompt_chars,
        "max_images": args.max_images,
        "max_steps": args.max_steps,
        "max_body_bytes": int(args.max_body_mb * 1024 * 1024),
        "timeout_s": args.request_timeout,
    }
    return ServeArgs(
        bundles=[os.path.abspath(path) for path in args.bundles],
        provider=args.provider,
        replicas=args.replicas,
        autoscale=_autoscale(args.autoscale),
        max_batch_size=args.max_batch_size,
        batch_wait_ms=args.batch_wait_ms,
        cpus_per_replica=args.cpus_per_replica,
        gpus_per_replica=args.gpus_per_replica,
        limits=limits,
        api_auth=args.api_auth,
        api_key=args.api_key,
        lora_dir=_folder(args.lora_dir),
        embeddings_dir=_folder(args.embeddings_dir),
    )


def _folder(path: str | None) -> str | None:
    return os.path.abspath(path) if path else None


def _autoscale(value: str | None) -> tuple[int, int] | None:
    if value is None:
        return None
    low, _, high = value.partition(":")
    if not (low.isdigit() and high.isdigit() and 0 <= int(low) <= int(high) and int(high) >= 1):
        raise InputError(f"--autoscale {value!r}: give MIN:MAX replicas, such as 1:4")
    return int(low), int(high)


def serve(args: argparse.Namespace) -> int:
    """Start (or join) Ray, run the application until Ctrl-C or SIGTERM, then shut it down."""
    app_args = serve_args(args)
    if args.print_config:
        from sdrt.serve.config import config_yaml

        print(config_yaml(app_args, host=args.host, port=args.port), end="")
        return 0
    from sdrt.serve.application import APP_NAME

    address = args.address or os.environ.get("RAY_ADDRESS")
    ray, ray_serve = _start_ray(args, address)
    try:
        _run(args, app_args, ray_serve)
    except KeyboardInterrupt:
        print("sdrt serve: stopping", flush=True)
    finally:
        if address:
            ray_serve.delete(APP_NAME)
        else:
            ray_serve.shutdown()
        ray.shutdown()
    return 0


def _start_ray(args: argparse.Namespace, address: str | None) -> tuple[Any, Any]:
    """Ray joined at ``address``, or a local one whose every port is on 127.0.0.1."""
    if not address:
        check_local_machine(args)
        os.environ.update(LOCAL_ONLY_ENV)  # inherited by the GCS, raylet, workers and agents
    try:
        import ray
        from ray import serve as ray_serve
    except ImportError as error:
        raise ProviderNotAvailableError("sdrt serve needs Ray Serve: pip install 'sdrt[serve]'") from error
    options: dict[str, Any] = {}
    if not address:
        from ray._private import ray_constants

        ray_constants.ENABLE_RAY_CLUSTER = False  # read at Ray's import: set here if Ray came in earlier
        options["_node_ip_address"] = "127.0.0.1"
        if args.metrics_port:
            options["_metrics_export_port"] = args.metrics_port
    ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING, **options)
    return ray, ray_serve


def _run(args: argparse.Namespace, app_args: Any, ray_serve: Any) -> None:
    """Serve until interrupted; an application that cannot start is one line (Ray's log has the rest)."""
    from sdrt.serve.application import APP_NAME, build

    try:
        ray_serve.start(http_options={"host": args.host, "port": args.port})
        ray_serve.run(build(vars(app_args)), name=APP_NAME, route_prefix="/")
    except (SdrtError, KeyboardInterrupt):
        raise
    except Exception as error:  # noqa: BLE001 - Ray's startup errors are long tracebacks; the cause in one line
        first = next((line for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ServeStartError(f"the application did not start: {first[:300]}") from error
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::") else args.host
    print(f"sdrt serve: http://{host}:{args.port} serving {', '.join(_names(app_args))}", flush=True)
    print(
        "  A1111 API /sdapi/v1/txt2img, /sdapi/v1/img2img; OpenAI /v1/images/generations; API docs /docs; "
        "Ctrl-C stops",
        flush=True,
    )
    signal.signal(signal.SIGTERM, _interrupt)
    while True:
        time.sleep(3600)


class ServeStartError(SdrtError):
    """Ray Serve could not start the application (the replicas' errors are in Ray's log)."""


def _names(app_args: Any) -> list[str]:
    return [os.path.basename(path.rstrip("/")) for path in app_args.bundles]


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
