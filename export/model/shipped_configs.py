"""The model configurations sdrt ships for single-file checkpoints (``build-engine FILE --config sd15``):
config JSON of SD 1.5, SD 2.x (768 px v-prediction, and the 512 px ``sd2-base``) and SDXL base, no weights,
plus CLIP's tokenizer files (``configs/clip``, made by ``tools/clip_tokenizer_files.py`` from OpenAI's BPE
merges), laid out as diffusers folders on first use under the cache (``<cache>/configs``)."""

from __future__ import annotations

import atexit
import hashlib
import logging
import shutil
import tempfile
import uuid
from pathlib import Path

from sdrt.runtime.engines.cache import cache_dir

log = logging.getLogger(__name__)

SHIPPED = {
    "sd15": "Stable Diffusion 1.x (512 px, epsilon)",
    "sd2": "Stable Diffusion 2.x (768 px, v-prediction)",
    "sd2-base": "Stable Diffusion 2.x base (512 px, epsilon)",
    "sdxl": "Stable Diffusion XL base",
}
BY_DIFFUSERS_TYPE = {"v1": "sd15", "v2": "sd2", "xl_base": "sdxl"}  # diffusers' infer_diffusers_model_type
_DATA = Path(__file__).parent / "configs"
_TOKENIZER_FILES = ("vocab.json", "merges.txt")


def shipped_config(name: str) -> Path:
    """The diffusers folder of the shipped configuration ``name`` (one of ``SHIPPED``)."""
    source = _DATA / name
    files = sorted(p for p in source.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in [*files, *(_DATA / "clip" / f for f in _TOKENIZER_FILES)]:
        digest.update(path.relative_to(_DATA).as_posix().encode() + path.read_bytes())
    root = cache_dir("configs")
    if root is None:  # caches off: a folder for this process
        root = Path(tempfile.mkdtemp(prefix="sdrt-configs-"))
        atexit.register(shutil.rmtree, root, ignore_errors=True)
    folder = root / f"{name}-{digest.hexdigest()[:12]}"
    if not (folder / "model_index.json").is_file():
        scratch = root / f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}"
        shutil.copytree(source, scratch)
        for tokenizer in scratch.glob("tokenizer*"):
            for file in _TOKENIZER_FILES:
                shutil.copyfile(_DATA / "clip" / file, tokenizer / file)
        try:
            scratch.rename(folder)
        except OSError:  # another process laid it out first
            shutil.rmtree(scratch, ignore_errors=True)
    log.info("configuration %s (%s): %s", name, SHIPPED[name], folder)
    return folder
