"""``--backend ort``: graphs optimized offline for the chosen ONNX Runtime execution provider.

- cpu: ONNX Runtime's own graph optimizer at the *extended* level (fusions with CPU kernels),
  saved with ``SessionOptions.optimized_model_filepath``. The *all* level adds NCHWc layouts tied to
  the building machine's CPU, so it is left for the session at load time.
- cuda: ``onnxruntime.transformers.optimizer`` (model types unet / vae / clip: MultiHeadAttention,
  GroupNorm, BiasSplitGelu... fusions), from the fp32 graph, then fp16 when the build is fp16.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .onnx_cleanup import EXTERNAL_DATA_THRESHOLD

log = logging.getLogger(__name__)

_TRANSFORMERS_TYPES = {
    "text_encoder": "clip",
    "text_encoder_2": "clip",
    "unet": "unet",
    "vae_encoder": "vae",
    "vae_decoder": "vae",
}


def _onnx_bytes(path: Path) -> int:
    data = path.with_name(path.stem + ".onnx_data")
    return path.stat().st_size + (data.stat().st_size if data.exists() else 0)


def optimize_for_cpu(src: Path, dst: Path) -> dict[str, Any]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(dst)
    options.log_severity_level = 3
    if _onnx_bytes(src) > EXTERNAL_DATA_THRESHOLD:
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_file_name", dst.stem + ".onnx_data"
        )
        options.add_session_config_entry(
            "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
        )
    ort.InferenceSession(str(src), options, providers=["CPUExecutionProvider"])
    return {"provider": "cpu", "optimized": True, "optimizer": "onnxruntime", "level": "extended"}


def optimize_for_cuda(src_fp32: Path, dst: Path, *, component: str, precision: str) -> dict[str, Any]:
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    model_type = _TRANSFORMERS_TYPES[component]
    options = FusionOptions(model_type)
    model = optimize_model(
        str(src_fp32), model_type=model_type, opt_level=0, optimization_options=options, use_gpu=True
    )
    if precision == "fp16":
        from .fp16 import restore_fp32_shape_inputs

        model.convert_float_to_float16(keep_io_types=True)
        restore_fp32_shape_inputs(model.model)
        model.topological_sort()
    fused = {op: n for op, n in model.get_fused_operator_statistics().items() if n}
    model.save_model_to_file(
        str(dst), use_external_data_format=_onnx_bytes(src_fp32) > EXTERNAL_DATA_THRESHOLD
    )
    return {
        "provider": "cuda",
        "optimized": True,
        "optimizer": f"onnxruntime.transformers ({model_type})",
        "fused": fused,
    }


def optimize_for_ort(
    src: Path, dst: Path, *, component: str, provider: str, precision: str, src_fp32: Path | None = None
) -> dict[str, Any]:
    """Write the ORT-optimized graph ``dst`` for ``provider`` (cpu | cuda); returns the manifest record."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    if provider == "cuda":
        record = optimize_for_cuda(src_fp32 or src, dst, component=component, precision=precision)
    else:
        record = optimize_for_cpu(src, dst)
    record["bytes"] = _onnx_bytes(dst)
    log.debug("%s: ORT graph for %s written to %s", component, provider, dst)
    return record
