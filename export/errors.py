"""Errors of the export stage: ``ExportError`` and its kinds, in sdrt's one hierarchy (``SdrtError``,
see ``sdrt.runtime.errors``). Each message names the input at fault and says how to fix it."""

from __future__ import annotations

from sdrt.runtime.errors import SdrtError


class ExportError(SdrtError):
    """Base class: the build stopped and left any previous bundle untouched."""


class ModelFolderError(ExportError, ValueError):
    """The model input is not a usable diffusers folder (missing, single file, unsupported class...)."""


class CheckpointError(ModelFolderError):
    """A single-file checkpoint cannot be used: a pickle without --allow-pickle, a damaged file, weights that
    do not match the config folder, no config to read it with."""


class OptionError(ExportError, ValueError):
    """A build option is out of range (size not a multiple, min above max, unknown component...)."""


class OutputError(ExportError, OSError):
    """The output folder cannot be written."""


class ValidationError(ExportError):
    """An exported graph disagrees with the torch module beyond the threshold."""

    def __init__(
        self,
        component: str,
        output: str,
        metric: str,
        value: float,
        threshold: float,
        shape: dict,
        *,
        precision: str = "fp32",
        fixed: float | None = None,
    ):
        self.component = component
        self.output = output
        self.metric = metric
        self.value = value
        self.threshold = threshold
        self.shape = shape
        self.precision = precision
        relation = ">" if metric == "max_rel_err" else "<"
        loosened = (
            f" (loosened from {fixed:g} to the torch module's own fp32 rounding error)"
            if fixed is not None and fixed != threshold
            else ""
        )
        super().__init__(
            f"validation failed: component {component!r}, output {output!r} at shape {shape}: "
            f"{metric} = {value:.4g} {relation} threshold {threshold:g}{loosened}. The {precision} ONNX graph "
            f"does not match the torch module; nothing was written. {_HINTS.get(precision, _HINTS['fp32'])}"
        )


_HINTS = {
    "fp16": "Build fp32 (--precision fp32), keep the VAE in fp32 (--vae-fp32), or skip the gate with "
    "--no-validate at your own risk.",
    "bf16": "Build OpenVINO at fp32 (--precision fp32), or skip the gate with --no-validate at your own risk.",
    "fp32": "The graph is fp32 already, so this is not rounding: rebuild with --force (a graph damaged on "
    "disk), check the LoRA, ControlNet or --vae given, or report it with the model; --no-validate skips the "
    "gate at your own risk.",
}
