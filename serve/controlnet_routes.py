"""sd-webui-controlnet's routes (``/controlnet/*``): what its clients ask before sending units."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from .controlnet_units import EXTENSION_VERSION

if TYPE_CHECKING:
    from .http import Api


def controlnet_routes(app: FastAPI, api: Api) -> None:
    @app.get("/controlnet/version", tags=["controlnet"])
    async def version() -> dict[str, Any]:
        return {"version": EXTENSION_VERSION}

    @app.get("/controlnet/model_list", tags=["controlnet"])
    async def model_list() -> dict[str, Any]:
        """The served bundles' ControlNets (a unit's ``model``)."""
        names = [n for m in api.catalog.models.values() for n in m.controlnets]
        return {"model_list": list(dict.fromkeys(names))}

    @app.get("/controlnet/module_list", tags=["controlnet"])
    async def module_list() -> dict[str, Any]:
        """Only "none": preprocessors are not run here; units bring preprocessed control images."""
        return {"module_list": ["none"]}
