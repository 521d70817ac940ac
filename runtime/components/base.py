"""``Component``: everything sdrt knows about one exported graph, in one class.

On the class (what the build uses): which model-folder part it comes from, its I/O (``graph``), the
range of each dim for the build's sizes (``dim_ranges``), the sizes it is traced at, the random
inputs it is validated on, what the traced graph computes from the diffusers / transformers module
(``forward``: tensor methods only, so this module needs no torch), and its TensorRT profile's opt
point. An instance is the runtime wrapper over the component's engine (``pipe.unet``...): it takes
and returns arrays of the engine's array module, splits a batch larger than the engine's range, and
hands back float32 copies (taken under the engine's lock where it has one, so concurrent pipeline calls
never read each other's outputs).

A pipeline call fixes the engines it runs when it starts (``engines_fixed``, ``pin_engine``): while it runs,
``component.engine`` in its thread is the engine it started with (or the one pinned for it, a LoRA merged
at the call's scale), whatever other threads swap in meanwhile (run-time LoRA, textual inversion: under
``ENGINE_CHANGES`` while they compute, ``ENGINE_SWAPS`` for the instant of the swap).

Adding a component is adding a subclass and a line in ``sdrt.runtime.components.COMPONENTS``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, ClassVar, Protocol

import numpy as np

from sdrt.runtime.bundle.manifest import Manifest, Shapes
from sdrt.runtime.bundle.records import ComponentRecord
from sdrt.runtime.engines.base import Engine, InitializerSource
from sdrt.runtime.errors import EngineError, InputError

from .graph import GraphSpec, Range

# held while an engine change (run-time LoRA, textual inversion) computes its new engines: one at a time
ENGINE_CHANGES = threading.RLock()
# held for the instant engines are swapped in, and while a call takes the engines it will run (a consistent set)
ENGINE_SWAPS = threading.RLock()
# the current call's engines by component (None outside a call): a context variable, so one per thread
_CALL_ENGINES: ContextVar[dict[Component, Engine] | None] = ContextVar("sdrt_call_engines", default=None)


def current_engines(components: Iterable[Component]) -> dict[Component, Engine]:
    """The engines ``components`` run now in this thread (take it under ``ENGINE_SWAPS`` for a consistent set);
    a part the caller replaced with its own callable (as diffusers allows) has no engine to fix."""
    return {component: component.engine for component in components if isinstance(component, Component)}


@contextlib.contextmanager
def engines_fixed(engines: dict[Component, Engine]) -> Iterator[None]:
    """Within: in this thread, each component runs the engine ``engines`` gives it (a nested call keeps the
    engines of the call around it)."""
    outer = _CALL_ENGINES.get()
    token = _CALL_ENGINES.set({**engines, **(outer or {})})
    try:
        yield
    finally:
        _CALL_ENGINES.reset(token)


def pin_engine(component: Component, engine: Engine) -> bool:
    """``component`` runs ``engine`` for the rest of the current call in this thread (False outside a call)."""
    engines = _CALL_ENGINES.get()
    if engines is None:
        return False
    engines[component] = engine
    return True


class ModelInfo(Protocol):
    """What a component class reads of a diffusers model folder (the export stage's ``ModelFolder``)."""

    @property
    def model_type(self) -> str: ...
    @property
    def classes(self) -> Mapping[str, tuple[str, str]]: ...  # folder part -> (library, class)
    @property
    def configs(self) -> Mapping[str, Mapping[str, Any]]: ...  # folder part -> its config.json


class Component:
    # the component's name in the bundle (``unet``, ``vae_decoder``...); an instance takes its record's
    name: str
    source: ClassVar[str]  # the model-folder part its weights come from (``unet``, ``vae``...)
    model_classes: ClassVar[tuple[str, ...]]  # the source classes it exports
    spatial: ClassVar[str | None] = None  # "latent" or "pixel": the units of its height/width dims
    guided: ClassVar[bool] = (
        False  # its batch doubles (``shapes.guidance_rows``) under classifier-free guidance
    )
    ort_model_type: ClassVar[str] = ""  # onnxruntime.transformers' name for its kind (unet, vae, clip)
    build_options: ClassVar[tuple[str, ...]] = ()  # the build-engine options that change its graph
    # outputs that are yes/no flags (0.0 or 1.0): one value for every random validation input is expected
    flag_outputs: ClassVar[tuple[str, ...]] = ()

    # ---- what the graph is: the build reads these -----------------------------------------------
    @classmethod
    def present_in(cls, model: ModelInfo) -> bool:
        """Whether the model has the part this component is exported from."""
        entry = model.classes.get(cls.source)
        return entry is not None and entry[1] in cls.model_classes

    @classmethod
    def variants(cls, model: ModelInfo) -> list[type[Component]]:
        """The components of this class the model has: itself, or one subclass per part (ControlNets)."""
        return [cls] if cls.present_in(model) else []

    @classmethod
    def serves(cls, name: str) -> bool:
        """Whether a bundle component called ``name`` is one of this class's."""
        return cls.name == name

    @classmethod
    def graph(
        cls, model: ModelInfo, ranges: Mapping[str, Range], trace: Mapping[str, int], **options: Any
    ) -> GraphSpec:
        """The graph's inputs and outputs with named dims, their ranges and trace sizes; ``options``: the
        values of its ``build_options``."""
        raise NotImplementedError

    @classmethod
    def dim_ranges(cls, shapes: Shapes, scale: int) -> dict[str, Range]:
        """The dim ranges for the build's sizes, in the component's own units; ``scale``: pixels per
        latent pixel. The batch ranges over prompt batches, doubled where guidance doubles it."""
        b0, b1 = shapes.batch
        if not cls.guided:
            batch = (b0, b1)
        else:  # prompt and negative prompt in one call; guidance off: the prompts alone
            rows = shapes.guidance_rows
            batch = (rows * b0, rows * b1) if shapes.static else (b0, rows * b1)
        ranges = {"batch": batch}
        if cls.spatial == "pixel":
            ranges |= {"height": shapes.height, "width": shapes.width}
        elif cls.spatial == "latent":
            ranges |= {
                "latent_height": (shapes.height[0] // scale, shapes.height[1] // scale),
                "latent_width": (shapes.width[0] // scale, shapes.width[1] // scale),
            }
        return ranges

    @classmethod
    def trace_sizes(cls, shapes: Shapes, scale: int, ranges: Mapping[str, Range]) -> dict[str, int]:
        """The default size, and batch 2 where the range allows (static builds: the one size)."""
        units = scale if cls.spatial == "latent" else 1
        sizes = {}
        for dim, (lo, hi) in ranges.items():
            if dim == "batch":
                sizes[dim] = lo if shapes.static else min(max(2, lo), hi)
            else:
                pixels = shapes.default[0] if dim.endswith("height") else shapes.default[1]
                sizes[dim] = min(max(pixels // units, lo), hi)
        return sizes

    @classmethod
    def profile_opt(cls, dim: str, lo: int, hi: int, shapes: Shapes, scale: int) -> int:
        """The opt point of a TensorRT profile: the smallest prompt batch (doubled where guidance doubles
        it), the default size in the dim's units."""
        if dim == "batch":
            preferred = shapes.guidance_rows * shapes.batch[0] if cls.guided else shapes.batch[0]
        elif dim.endswith(("height", "width")):
            pixels = shapes.default[0] if dim.endswith("height") else shapes.default[1]
            preferred = pixels // scale if dim.startswith("latent_") else pixels
        elif "_div" in dim:  # a UNet level's latent size (ControlNet residuals): the base's, divided
            base, divisor = dim.rsplit("_div", 1)
            pixels = shapes.default[0] if base.endswith("height") else shapes.default[1]
            preferred = -(-(pixels // scale) // int(divisor))
        else:
            return lo
        return min(max(preferred, lo), hi)

    @classmethod
    def random_inputs(cls, spec: GraphSpec, sizes: Mapping[str, int], seed: int) -> dict[str, np.ndarray]:
        """Fixed random inputs at ``sizes``, each in the range the pipeline feeds (for tracing and the
        validation gate); standard normal unless a subclass knows better."""
        rng = np.random.default_rng(seed)
        return {
            name: rng.standard_normal(size=t.concrete(sizes)).astype(np.float32)
            for name, t in spec.inputs.items()
        }

    @classmethod
    def forward(cls, model: Any, spec: GraphSpec, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """What the graph computes: the named outputs from the loaded model and the named input tensors."""
        raise NotImplementedError

    # ---- the runtime wrapper over the component's engine -----------------------------------------
    bundle: Any = None  # the opened Bundle and the provider, where open_component made it
    provider: str | None = None

    def __init__(self, engine: Engine, record: ComponentRecord, manifest: Manifest) -> None:
        self.name = record.name
        self._engine = engine
        self.record = record
        self.manifest = manifest
        self.xp = engine.xp
        self.batch_range = record.batch_range
        self._copied: Any = None  # CuPy: an event after the last copy of the engine's outputs

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {type(self.engine).__name__})"

    @property
    def engine(self) -> Engine:
        """The engine this component runs: in a pipeline call, the one the call fixed at its start."""
        engines = _CALL_ENGINES.get()
        pinned = engines.get(self) if engines is not None else None
        return self._engine if pinned is None else pinned

    @engine.setter
    def engine(self, engine: Engine) -> None:
        """Swap in ``engine`` for the calls that start from now on (hold ``ENGINE_SWAPS``)."""
        self._engine = engine

    def initializer_overrides(self, what: str, fix: str) -> InitializerSource:
        """The engine's replaced initializers (``what``: run-time LoRA, textual inversion), made on first use
        over the engine as loaded; an engine that cannot replace them is an EngineError naming ``fix``."""
        overrides: InitializerSource | None = getattr(self, "overrides", None)
        if overrides is None:
            try:
                overrides = self._engine.initializer_overrides()
            except EngineError as error:
                raise EngineError(f"{what}: {error}; {fix}") from None
            self.overrides = overrides
        return overrides

    def run(self, **feeds: Any) -> dict[str, Any]:
        """Run the engine on named inputs (a batch split into chunks the engine takes); float32 outputs."""
        feeds = {k: self.xp.asarray(v) for k, v in feeds.items()}
        batch = next(iter(feeds.values())).shape[0]
        if self.batch_range is None or batch <= self.batch_range[1]:
            return self._run_once(feeds)
        step = self.batch_range[1]
        batched = {
            k for k in feeds if k not in self.record.inputs or self.record.inputs[k].shape[:1] == ("batch",)
        }
        chunks = [
            self._run_once({k: v[i : i + step] if k in batched else v for k, v in feeds.items()})
            for i in range(0, batch, step)
        ]
        return {k: self.xp.concatenate([c[k] for c in chunks], axis=0) for k in chunks[0]}

    def _run_once(self, feeds: dict[str, Any]) -> dict[str, Any]:
        batch = next(iter(feeds.values())).shape[0]
        if self.batch_range is not None and 0 < batch < self.batch_range[0]:
            raise InputError(
                f"{self.name}: a batch of {batch} is below the engine's batch range "
                f"{self.batch_range[0]}..{self.batch_range[1]}; rebuild it with build-engine --batch {batch}"
            )
        # engines may hand back their own buffers (TensorRT, ORT's CUDA graphs): copy them, under the engine's
        # lock where it has one, so that no other thread's run overwrites them first
        engine = self.engine
        with getattr(engine, "lock", None) or contextlib.nullcontext():
            self._after_last_copy()
            outputs = engine.run(feeds)
            copies = {k: self.xp.array(v, dtype=np.float32, copy=True) for k, v in outputs.items()}
            if self.xp is not np:
                self._copied = self.xp.cuda.get_current_stream().record()
        return copies

    def _after_last_copy(self) -> None:
        """CuPy: order this run after the last run's copies, which another thread may have queued on another
        stream (the engine orders its work after the current stream only)."""
        if self._copied is not None:
            self.xp.cuda.get_current_stream().wait_event(self._copied)
