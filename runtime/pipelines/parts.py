"""A pipeline's parts (diffusers' constructor keywords): which one is which engine, the parts and loading
options sdrt refuses or ignores (with the reason), and ``PartLoader``: a part made of several engines."""

from __future__ import annotations

from typing import Any, Protocol

from sdrt.runtime.bundle.bundle import Bundle
from sdrt.runtime.components import Component
from sdrt.runtime.errors import InputError, InputTypeError


class PartLoader(Protocol):
    """A part made of several engines (``several_engines_part.SeveralEnginesPart``: the ControlNets, adapters)."""

    @property
    def name(self) -> str: ...

    def components(self, bundle: Bundle) -> tuple[str, ...]: ...

    def from_engines(self, engines: dict[str, Component]) -> Any: ...

    def engines(self, value: Any) -> dict[str, Component]: ...


# a pipeline part that is one engine -> the engine's name
ENGINE_PARTS = {
    "unet": "unet",
    "transformer": "transformer",
    "text_encoder": "text_encoder",
    "bert": "text_encoder",  # LDMTextToImagePipeline's name for its text encoder
    "text_encoder_2": "text_encoder_2",
    "depth_estimator": "depth_estimator",
    "safety_checker": "safety_checker",
    "image_encoder": "image_encoder",  # image variation, unCLIP, Paint-by-Example
}
# diffusers' loading options that mean nothing for a bundle: accepted, with a warning that says why
LOAD_OPTIONS_WITHOUT_EFFECT = {
    "torch_dtype": "the precision is fixed when the bundle is built (build-engine --precision)",
    "variant": "a bundle holds one set of engines",
    "use_safetensors": "a bundle holds ONNX graphs or TensorRT plans",
    "low_cpu_mem_usage": "engines load as built",
    "device_map": "the provider chooses the device (provider=...)",
    "local_files_only": "a bundle is a local folder",
}
_NOT_RUN = {
    "safety_checker": "this pipeline runs no safety checker (the SD 1.x/2.x ones do)",
    "feature_extractor": "this pipeline runs no safety checker or IP-Adapter, which the feature extractor feeds",
    "image_encoder": "the text-to-image pipelines open the bundle's image_encoder engine themselves (IP-Adapter)",
}


def check_part(pipeline: str, name: str, value: Any) -> None:
    """Refuse a torch-side module, or a part sdrt does not run, in a pipeline's constructor (a transformers
    tokenizer is fine: it gives the ids sdrt's does; a diffusers scheduler gets the scheduler slot's error)."""
    if name in _NOT_RUN and value is not None:
        raise InputError(f"{pipeline}(..., {name}=...): {_NOT_RUN[name]}; pass {name}=None")
    library = type(value).__module__.split(".")[0]
    if library in ("diffusers", "transformers", "torch") and name not in (
        "scheduler",
        "tokenizer",
        "tokenizer_2",
    ):
        raise InputTypeError(
            f"{pipeline}(..., {name}={type(value).__name__}(...)): a {library} module cannot run in sdrt, which runs "
            f"engines exported by build-engine; load the pipeline with {pipeline}.from_pretrained(bundle)"
        )
