"""Which pipeline class runs a bundle: its family's default task (the unconditional family: the task its folder's
pipeline class names), or its ControlNet (T2I-Adapter) task for a bundle built with ControlNets (adapters) (``sdrt.runtime.families``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.errors import BundleError
from sdrt.runtime.families import CONTROL, T2I_ADAPTER, all_families, class_name, find_family, resolve

if TYPE_CHECKING:
    from .base import DiffusionPipeline


def pipeline_ref(bundle: Bundle) -> str | None:
    """``"module:ClassName"`` of the pipeline ``DiffusionPipeline.from_pretrained`` loads for the bundle; None
    for a model type sdrt cannot run."""
    found = find_family(bundle.model_type)
    if found is None:
        return None
    manifest = bundle.manifest
    if manifest.controlnets and CONTROL in found.tasks:
        task: str | None = CONTROL
    elif manifest.adapters and T2I_ADAPTER in found.tasks:
        task = T2I_ADAPTER
    else:
        task = found.folder_task(manifest.pipeline_class)
    return None if task is None else found.tasks[task]


def pipeline_entry(bundle: Bundle) -> tuple[str, str] | None:
    """(module, class) of the pipeline for the bundle; None for a model type sdrt cannot run."""
    ref = pipeline_ref(bundle)
    return None if ref is None else (ref.partition(":")[0], class_name(ref))


def pipeline_class_for(bundle: Bundle) -> type[DiffusionPipeline]:
    """The pipeline class for the bundle (a clear error for one sdrt cannot run)."""
    ref = pipeline_ref(bundle)
    if ref is None:
        raise BundleError(
            f"{bundle.path}: model_type {bundle.model_type!r} has no sdrt pipeline (sdrt runs "
            f"{', '.join(f.name for f in all_families() if f.runnable)}); upgrade sdrt or rebuild the bundle"
        )
    return resolve(ref)
