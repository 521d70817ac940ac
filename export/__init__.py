"""sdrt.export: diffusers models -> validated ONNX graphs -> engine bundles.

Heavy imports (torch, diffusers, onnx) happen on first use, so ``import sdrt.export`` is cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .build import BuildReport, export_pipeline
    from .engines import build_engines
    from .options import BuildOptions

__all__ = ["export_pipeline", "build_engines", "BuildOptions", "BuildReport"]


def __getattr__(name: str) -> Any:
    if name in ("export_pipeline", "BuildReport"):
        from . import build

        return getattr(build, name)
    if name == "BuildOptions":
        from .options import BuildOptions

        return BuildOptions
    if name == "build_engines":
        from .engines import build_engines

        return build_engines
    raise AttributeError(f"module 'sdrt.export' has no attribute {name!r}")
