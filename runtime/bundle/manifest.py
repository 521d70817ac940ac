"""The engine bundle's ``manifest.json``: the only code that reads and writes it.

Typed (dataclasses, defaults here and nowhere else), sealed (``manifest.sha256`` beside it: an edited
manifest is refused, since it would change the images silently) and versioned (``FORMAT_VERSION``): the runtime
reads a bundle with :func:`read_manifest`, which refuses another format version with the command
that rebuilds it; ``build-engine`` reads the bundle it replaces with :func:`read_previous_manifest`
(lenient: anything unreadable means "rebuild everything") and writes with :func:`write_manifest`.
Torch-free; the per-component records are in ``records``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sdrt.runtime.errors import BundleError, BundleNotFoundError

from .records import ComponentRecord, Range

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

    Record = TypeVar("Record", bound=DataclassInstance)

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
SEAL_NAME = "manifest.sha256"  # the sha256 of manifest.json's bytes: an edited manifest is refused
_UNSEALED: set[str] = set()  # bundles already warned about


@dataclass
class Source:
    path: str
    weights_sha256: str | None = None  # of every exported component's weights and config
    vae: str | None = None  # the VAE folder build-engine --vae took instead of the model's own
    preview_vae: str | None = None  # the tiny VAE folder build-engine --preview-vae exported beside it
    embeddings: list[str] | None = None  # build-engine --textual-inversion FILE[:TOKEN], as given
    loras: list[str] | None = None  # build-engine --lora FILE[:SCALE], fused into the weights
    controlnets: list[str] | None = None  # build-engine --controlnet DIR[:NAME], as given
    ip_adapter: str | None = None  # build-engine --ip-adapter FILE
    image_encoder: str | None = None  # build-engine --image-encoder DIR
    adapters: list[str] | None = None  # build-engine --adapter DIR[:NAME], as given
    checkpoint: dict[str, Any] | None = None  # a single-file source: path, bytes, sha256, config folder


@dataclass
class ControlNetInfo:
    """One ControlNet component of the bundle (in the order of build-engine's --controlnet options)."""

    path: str  # the ControlNetModel folder it was exported from
    global_pool_conditions: bool = False  # diffusers then runs it in guess mode


@dataclass
class AdapterInfo:
    """One T2I-Adapter component of the bundle (in the order of build-engine's --adapter options)."""

    path: str  # the T2IAdapter folder it was exported from
    downscale_factor: int = 8  # the image's height and width must be multiples of it


@dataclass
class UNetInfo:
    class_name: str = "UNet2DConditionModel"
    in_channels: int = 4
    out_channels: int = 4
    sample_size: int | list[int] = 64
    addition_embed_type: str | None = None
    time_cond_proj_dim: int | None = None
    num_class_embeds: int | None = (
        None  # a class-conditional UNet2DModel's classes (its `class_labels` input)
    )
    # build-engine --deepcache BRANCH: the branch the unet_deepcache_* engines split the UNet at (None: none)
    deepcache_branch: int | None = None
    # build-engine --ip-adapter: the UNet's image-attention layers (diffusers' processor names), in the order of
    # its ip_adapter_scale input (None: no IP-Adapter)
    ip_adapter_layers: list[str] | None = None

    @property
    def sample_hw(self) -> tuple[int, int]:
        size = self.sample_size
        return (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))


@dataclass
class VaeInfo:
    class_name: str = "AutoencoderKL"  # or AutoencoderTiny (TAESD); "class" in the JSON, as the UNet's
    scaling_factor: float = 0.18215
    shift_factor: float | None = None
    latent_channels: int = 4
    scale_factor: int = 8  # image pixels per latent pixel
    force_upcast: bool = False


@dataclass
class TextInfo:
    max_length: int = 77
    tokenizers: list[str] = field(default_factory=lambda: ["tokenizer"])
    force_zeros_for_empty_prompt: bool | None = None
    requires_aesthetics_score: bool | None = None
    clip_skip: int | None = None  # the text encoders also return the hidden states diffusers' clip_skip takes


@dataclass
class Shapes:
    """The sizes the engines were built for, in image pixels; ``batch`` counts prompts."""

    batch: Range
    height: Range
    width: Range
    default: tuple[int, int]  # (height, width) a call gets when it names none
    size_multiple: int = 8
    static: bool = False
    #: UNet rows per prompt under guidance: 2, or 3 for InstructPix2Pix (written only when not 2)
    guidance_rows: int = 2

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "batch": list(self.batch),
            "height": list(self.height),
            "width": list(self.width),
            "default": list(self.default),
            "size_multiple": self.size_multiple,
            "static": self.static,
        }
        if self.guidance_rows != 2:
            data["guidance_rows"] = self.guidance_rows
        return data


@dataclass
class Manifest:
    """What a bundle holds: the model, the sizes, and one record per exported component."""

    model_type: str
    pipeline_class: str
    source: Source
    shapes: Shapes
    unet: UNetInfo = field(default_factory=UNetInfo)
    vae: VaeInfo | None = None
    text: TextInfo | None = None
    prediction_type: str = "epsilon"
    backend: str = "ort"
    components: dict[str, ComponentRecord] = field(default_factory=dict)
    controlnets: dict[str, ControlNetInfo] = field(default_factory=dict)  # component name -> its info
    adapters: dict[str, AdapterInfo] = field(default_factory=dict)  # component name -> its info
    tools: dict[str, str] = field(default_factory=dict)
    sdrt_version: str = "unknown"
    format_version: int = FORMAT_VERSION

    @property
    def vae_scale_factor(self) -> int:
        """Image pixels per latent pixel: the VAE's, or 1 for a pixel-space (unconditional) model."""
        return self.vae.scale_factor if self.vae is not None else 1

    @property
    def default_size(self) -> tuple[int, int]:
        """(height, width): the UNet's sample size times the VAE's scale factor."""
        height, width = self.unet.sample_hw
        return height * self.vae_scale_factor, width * self.vae_scale_factor

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        unet = dict(data.get("unet") or {})
        unet["class_name"] = unet.pop("class", UNetInfo.class_name)
        shapes = data["shapes"]
        return cls(
            model_type=data["model_type"],
            pipeline_class=data.get("pipeline_class", ""),
            source=_known(Source, data.get("source", {"path": "?"})),
            shapes=Shapes(
                batch=tuple(shapes["batch"]),
                height=tuple(shapes["height"]),
                width=tuple(shapes["width"]),
                default=tuple(shapes["default"]),
                size_multiple=int(shapes.get("size_multiple", 8)),
                static=bool(shapes.get("static", False)),
                guidance_rows=int(shapes.get("guidance_rows", 2)),
            ),
            unet=_known(UNetInfo, unet),
            vae=_vae_info(data["vae"]) if data.get("vae") else None,
            text=_known(TextInfo, data["text"]) if data.get("text") else None,
            prediction_type=data.get("prediction_type", "epsilon"),
            backend=data.get("backend", "ort"),
            components={
                n: ComponentRecord.from_json(n, r) for n, r in (data.get("components") or {}).items()
            },
            controlnets={n: _known(ControlNetInfo, c) for n, c in (data.get("controlnets") or {}).items()},
            adapters={n: _known(AdapterInfo, c) for n, c in (data.get("adapters") or {}).items()},
            tools=dict(data.get("tools") or {}),
            sdrt_version=data.get("sdrt_version", "unknown"),
            format_version=data["format_version"],
        )

    def to_json(self) -> dict[str, Any]:
        unet = {
            "class": self.unet.class_name,
            **{k: v for k, v in self.unet.__dict__.items() if k != "class_name"},
        }
        return {
            "format_version": self.format_version,
            "sdrt_version": self.sdrt_version,
            "model_type": self.model_type,
            "pipeline_class": self.pipeline_class,
            "source": dict(self.source.__dict__),
            "tools": dict(self.tools),
            "prediction_type": self.prediction_type,
            "unet": unet,
            "vae": {"class": self.vae.class_name, **_without(self.vae.__dict__, "class_name")}
            if self.vae
            else None,
            "text": dict(self.text.__dict__) if self.text else None,
            "shapes": self.shapes.to_json(),
            "backend": self.backend,
            "components": {n: r.to_json() for n, r in self.components.items()},
            **(
                {"controlnets": {n: dict(c.__dict__) for n, c in self.controlnets.items()}}
                if self.controlnets
                else {}
            ),
            **(
                {"adapters": {n: dict(a.__dict__) for n, a in self.adapters.items()}} if self.adapters else {}
            ),
        }


def _vae_info(data: dict[str, Any]) -> VaeInfo:
    """The ``vae`` entry; bundles from before it named the class hold an AutoencoderKL."""
    return _known(VaeInfo, {**_without(data, "class"), "class_name": data.get("class", VaeInfo.class_name)})


def _without(data: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k != key}


def _known(cls: type[Record], data: dict[str, Any]) -> Record:
    """``cls`` from the fields it has: keys a newer sdrt added (same format version) are left aside."""
    return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _rebuild(bundle_dir: Path) -> str:
    return f"build-engine MODEL_DIR -o {bundle_dir} --force"


def _check_version(version: Any, path: Path, bundle_dir: Path) -> None:
    if not isinstance(version, int):
        raise BundleError(
            f"{path} has no integer format_version; it was not written by build-engine. "
            f"Rebuild the bundle with: {_rebuild(bundle_dir)}"
        )
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{path} has format_version {version}, newer than this sdrt reads ({FORMAT_VERSION}); upgrade sdrt "
            f"(pip install -U sdrt), or rebuild the bundle with this version: {_rebuild(bundle_dir)}"
        )
    if version < FORMAT_VERSION:
        raise BundleError(
            f"{path} has format_version {version}, older than this sdrt reads ({FORMAT_VERSION}); "
            f"rebuild it with: {_rebuild(bundle_dir)}"
        )


def read_manifest(bundle_dir: str | Path) -> Manifest:
    """``bundle_dir/manifest.json``, checked; errors name the file and the command that fixes it."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / MANIFEST_NAME
    if not bundle_dir.is_dir():
        raise BundleNotFoundError(
            f"engine bundle {bundle_dir} does not exist or is not a folder; "
            f"build one with: build-engine MODEL_DIR -o {bundle_dir}"
        )
    if not path.is_file():
        raise BundleNotFoundError(
            f"{bundle_dir} is not an engine bundle (no {MANIFEST_NAME}); build one with: build-engine MODEL_DIR -o {bundle_dir}"
        )
    try:
        raw = path.read_bytes()
        data = json.loads(raw.decode("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise BundleError(
            f"cannot read {path}: {err}; rebuild the bundle with: {_rebuild(bundle_dir)}"
        ) from err
    if not isinstance(data, dict):
        raise BundleError(
            f"{path} does not hold a JSON object; rebuild the bundle with: {_rebuild(bundle_dir)}"
        )
    _check_version(data.get("format_version"), path, bundle_dir)
    _check_seal(raw, path, bundle_dir)
    try:
        manifest = Manifest.from_json(data)
    except (KeyError, TypeError, ValueError, IndexError) as err:
        raise BundleError(
            f"{path} is damaged ({type(err).__name__}: {err}); rebuild the bundle with: {_rebuild(bundle_dir)}"
        ) from err
    _check_shape_ranges(manifest, path, bundle_dir)
    return manifest


def _check_shape_ranges(manifest: Manifest, path: Path, bundle_dir: Path) -> None:
    """The sizes a call may ask for lie inside every engine's latent ranges: an engine cannot run beyond the
    shapes it was built for (an unsealed manifest widened by hand would fail in ORT's allocation, or worse)."""
    shapes, scale = manifest.shapes, manifest.vae_scale_factor
    for name, record in manifest.components.items():
        for dim, pixels in (("latent_height", shapes.height), ("latent_width", shapes.width)):
            built = record.dims.get(dim)
            if built is not None and not built[0] <= pixels[0] // scale <= pixels[1] // scale <= built[1]:
                size = dim.removeprefix("latent_")
                raise BundleError(
                    f"{path}: shapes.{size} {pixels[0]}..{pixels[1]} is not inside what the {name} engine was "
                    f"built for ({built[0] * scale}..{built[1] * scale} pixels); the manifest was edited or is "
                    f"damaged. Rebuild the bundle for the sizes you need: {_rebuild(bundle_dir)} "
                    "--min-size/--max-size"
                )


def read_previous_manifest(bundle_dir: str | Path) -> Manifest | None:
    """The manifest of a bundle about to be replaced, or None when there is none this sdrt can read."""
    try:
        return read_manifest(bundle_dir)
    except BundleError:
        return None


def write_manifest(bundle_dir: str | Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` and its seal ``manifest.sha256`` through temporary files and renames:
    readers never see half of either (builds write into a folder swapped in whole afterwards)."""
    path = Path(bundle_dir) / MANIFEST_NAME
    raw = (json.dumps(manifest.to_json(), indent=2) + "\n").encode("utf-8")
    for name, content in ((MANIFEST_NAME, raw), (SEAL_NAME, _seal_text(raw))):
        tmp = path.with_name(name + ".tmp")
        tmp.write_bytes(content)
        tmp.replace(path.with_name(name))
    return path


def manifest_sha256(bundle_dir: str | Path) -> str:
    """The sha256 of ``bundle_dir/manifest.json``'s bytes: names this build of the bundle."""
    return hashlib.sha256((Path(bundle_dir) / MANIFEST_NAME).read_bytes()).hexdigest()


def _seal_text(raw: bytes) -> bytes:
    return f"{hashlib.sha256(raw).hexdigest()}  {MANIFEST_NAME}\n".encode()


def _check_seal(raw: bytes, path: Path, bundle_dir: Path) -> None:
    """``manifest.sha256`` matches the manifest's bytes; bundles built before the seal are read with a
    warning (once per folder)."""
    seal = bundle_dir / SEAL_NAME
    try:
        recorded = seal.read_bytes()
    except FileNotFoundError:
        if str(bundle_dir) not in _UNSEALED:
            _UNSEALED.add(str(bundle_dir))
            log.warning(
                "%s has no %s (built before sdrt sealed manifests): edits to it cannot be detected; "
                "rebuild it to seal it: %s",
                path,
                SEAL_NAME,
                _rebuild(bundle_dir),
            )
        return
    except OSError as err:
        raise BundleError(
            f"cannot read {seal}: {err}; rebuild the bundle with: {_rebuild(bundle_dir)}"
        ) from err
    if recorded.split()[:1] != _seal_text(raw).split()[:1]:
        raise BundleError(
            f"{path} is damaged or was edited after the build: its sha256 is not the one in {seal}; a "
            f"manifest is not a settings file. Rebuild the bundle with: {_rebuild(bundle_dir)}"
        )
