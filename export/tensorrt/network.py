"""TensorRT network and builder configuration: ONNX parsing (errors name the node and operator),
precision (strongly typed fp16 ONNX, or the FP16 builder flag where the module has it), optimization
level, workspace, refit and TensorRT-RTX compute-capability targets."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from sdrt.export.errors import ExportError, OptionError
from sdrt.runtime.engines.tensorrt.module import is_rtx

log = logging.getLogger(__name__)


class OnnxParseError(ExportError, RuntimeError):
    """TensorRT's ONNX parser refused the graph; the message names each failing node and operator."""


@dataclass(frozen=True)
class BuildSettings:
    """What goes into a builder config (and into the plan cache key as ``flags``)."""

    strongly_typed: bool
    fp16_flag: bool
    precision: str  # of the plan: fp16 | fp32
    optimization_level: int
    workspace_gb: float | None
    refittable: bool
    compute_capabilities: tuple[str, ...]  # "8.6", ... ; ("default",) = the module's own choice
    timing_cache: bool

    def flags(self) -> dict[str, Any]:
        return {
            "strongly_typed": self.strongly_typed,
            "fp16_flag": self.fp16_flag,
            "optimization_level": self.optimization_level,
            "workspace_gb": self.workspace_gb,
            "refittable": self.refittable,
            "compute_capabilities": list(self.compute_capabilities),
        }


def choose_precision(
    trt: ModuleType, onnx_precision: str, requested: str, component: str
) -> tuple[bool, bool, str]:
    """``(strongly_typed, fp16_flag, plan_precision)`` for an ONNX of ``onnx_precision``.

    The ONNX's own types win for strongly typed builds: an fp16 ONNX gives an fp16 plan. An fp32 ONNX
    asked for fp16 uses ``BuilderFlag.FP16`` where the module has it (full TensorRT); TensorRT-RTX has
    no such flag, so it builds the fp32 graph as it is and says so.
    """
    if requested not in ("fp16", "fp32"):
        raise OptionError(f"precision must be 'fp16' or 'fp32', got {requested!r}")
    if onnx_precision == "fp16" or requested == "fp32" or onnx_precision == requested:
        if onnx_precision != requested:
            log.warning(
                "%s: the ONNX is %s; its plan is %s (strongly typed)",
                component,
                onnx_precision,
                onnx_precision,
            )
        return True, False, onnx_precision
    if not is_rtx(trt) and hasattr(trt.BuilderFlag, "FP16"):
        return False, True, "fp16"
    log.warning(
        "%s: the ONNX is fp32 and %s has no FP16 builder flag: building fp32 "
        "(export the component with --precision fp16 for an fp16 plan)",
        component,
        trt.__name__,
    )
    return True, False, "fp32"


_CC = re.compile(r"^(?:sm_?)?(\d+)(?:\.(\d+))?$", re.IGNORECASE)


def compute_capabilities(trt: ModuleType, targets: Sequence[str] | None) -> list[Any]:
    """``trt.ComputeCapability`` members for ``targets`` like ``"8.6"``, ``"86"``, ``"sm120"``, ``"current"``."""
    if not targets:
        return []
    if not hasattr(trt, "ComputeCapability"):
        raise OptionError(
            f"--target-compute needs TensorRT-RTX; {trt.__name__} builds for the GPU it runs on "
            "(install 'sdrt[rtx]' and pass --trt-module tensorrt_rtx)"
        )
    members = trt.ComputeCapability.__members__
    known = sorted(n for n in members if n.startswith("SM"))
    result = []
    for target in targets:
        text = str(target).strip()
        if text.lower() == "current":
            result.append(members["CURRENT"])
            continue
        match = _CC.match(text)
        name = None
        if match:
            major, minor = match.groups()
            name = f"SM{major}{minor}" if minor is not None else f"SM{major}"
        if name not in members:
            pretty = ", ".join(f"{n[2:-1]}.{n[-1]}" for n in known)
            raise OptionError(
                f"unknown target compute capability {target!r}; {trt.__name__} supports {pretty}"
            )
        result.append(members[name])
    return result


def cc_label(member: Any) -> str:
    name = member.name
    return "current" if name == "CURRENT" else f"{name[2:-1]}.{name[-1]}"


def parse_onnx(
    trt: ModuleType, builder: Any, logger: Any, onnx_path: Path, *, strongly_typed: bool
) -> tuple[Any, Any]:
    """Parse ``onnx_path`` (external data is read from its folder) into a new network."""
    flags = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED) if strongly_typed else 0
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [describe_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise OnnxParseError(
            f"TensorRT ({trt.__name__} {trt.__version__}) cannot parse {onnx_path}:\n  "
            + "\n  ".join(errors or ["(no parser errors reported)"])
        )
    return network, parser


def describe_parser_error(error: Any) -> str:
    """``node 3 'custom_foo' (op FooBar): INVALID_NODE: <why>`` from a ``ParserError``."""
    node_name = _call(error, "node_name")
    operator = _call(error, "node_operator")
    if node_name is None and operator is None:
        return str(error)
    code = getattr(_call(error, "code"), "name", "")
    return f"node {_call(error, 'node')} {node_name!r} (op {operator}): {code}: {_call(error, 'desc')}"


def _call(obj: Any, attr: str) -> Any:
    method = getattr(obj, attr, None)
    try:
        return method() if callable(method) else None
    except Exception:  # noqa: BLE001 - older bindings raise on missing fields
        return None


def check_network_inputs(network: Any, inputs: Mapping[str, Mapping[str, Any]], component: str) -> None:
    """The parsed graph's inputs must be the manifest's (names and ranks)."""
    found = {}
    for index in range(network.num_inputs):
        tensor = network.get_input(index)
        found[tensor.name] = tuple(tensor.shape)
    if set(found) != set(inputs):
        raise OptionError(
            f"{component}: ONNX inputs {sorted(found)} differ from the manifest's {sorted(inputs)}"
        )
    for name, shape in found.items():
        if len(shape) != len(inputs[name]["shape"]):
            raise OptionError(
                f"{component}: ONNX input {name!r} has rank {len(shape)}, manifest says {inputs[name]['shape']}"
            )


def configure(trt: ModuleType, builder: Any, settings: BuildSettings, targets: Sequence[Any]) -> Any:
    """A builder config for ``settings`` (the optimization profile is added by the caller)."""
    config = builder.create_builder_config()
    if not 0 <= settings.optimization_level <= 5:
        raise OptionError(f"optimization level must be 0..5, got {settings.optimization_level}")
    config.builder_optimization_level = settings.optimization_level
    if settings.workspace_gb is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(settings.workspace_gb * (1 << 30)))
    if settings.fp16_flag:
        config.set_flag(trt.BuilderFlag.FP16)
    if settings.refittable:
        config.set_flag(trt.BuilderFlag.REFIT)
    if targets:
        config.num_compute_capabilities = len(targets)
        for index, target in enumerate(targets):
            if not config.set_compute_capability(target, index):
                raise OptionError(f"{trt.__name__} refused target compute capability {cc_label(target)}")
    if is_rtx(trt):
        log.debug("TensorRT-RTX: kernels are compiled for the target GPU when the plan is loaded")
    return config
