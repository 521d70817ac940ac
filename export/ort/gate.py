"""The validation gate of the fused CUDA graphs (``build-engine --backend ort --device cuda``).

Where ONNX Runtime has the CUDA provider, the fused graph itself runs against the torch references
(``validate_onnx``: fp16 PSNR >= 35 dB, fp32 relative error <= 1e-4) and the record says ``passed``.

Without it the fused graph cannot run at all (NhwcConv, GroupNorm, SkipGroupNorm, BiasSplitGelu and
BiasAdd have CUDA kernels only), so the gate is recorded as ``pending`` ("needs
CUDAExecutionProvider") and nothing is claimed for it. What the CPU can check is checked and recorded
beside it under ``cpu_checks``, against the same torch references:
- ``cpu_fusions``: the same build (sdrt's attention fusion, the optimizer, the Cast clean-up, the fp16
  conversion) with only the fusions that have CPU kernels (unpacked MultiHeadAttention, LayerNorm,
  SkipLayerNorm), at the build's precision and threshold;
- ``emulated_fusions``: the fp32 build with every fusion and the layout clean-up, its CUDA-only
  operators rewritten as standard ops (``emulate``), at the fp32 threshold: the fused graph's
  wiring. Not checked here: the CUDA kernels themselves and the packed attention layouts of fp16.
A failure there fails the build, as it would on the GPU.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sdrt.runtime.components import Component

log = logging.getLogger(__name__)

PENDING_REASON = "needs CUDAExecutionProvider"


def gate_cuda_graph(
    measured: dict[str, Any] | None,
    *,
    component: type[Component],
    precision: str,
    fp32_graph: Path,
    cases: list,
    scratch: Path,
) -> dict[str, Any]:
    """The ``validation`` entry of a component's CUDA ``ort`` record (see the module docstring), from
    what ``ort_stage`` measured (``None`` where the CUDA provider is missing)."""
    if measured and measured.get("provider") == "CUDAExecutionProvider":
        return {"status": "passed", **measured}
    scratch.mkdir(parents=True, exist_ok=True)
    checks = {
        "cpu_fusions": _cpu_fusions_check(component, precision, fp32_graph, cases, scratch),
        "emulated_fusions": _emulated_check(component, fp32_graph, cases, scratch),
    }
    for path in scratch.glob(f"{component.name}.check.onnx*"):
        path.unlink()
    log.warning(
        "%s: the fused CUDA graph's validation gate is PENDING (%s): it was not run here. On the CPU: the "
        "same build with only CPU-runnable fusions passed (%s %.4g, threshold %g); the fp32 build with every "
        "fusion, its CUDA-only operators emulated by standard ops, passed (%s %.3g, threshold %g)",
        component.name,
        PENDING_REASON,
        *(_figures(checks["cpu_fusions"])),
        *(_figures(checks["emulated_fusions"])),
    )
    return {"status": "pending", "reason": PENDING_REASON, "cpu_checks": checks}


def _figures(check: dict[str, Any]) -> tuple[str, float, float]:
    value = check["value"]
    return check["metric"], value if isinstance(value, float) else float("inf"), check["threshold"]


def _cpu_fusions_check(
    component: type[Component], precision: str, fp32_graph: Path, cases: list, scratch: Path
) -> dict:
    """The build at ``precision`` with only the fusions that have CPU kernels, run on the CPU."""
    from sdrt.export.onnx.validate import validate_onnx

    from .optimize import optimize_for_cuda

    variant = scratch / f"{component.name}.check.onnx"
    counts = optimize_for_cuda(
        fp32_graph, variant, component=component, precision=precision, cpu_check_variant=True
    )
    check = validate_onnx(
        variant,
        cases,
        component=f"{component.name} (fused graph, CPU-runnable fusions)",
        precision=precision,
        providers=["CPUExecutionProvider"],
    )
    return {
        **check,
        "status": "passed",
        "graph": "same build without the CUDA-only fusions (GroupNorm, SkipGroupNorm, NhwcConv, "
        "BiasSplitGelu, BiasAdd, packed QKV/KV)",
        "fused": counts["fused"],
    }


def _emulated_check(component: type[Component], fp32_graph: Path, cases: list, scratch: Path) -> dict:
    """The fp32 build with every fusion, CUDA-only operators rewritten as standard ops, run on the CPU."""
    import onnx

    from sdrt.export.onnx.validate import validate_onnx

    from .emulate import emulate_cuda_only_ops
    from .optimize import optimize_for_cuda, save_graph

    variant = scratch / f"{component.name}.check.onnx"
    counts = optimize_for_cuda(fp32_graph, variant, component=component, precision="fp32")
    model = onnx.load(str(variant), load_external_data=True)
    emulated = emulate_cuda_only_ops(model)
    save_graph(model, variant)
    del model
    check = validate_onnx(
        variant,
        cases,
        component=f"{component.name} (fused fp32 graph, CUDA-only ops emulated)",
        precision="fp32",
        providers=["CPUExecutionProvider"],
    )
    return {
        **check,
        "status": "passed",
        "graph": "the fp32 build with every fusion (unpacked attention); CUDA-only operators rewritten as "
        "standard ONNX ops (export/ort/emulate.py): checks the fused graph's wiring, not the CUDA kernels",
        "fused": counts["fused"],
        "emulated": emulated,
    }
