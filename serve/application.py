"""The Ray Serve application: an ingress (``Api``) and one model deployment per bundle.

``build(args)`` is an application builder, so the same application runs from ``sdrt serve`` and from a
Serve config file (``import_path: sdrt.serve.application:build``, ``args: {...}``), which ``serve
deploy`` puts on an existing Ray cluster or KubeRay's RayService runs on Kubernetes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .catalog import served_model
from .fields import Limits

APP_NAME = "sdrt"


@dataclass
class ServeArgs:
    """The builder's arguments (the ``args`` of a config file's application)."""

    bundles: list[str]
    provider: str = "auto"
    replicas: int = 1
    autoscale: tuple[int, int] | None = None  # (min, max) replicas; replaces ``replicas``
    target_ongoing_requests: float = 2.0
    max_batch_size: int = 4
    batch_wait_ms: float = 50.0
    cpus_per_replica: float = 1.0
    gpus_per_replica: float = 0.0
    limits: dict[str, Any] = field(default_factory=dict)
    api_auth: str | None = None  # secrets are left out of config files: a cluster reads $SDRT_API_AUTH
    api_key: str | None = None  # and $SDRT_API_KEY
    lora_dir: str | None = None  # <lora:NAME:WEIGHT> names the .safetensors files here
    embeddings_dir: str | None = None  # textual-inversion embeddings, each file's stem its trigger word

    @classmethod
    def from_dict(cls, args: dict[str, Any]) -> ServeArgs:
        args = dict(args)
        if args.get("autoscale") is not None:
            args["autoscale"] = tuple(args["autoscale"])
        return cls(**args)


def deployment_name(model: str) -> str:
    return f"model-{model}"


def model_options(args: ServeArgs) -> dict[str, Any]:
    """Replicas or autoscaling, resources and how many requests a replica holds (a batch queued behind one
    running, so the next batch fills while this one runs)."""
    options: dict[str, Any] = {
        "ray_actor_options": {"num_cpus": args.cpus_per_replica, "num_gpus": args.gpus_per_replica},
        "max_ongoing_requests": 2 * args.max_batch_size + 1,
    }
    if args.autoscale:
        low, high = args.autoscale
        options["autoscaling_config"] = {
            "min_replicas": low,
            "max_replicas": high,
            "target_ongoing_requests": args.target_ongoing_requests,
        }
    else:
        options["num_replicas"] = args.replicas
    return options


def build(args: dict[str, Any]) -> Any:
    """The application for ``args`` (a dict of ServeArgs' fields)."""
    from ray import serve

    from .http import Api
    from .model import ModelServer

    parsed = ServeArgs.from_dict(args)
    Limits(**parsed.limits)  # an unknown limit fails here, before any deployment starts
    handles = {}
    for path in parsed.bundles:
        name = served_model(path).name
        deployment = serve.deployment(name=deployment_name(name), **model_options(parsed))(ModelServer)
        threads = max(1, round(parsed.cpus_per_replica)) if parsed.cpus_per_replica > 0 else None
        handles[name] = deployment.bind(
            path, parsed.provider, parsed.max_batch_size, parsed.batch_wait_ms, threads, parsed.embeddings_dir
        )
    ingress = serve.deployment(name="api", ray_actor_options={"num_cpus": 0}, max_ongoing_requests=1000)(
        serve.ingress()(Api)
    )
    auth = {"api_key": parsed.api_key, "api_auth": parsed.api_auth}
    return ingress.bind(parsed.bundles, handles, parsed.limits, auth, parsed.lora_dir)


def config_args(args: ServeArgs) -> dict[str, Any]:
    """The builder's args as a config file holds them (no secret: set $SDRT_API_KEY / $SDRT_API_AUTH on the
    cluster)."""
    data = asdict(args)
    data["api_key"] = data["api_auth"] = None
    if args.autoscale:
        data["autoscale"] = list(args.autoscale)
    return data
