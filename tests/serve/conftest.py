import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("ray.serve")

SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "sd-shapes"


@pytest.fixture(scope="session")
def shapes_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped model's bundle, built as README's first command builds it."""
    pytest.importorskip("torch")
    pytest.importorskip("diffusers")
    out = tmp_path_factory.mktemp("serve_bundles") / "sd-shapes"
    command = [sys.executable, "-m", "sdrt.cli.build_engine", str(SHIPPED_MODEL), "-o", str(out)]
    subprocess.run(command, check=True, capture_output=True, timeout=600)
    return out


@pytest.fixture(scope="session")
def second_bundle(shapes_bundle: Path) -> Path:
    """The same bundle under another folder name: a second served model."""
    copy = shapes_bundle.with_name("sd-shapes-b")
    if not copy.exists():
        shutil.copytree(shapes_bundle, copy)
    return copy


@pytest.fixture(scope="session")
def controlnet_served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    """The shipped model with two tiny ControlNets (``controlnet``, ``controlnet_edges``): a third served
    bundle, ``sd-shapes-cn``, and the ControlNet folders (diffusers' references)."""
    pytest.importorskip("diffusers")
    from tests.parity import controlnet_bundle

    bundle, nets = controlnet_bundle(tmp_path_factory.mktemp("serve_controlnet"), SHIPPED_MODEL)
    served = bundle.with_name("sd-shapes-cn")
    bundle.rename(served)
    return served, nets


KEY, USER, PASSWORD = "test-key-123", "ann", "s3cret"
SERVER_OPTIONS = (
    "--api-key",
    KEY,
    "--api-auth",
    f"{USER}:{PASSWORD}",
    "--max-body-mb",
    "2",
    "--max-images",
    "8",
    "--cpus-per-replica",  # three model replicas on a 2-core machine (each still gets one ORT thread)
    "0.5",
)


@pytest.fixture(scope="session")
def network_dirs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """``--lora-dir`` (tiny.safetensors, other.safetensors: kohya-layout LoRA of the shipped model) and
    ``--embeddings-dir`` (shapestyle.safetensors, A1111's format; two bad files the server must skip)."""
    import json

    import numpy as np
    from safetensors.numpy import save_file

    from tests.lora_files import kohya_lora_file

    root = tmp_path_factory.mktemp("serve_networks")
    loras, embeddings = root / "loras", root / "embeddings"
    loras.mkdir()
    embeddings.mkdir()
    for seed, name in ((1, "tiny"), (2, "other")):
        kohya_lora_file(root, SHIPPED_MODEL, seed).rename(loras / f"{name}.safetensors")
    width = json.loads((SHIPPED_MODEL / "text_encoder" / "config.json").read_text())["hidden_size"]
    vectors = np.random.default_rng(0).standard_normal((2, width)).astype(np.float32)
    save_file({"emb_params": vectors}, str(embeddings / "shapestyle.safetensors"))
    save_file({"emb_params": vectors[:1, :-1].copy()}, str(embeddings / "narrow.safetensors"))
    (embeddings / "broken.safetensors").write_bytes(b"not a safetensors file")
    return loras, embeddings


@pytest.fixture(scope="session")
def _shared_server(request: pytest.FixtureRequest) -> dict:
    """One ``sdrt serve`` for every module that asks for ``server``, stopped after the last of them (so
    the modules that start their own Ray do not run beside it)."""
    users = {
        item.module.__name__
        for item in request.session.items
        if "server" in getattr(item, "fixturenames", ())
    }
    return {"users": users, "running": None}


@pytest.fixture(scope="module")
def server(
    request: pytest.FixtureRequest,
    _shared_server: dict,
    shapes_bundle: Path,
    second_bundle: Path,
    network_dirs: tuple[Path, Path],
    controlnet_served: tuple[Path, list[Path]],
):
    """``sdrt serve`` of three bundles (the last with ControlNets) with an API key, Basic auth, a 2 MB body cap, 8 images per request,
    and ``network_dirs``' LoRA and embeddings."""
    from benchmarks.serve_load import ServerProcess

    shared = _shared_server
    if shared["running"] is None:
        loras, embeddings = network_dirs
        options = (*SERVER_OPTIONS, "--lora-dir", str(loras), "--embeddings-dir", str(embeddings))
        shared["running"] = ServerProcess(
            [str(shapes_bundle), str(second_bundle), str(controlnet_served[0])], *options
        )
    yield shared["running"]
    shared["users"].discard(request.module.__name__)
    if not shared["users"]:
        shared["running"].stop()
        shared["running"] = None
