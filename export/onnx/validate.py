"""Validation gate: the ONNX graph in ONNX Runtime against the torch module, on fixed random inputs.

Figures (both per output, the worst over outputs and shapes is recorded):
- fp32: ``max_rel_err = max|onnx - torch| / max|torch|`` (the largest error relative to the largest
  reference magnitude, so near-zero reference values do not blow it up); passes at <= 1e-4.
- fp16: ``psnr_db = 10·log10(max|torch|² / mean((onnx - torch)²))`` against the fp32 torch output;
  passes at >= 35 dB.
- bf16 (OpenVINO's inference precision): the same PSNR; passes at >= 30 dB.

The fixed thresholds fit a well-conditioned model. Some correct models are not: a strong LoRA makes
attention nearly one-hot, and the torch module's own fp32 output then differs from its float64 output by
more than 1e-4. So each case also runs the torch module in float64, and the gate allows the graph
``NOISE_FACTOR`` times the torch module's own fp32 rounding error (in the metric's units: 10x, or 20 dB)
where that is looser than the fixed threshold, but never past ``LOOSEST`` (a zeroed or damaged weight moves
outputs far more). The same rule holds for every graph: plain, merged LoRA, ControlNet, fp16, bf16.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sdrt.export.errors import ModelFolderError, ValidationError
from sdrt.runtime.components import Component
from sdrt.runtime.components.graph import GraphSpec

log = logging.getLogger(__name__)

FP32_MAX_REL_ERR = 1e-4
FP16_MIN_PSNR_DB = 35.0
BF16_MIN_PSNR_DB = 30.0  # bf16 keeps 8 mantissa bits to fp16's 11: about 18 dB less per operation
THRESHOLDS = {
    "fp32": ("max_rel_err", FP32_MAX_REL_ERR),
    "fp16": ("psnr_db", FP16_MIN_PSNR_DB),
    "bf16": ("psnr_db", BF16_MIN_PSNR_DB),
}
NOISE_FACTOR = 10.0  # how far past torch's own fp32 rounding error a graph may be (10x; 20 dB)
# never looser than these (a tenth of the output's peak): a zeroed or damaged weight moves outputs further
LOOSEST = {"max_rel_err": 0.1, "psnr_db": 20.0}


def max_relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """``max|actual - reference| / max|reference|``."""
    actual = actual.astype(np.float64)
    reference = reference.astype(np.float64)
    scale = float(np.abs(reference).max())
    diff = float(np.abs(actual - reference).max())
    if not np.isfinite(diff):
        return math.inf
    return diff / scale if scale > 0 else diff


def psnr_db(actual: np.ndarray, reference: np.ndarray) -> float:
    """``10·log10(max|reference|² / mean((actual - reference)²))``; inf when equal."""
    actual = actual.astype(np.float64)
    reference = reference.astype(np.float64)
    mse = float(np.mean((actual - reference) ** 2))
    if not np.isfinite(mse):
        return -math.inf
    peak = float(np.abs(reference).max())
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(max(peak, 1e-12) ** 2 / mse)


@dataclass
class Case:
    """One validation shape: its dim values, the inputs, and the torch outputs."""

    values: dict[str, int]
    feeds: dict[str, np.ndarray]
    reference: dict[str, np.ndarray]
    exact: dict[str, np.ndarray] = field(default_factory=dict)  # the torch module in float64, where it runs


def allowed_threshold(precision: str, reference: np.ndarray, exact: np.ndarray | None) -> float:
    """The threshold of one output: the fixed one of ``precision``, or ``NOISE_FACTOR`` times the torch
    module's own fp32 rounding error (``reference`` against ``exact``, its float64 output) where that is
    looser, within ``LOOSEST``."""
    metric, fixed = THRESHOLDS[precision]
    if exact is None:
        return fixed
    if metric == "psnr_db":
        noise_db = psnr_db(reference, exact) - 20.0 * math.log10(NOISE_FACTOR)
        return min(fixed, max(LOOSEST[metric], noise_db))
    return max(fixed, min(LOOSEST[metric], NOISE_FACTOR * max_relative_error(reference, exact)))


def reference_cases(
    component: type[Component],
    model: Any,
    spec: GraphSpec,
    sizes: list[dict[str, int]],
    *,
    device: str = "cpu",
) -> list[Case]:
    """Run the torch model (fp32, the libraries' default attention) on fixed random inputs at each size."""
    import torch

    from .matmul_attention import restore_default_attention
    from .trace import GraphModule

    module = GraphModule(component, restore_default_attention(model), spec).to(device).eval()
    cases = []
    for i, values in enumerate(sizes):
        feeds = component.random_inputs(spec, values, seed=100 + i)
        args = [torch.from_numpy(feeds[name]).to(device) for name in spec.inputs]
        with torch.no_grad():
            out = module(*args)
        reference = {name: o.detach().float().cpu().numpy() for name, o in zip(spec.outputs, out)}
        varying = {k: v for k, v in reference.items() if k not in component.flag_outputs}
        _check_not_degenerate(component.name, varying, values)
        cases.append(Case(dict(values), feeds, reference))
    _add_exact_outputs(module, spec, cases, device)
    return cases


def _add_exact_outputs(module: Any, spec: GraphSpec, cases: list[Case], device: str) -> None:
    """Each case's outputs of the module in float64 (``Case.exact``): the model's own fp32 rounding error.
    The module is converted in place and back (fp32 -> fp64 -> fp32 is exact), so no copy is held."""
    import torch

    try:
        module.to(torch.float64)
        for case in cases:
            tensors = [torch.from_numpy(case.feeds[name]).to(device) for name in spec.inputs]
            args = [t.double() if t.is_floating_point() else t for t in tensors]
            with torch.no_grad():
                out = module(*args)
            exact = {name: o.detach().double().cpu().numpy() for name, o in zip(spec.outputs, out)}
            case.exact = {name: a for name, a in exact.items() if np.isfinite(a).all()}
    except (RuntimeError, TypeError) as error:  # a forward that fixes fp32 somewhere: the fixed thresholds
        log.info("%s: no float64 reference (%s); fixed validation thresholds", spec.outputs, error)
        for case in cases:
            case.exact = {}
    finally:
        module.to(torch.float32)


def _check_not_degenerate(component: str, reference: dict[str, np.ndarray], values: dict[str, int]) -> None:
    """A torch output that is constant or not finite would pass any comparison: refuse the model instead."""
    for name, array in reference.items():
        if not np.isfinite(array).all():
            problem = "NaN or Inf"
        elif array.size > 1 and float(np.ptp(array)) == 0.0:
            problem = f"the same value ({float(array.flat[0]):g}) everywhere"
        else:
            continue
        raise ModelFolderError(
            f"the torch {component} gives {problem} in {name!r} at {values}: its weights are zeroed, missing or "
            "broken, so the exported graph cannot be validated; check the model folder"
        )


def validate_onnx(
    onnx_path: Path,
    cases: list[Case],
    *,
    component: str,
    precision: str,
    providers: list[str] | None = None,
    raise_on_failure: bool = True,
) -> dict[str, Any]:
    """Compare the graph's outputs in ONNX Runtime with the torch references (see ``compare_outputs``)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(onnx_path), options, providers=providers or ["CPUExecutionProvider"])
    return compare_outputs(
        lambda names, feeds: session.run(names, feeds),
        cases,
        component=component,
        precision=precision,
        provider=session.get_providers()[0],
        raise_on_failure=raise_on_failure,
    )


def compare_outputs(
    run: Callable[[list[str], dict[str, np.ndarray]], list[np.ndarray]],
    cases: list[Case],
    *,
    component: str,
    precision: str,
    provider: str,
    raise_on_failure: bool = True,
) -> dict[str, Any]:
    """``run(names, feeds)`` against the torch references at every case; raise :class:`ValidationError`
    on failure. fp32 is held to a relative error, fp16 and bf16 to a PSNR (``THRESHOLDS``), each loosened
    to the model's own fp32 noise where that is larger (``allowed_threshold``)."""
    metric, threshold = THRESHOLDS[precision]
    psnr = metric == "psnr_db"
    per_output: dict[str, float] = {}
    noise: dict[str, float] = {}
    worst: tuple[float, str, dict, float] | None = None
    for case in cases:
        names = list(case.reference)
        for name, actual in zip(names, run(names, case.feeds)):
            reference, exact = case.reference[name], case.exact.get(name)
            if actual.shape != reference.shape:
                raise ValidationError(
                    component, name, "shape", math.inf, 0.0, case.values, precision=precision
                )
            value = psnr_db(actual, reference) if psnr else max_relative_error(actual, reference)
            allowed = allowed_threshold(precision, reference, exact)
            if exact is not None:
                noise[name] = max(noise.get(name, 0.0), max_relative_error(reference, exact))
            previous = per_output.get(name)
            per_output[name] = value if previous is None else (min if psnr else max)(previous, value)
            if worst is None or _margin(value, allowed, psnr) > _margin(worst[0], worst[3], psnr):
                worst = (value, name, case.values, allowed)
            failed = value < allowed if psnr else not value <= allowed
            if failed and raise_on_failure:
                raise ValidationError(
                    component, name, metric, value, allowed, case.values, precision=precision, fixed=threshold
                )
    assert worst is not None
    log.info("%s: %s %.3g (threshold %g) at %d shapes", component, metric, worst[0], worst[3], len(cases))
    return {
        "metric": metric,
        "value": _json_float(worst[0]),
        "threshold": threshold,
        "allowed": worst[3],
        "fp32_noise": noise,
        "worst_output": worst[1],
        "outputs": {k: _json_float(v) for k, v in per_output.items()},
        "shapes": [c.values for c in cases],
        "provider": provider,
    }


def _margin(value: float, allowed: float, psnr: bool) -> float:
    """How close ``value`` is to failing (larger: closer), comparable across cases with different thresholds."""
    return allowed - value if psnr else value / allowed


def _json_float(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)
