"""Trace one component's torch module to ONNX: ``trace_to_onnx(component, module, spec, path)``.

Exporter: the TorchScript exporter (``torch.onnx.export(dynamo=False)``, still present in torch
2.13). It traces diffusers' Python shape branches (``dim % up_factor``, ``shape[0] >= 64``) at the
trace size and turns ``dynamic_axes`` into named dims, and it is what the H100 measurements were
made with (matmul attention fused by ORT). The dynamo exporter needs ``torch.export`` to prove
those shape branches for every size, which diffusers' UNets and transformers' mask code do not
survive without per-model dynamic-shape hints, and it is several times slower to export.

What is traced is ``component.forward`` (the component class says what its graph computes) wrapped
in :class:`GraphModule`, which gives it the fixed input and output names of the spec. Clean-up,
fp16 and validation follow in ``sdrt.export.build``.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import torch
from torch import nn

from sdrt.runtime.components import Component
from sdrt.runtime.components.graph import GraphSpec

from .k_resampling import install_k_resampling
from .matmul_attention import install_matmul_attention

log = logging.getLogger(__name__)

DEFAULT_OPSET = 17


class GraphModule(nn.Module):
    """``component.forward`` over ``model`` as a module: positional inputs in the spec's order in,
    a tuple of outputs in the spec's order out."""

    def __init__(self, component: type[Component], model: nn.Module, spec: GraphSpec) -> None:
        super().__init__()
        self.component = component
        self.model = model
        self.spec = spec

    def forward(self, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.component.forward(self.model, self.spec, dict(zip(self.spec.inputs, tensors)))
        return tuple(outputs[name] for name in self.spec.outputs)


def trace_to_onnx(
    component: type[Component],
    model: nn.Module,
    spec: GraphSpec,
    path: Path,
    *,
    opset: int = DEFAULT_OPSET,
    device: str = "cpu",
) -> None:
    """Trace ``model`` (attention as plain matmuls) at ``spec.trace`` sizes and write the graph to
    ``path`` (``.onnx`` and, past 2 GB, the exporter's side files next to it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    install_matmul_attention(model)
    install_k_resampling(model)
    module = GraphModule(component, model, spec).to(device).eval()
    feeds = component.random_inputs(spec, spec.trace, seed=1)
    args = tuple(torch.from_numpy(feeds[name]).to(device) for name in spec.inputs)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TracerWarnings about shape branches: expected, see module doc
        torch.onnx.export(
            module,
            args,
            str(path),
            dynamo=False,
            input_names=list(spec.inputs),
            output_names=list(spec.outputs),
            dynamic_axes=spec.dynamic_axes(),
            opset_version=opset,
            do_constant_folding=True,
        )
    log.debug("%s: traced at %s into %s", component.name, spec.trace, path)
