"""The engine bundle's ``manifest.json``: the runtime's only source of truth about a bundle.

Torch-free. The export stage writes it (``sdrt.export.bundle``); the runtime and the TensorRT
builder read it with :func:`load_manifest`. The raw dict stays available as ``Manifest.data``
(and ``ComponentRecord.data``) for fields added later.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
MODEL_TYPES = ("sd1", "sd2", "sdxl", "inpaint", "sdxl-inpaint", "uncond")


class ManifestError(ValueError):
    """A bundle's manifest is missing, unreadable, or from an incompatible sdrt."""


@dataclass(frozen=True)
class TensorInfo:
    """One graph input or output: its dtype name (NumPy spelling) and shape (ints and dim names)."""

    dtype: str
    shape: list[int | str]


@dataclass(frozen=True)
class ComponentRecord:
    """One exported component (text_encoder, text_encoder_2, unet, vae_encoder, vae_decoder)."""

    name: str
    data: dict[str, Any]

    @property
    def onnx(self) -> str:
        return self.data["onnx"]

    @property
    def precision(self) -> str:
        return self.data["precision"]

    @property
    def inputs(self) -> dict[str, TensorInfo]:
        return {k: TensorInfo(v["dtype"], list(v["shape"])) for k, v in self.data["inputs"].items()}

    @property
    def outputs(self) -> dict[str, TensorInfo]:
        return {k: TensorInfo(v["dtype"], list(v["shape"])) for k, v in self.data["outputs"].items()}

    @property
    def dims(self) -> dict[str, tuple[int, int]]:
        return {k: (int(v[0]), int(v[1])) for k, v in self.data.get("dims", {}).items()}

    @property
    def static(self) -> bool:
        return bool(self.data.get("static", False))

    @property
    def ort(self) -> dict[str, Any] | None:
        return self.data.get("ort")

    @property
    def plans(self) -> dict[str, Any]:
        return self.data.get("plans", {})


@dataclass(frozen=True)
class Manifest:
    """A loaded ``manifest.json`` with typed accessors for what the runtime needs."""

    bundle_dir: Path
    data: dict[str, Any]
    components: dict[str, ComponentRecord] = field(default_factory=dict)

    @property
    def model_type(self) -> str:
        return self.data["model_type"]

    @property
    def prediction_type(self) -> str:
        return self.data.get("prediction_type", "epsilon")

    @property
    def vae(self) -> dict[str, Any] | None:
        return self.data.get("vae")

    @property
    def vae_scale_factor(self) -> int:
        vae = self.vae
        return int(vae["scale_factor"]) if vae else 1

    @property
    def unet(self) -> dict[str, Any]:
        return self.data["unet"]

    @property
    def text(self) -> dict[str, Any] | None:
        return self.data.get("text")

    @property
    def shapes(self) -> dict[str, Any]:
        return self.data["shapes"]

    @property
    def default_size(self) -> tuple[int, int]:
        """The default image (height, width): the UNet's sample size times the VAE's scale factor."""
        size = self.unet["sample_size"]
        height, width = (size, size) if isinstance(size, int) else size
        return height * self.vae_scale_factor, width * self.vae_scale_factor

    def path(self, relative: str) -> Path:
        """A file of the bundle, from its manifest-relative name."""
        return self.bundle_dir / relative

    def component(self, name: str) -> ComponentRecord:
        try:
            return self.components[name]
        except KeyError:
            raise ManifestError(
                f"bundle {self.bundle_dir} has no component {name!r} (it has {sorted(self.components)}); "
                f"rebuild it with: build-engine MODEL_DIR -o {self.bundle_dir} --components ... {name}"
            ) from None


def manifest_from_dict(data: dict[str, Any], bundle_dir: str | Path) -> Manifest:
    """Wrap an already-parsed manifest dict, checking its format version."""
    bundle_dir = Path(bundle_dir)
    version = data.get("format_version")
    if not isinstance(version, int):
        raise ManifestError(
            f"{bundle_dir / MANIFEST_NAME} has no integer format_version; it was not written by "
            f"build-engine. Rebuild the bundle with: build-engine MODEL_DIR -o {bundle_dir}"
        )
    if version > FORMAT_VERSION:
        raise ManifestError(
            f"{bundle_dir / MANIFEST_NAME} has format_version {version}, newer than this sdrt reads "
            f"({FORMAT_VERSION}); upgrade sdrt (pip install -U sdrt), or rebuild the bundle with this "
            f"version: build-engine MODEL_DIR -o {bundle_dir} --force"
        )
    if version < FORMAT_VERSION:
        raise ManifestError(
            f"{bundle_dir / MANIFEST_NAME} has format_version {version}, older than this sdrt reads "
            f"({FORMAT_VERSION}); rebuild it with: build-engine MODEL_DIR -o {bundle_dir} --force"
        )
    components = {name: ComponentRecord(name, rec) for name, rec in data.get("components", {}).items()}
    return Manifest(bundle_dir=bundle_dir, data=data, components=components)


def load_manifest(bundle_dir: str | Path) -> Manifest:
    """Read ``bundle_dir/manifest.json``; errors name the file and say how to fix it."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST_NAME
    if not bundle_dir.is_dir():
        raise ManifestError(
            f"engine bundle {bundle_dir} does not exist or is not a folder; "
            f"build one with: build-engine MODEL_DIR -o {bundle_dir}"
        )
    if not path.is_file():
        raise ManifestError(
            f"{bundle_dir} is not an engine bundle (no {MANIFEST_NAME}); "
            f"build one with: build-engine MODEL_DIR -o {bundle_dir}"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ManifestError(
            f"cannot read {path}: {err}; rebuild the bundle with: build-engine MODEL_DIR -o {bundle_dir} --force"
        ) from err
    if not isinstance(data, dict):
        raise ManifestError(f"{path} does not hold a JSON object; rebuild with build-engine")
    return manifest_from_dict(data, bundle_dir)


def write_manifest(bundle_dir: str | Path, data: dict[str, Any]) -> Path:
    """Write ``manifest.json`` (through a temporary file and a rename, so readers never see half of it)."""
    path = Path(bundle_dir) / MANIFEST_NAME
    tmp = path.with_name(MANIFEST_NAME + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
