"""A1111's routes for the extra networks and VAE: ``/sdapi/v1/loras``, ``/refresh-loras``, ``/embeddings``,
``/sd-vae`` (their shapes are A1111's, ``modules/api/api.py`` and ``models.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from sdrt.runtime.bundle.bundle import open_bundle

if TYPE_CHECKING:
    from .http import Api


def network_routes(app: FastAPI, api: Api) -> None:
    @app.get("/sdapi/v1/loras", tags=["a1111"])
    async def loras() -> list[dict[str, Any]]:
        return api.loras.listed()

    @app.post("/sdapi/v1/refresh-loras", tags=["a1111"])
    async def refresh_loras() -> None:
        api.loras.refresh()

    @app.get("/sdapi/v1/embeddings", tags=["a1111"])
    async def embeddings() -> dict[str, Any]:
        return await api.embeddings()

    @app.get("/sdapi/v1/sd-vae", tags=["a1111"])
    async def sd_vae() -> list[dict[str, Any]]:
        return vaes(api.catalog.models[api.active].path)


def vaes(bundle_path: str) -> list[dict[str, Any]]:
    """The bundle's VAE decoder, and its tiny preview VAE when build-engine exported one."""
    bundle = open_bundle(bundle_path)
    listed = []
    if "vae_decoder" in bundle.components:
        listed.append({"model_name": f"{bundle.path.name} vae", "filename": str(bundle.path / "vae_decoder")})
    preview = getattr(bundle.manifest, "preview_vae", None)
    if preview:
        listed.append(
            {"model_name": f"{bundle.path.name} preview vae", "filename": str(bundle.path / preview)}
        )
    return listed
