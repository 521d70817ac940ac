"""``sdrt serve --print-config``: a Ray Serve config file (the format ``serve deploy`` and KubeRay's
RayService take) that runs the same application on an existing cluster."""

from __future__ import annotations

from typing import Any

from .application import APP_NAME, ServeArgs, config_args


def config(args: ServeArgs, *, host: str, port: int) -> dict[str, Any]:
    return {
        "proxy_location": "EveryNode",
        "http_options": {"host": host, "port": port},
        "applications": [
            {
                "name": APP_NAME,
                "route_prefix": "/",
                "import_path": "sdrt.serve.application:build",
                "args": config_args(args),
            }
        ],
    }


def config_yaml(args: ServeArgs, *, host: str, port: int) -> str:
    import yaml

    header = (
        "# Ray Serve config for sdrt: serve deploy this-file.yaml (on a running Ray cluster), or paste it into\n"
        "# a KubeRay RayService's serveConfigV2. Every node needs sdrt[serve] and the bundle folders at these\n"
        "# paths. Credentials are never written here: an API key goes in the SDRT_API_KEY environment variable,\n"
        "# --api-auth's USER:PASS in SDRT_API_AUTH (set on the cluster's nodes).\n"
    )
    for given, flag, env in (
        (args.api_key, "--api-key", "SDRT_API_KEY"),
        (args.api_auth, "--api-auth", "SDRT_API_AUTH"),
    ):
        if given:
            header += f"# Given {flag}: set {env} on every node before serve deploy.\n"
    return header + yaml.safe_dump(config(args, host=host, port=port), sort_keys=False)
