"""``Backend``: everything sdrt knows about one way of running a bundle's components, in one place.

A backend has one name that build and run both speak (``build-engine --backend NAME``,
``from_pretrained(bundle, provider=NAME)``) and the old spellings as aliases; the device it runs on and
the array module of its arrays; the manifest record field that holds its files and whether a bundle
has them; its availability probe and the extra that installs it; its engine (imported lazily); its
export stage (a ``"module:attribute"`` string that only the export side resolves: the runtime never
imports export); its precisions; and its line in ``sdrt inspect``.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from sdrt.runtime.bundle.bundle import Bundle
    from sdrt.runtime.bundle.records import ComponentRecord
    from sdrt.runtime.engines.base import Engine


class Backend:
    """One backend; a subclass per backend sets the class attributes and opens its engine."""

    name: ClassVar[str]
    title: ClassVar[str]  # what it is, for messages: "ONNX Runtime on the CPU"
    aliases: ClassVar[tuple[str, ...]] = ()  # other spellings that name it
    build_alias: ClassVar[str | None] = None  # the old ``--backend`` spelling shared by devices (``ort``)
    device: ClassVar[str] = "cpu"  # where it runs: "cpu" or "cuda"
    record_field: ClassVar[str | None] = (
        None  # the ComponentRecord field with its files (None: the ONNX graphs)
    )
    extra: ClassVar[str] = "sdrt[cpu]"  # pip install 'EXTRA' makes it available
    auto: ClassVar[bool] = True  # whether provider="auto" may pick it (in registry order)
    export_stage: ClassVar[str | None] = None  # "sdrt.export....:STAGE", resolved by the export side
    precisions: ClassVar[tuple[str, ...]] = ("fp32", "fp16")
    default_precision: ClassVar[str] = "fp32"
    graph_precision: ClassVar[str | None] = None  # the ONNX graphs' precision when fixed (OpenVINO: fp32)
    imports: ClassVar[tuple[str, ...]] = ("onnxruntime",)  # libraries it loads (imported before a timed load)
    device_fixed: ClassVar[bool] = (
        False  # whether the build writes its engines for its own device (ORT graphs)
    )

    # ---- where it runs -------------------------------------------------------------------------------------
    @property
    def on_gpu(self) -> bool:
        return self.device == "cuda"

    def array_module(self) -> ModuleType:
        """NumPy on the CPU, CuPy on the GPU."""
        return importlib.import_module("cupy" if self.on_gpu else "numpy")

    def available(self) -> bool:
        """Whether it can run here (its packages installed and, on a GPU, a device seen)."""
        raise NotImplementedError

    def unavailable_message(self) -> str:
        gpu = " and a CUDA GPU" if self.on_gpu else ""
        return f"provider {self.name!r} is not available here: it needs pip install '{self.extra}'{gpu}"

    def precision_default(self, build_device: str) -> str:
        """The precision ``build-engine`` builds at without ``--precision`` (``--device`` given)."""
        return self.default_precision

    # ---- its files in a bundle -----------------------------------------------------------------------------
    def has_files(self, record: ComponentRecord) -> bool:
        """Whether ``record`` holds this backend's files (their record; the files are checked at open)."""
        return self.record_field is None or bool(getattr(record, self.record_field))

    def can_open(self, bundle: Bundle, record: ComponentRecord) -> bool:
        """Whether the component of ``record`` can be opened on this backend (its files recorded and there)."""
        return self.has_files(record)

    def bundle_has(self, bundle: Bundle, names: Iterable[str]) -> bool:
        """Whether the bundle has this backend's files for every component of ``names``."""
        return all(name in bundle.components and self.has_files(bundle.components[name]) for name in names)

    def missing_message(self, bundle: Bundle, names: Iterable[str]) -> str:
        """Why the bundle cannot run on it, with the command that fixes it."""
        return (
            f"{bundle.path}: the bundle has no {self.title} for {', '.join(names)}; rebuild it with "
            f"build-engine {bundle.manifest.source.path} -o {bundle.path} --backend {self.name}, "
            "or use provider='cpu'"
        )

    def inspect_status(self, bundle: Bundle) -> str:
        """``sdrt inspect``'s line for this backend: "yes" or why not."""
        if not self.bundle_has(bundle, bundle.components):
            return f"no {self.title} in the bundle (build-engine --backend {self.name})"
        if not self.available():
            gpu = " and a CUDA GPU" if self.on_gpu else ""
            return f"not available here (pip install '{self.extra}'{gpu})"
        return "yes"

    def record_labels(self, record: ComponentRecord) -> list[str]:
        """How ``sdrt inspect`` lists this backend's files of ``record`` (none: nothing)."""
        return []

    def prepare_cache(self, bundle_dir: Path, record: ComponentRecord) -> None:
        """Open the component's engine once after a build, where this machine's cache then holds it (CPU
        engines: ONNX Runtime's *all*-level graph, OpenVINO's compiled model); else nothing."""

    # ---- running -------------------------------------------------------------------------------------------
    def open_engine(self, bundle: Bundle, name: str) -> Engine:
        """The engine of component ``name`` of ``bundle`` on this backend."""
        raise NotImplementedError

    def precision_label(self, engine: Engine | None, bundle: Bundle) -> str:
        """The precision the components run at (``sdrt bench``'s report), ``engine`` the UNet's."""
        return "/".join(sorted({c.precision for c in bundle.components.values()}))

    def __repr__(self) -> str:
        return f"<backend {self.name}: {self.title}>"
