"""Independent check of a bundle's graphs: each ONNX graph in ONNX Runtime against the torch module
loaded straight from the model folder with diffusers/transformers (their default attention), on
inputs made here — nothing from sdrt.export is used, so a wrong export cannot check itself."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch


def max_rel_err(actual: np.ndarray, expected: np.ndarray) -> float:
    """max|actual - expected| / max|expected|."""
    return float(np.abs(actual.astype(np.float64) - expected).max() / np.abs(expected).max())


def _load(model_dir: Path, sub: str):
    index = json.loads((model_dir / "model_index.json").read_text())
    library, cls = index[sub]
    module = __import__(library, fromlist=[cls])
    return getattr(module, cls).from_pretrained(model_dir / sub).eval()


def torch_outputs(model_dir: Path, component: str, feeds: dict[str, np.ndarray], model_type: str) -> dict:
    t = {k: torch.from_numpy(v) for k, v in feeds.items()}
    with torch.no_grad():
        if component.startswith("text_encoder"):
            model = _load(model_dir, component)
            out = model(t["input_ids"].long(), output_hidden_states=True)
            result = {
                "last_hidden_state": out.last_hidden_state,
                "penultimate_hidden_state": out.hidden_states[-2],
            }
            if hasattr(out, "text_embeds"):
                result["text_embeds"] = out.text_embeds
            return {k: v.numpy() for k, v in result.items()}
        if component == "unet":
            unet = _load(model_dir, "unet")
            if model_type == "uncond":
                out = unet(t["sample"], t["timestep"]).sample
            else:
                added = (
                    {"text_embeds": t["text_embeds"], "time_ids": t["time_ids"]} if "time_ids" in t else None
                )
                out = unet(
                    t["sample"], t["timestep"], t["encoder_hidden_states"], added_cond_kwargs=added
                ).sample
            return {"noise_pred": out.numpy()}
        vae = _load(model_dir, "vae")
        if component == "vae_encoder":
            dist = vae.encode(t["image"]).latent_dist
            return {"moments": torch.cat([dist.mean, dist.logvar], dim=1).numpy()}
        return {"image": vae.decode(t["latent"]).sample.numpy()}


def make_feeds(record: dict, *, batch: int, height: int, width: int, vae_scale: int, seed: int) -> dict:
    """Inputs for one component at an image size (pixels) and prompt batch."""
    rng = np.random.default_rng(seed)
    sizes = {
        "batch": batch,
        "latent_height": height // vae_scale,
        "latent_width": width // vae_scale,
        "height": height,
        "width": width,
    }
    feeds = {}
    for name, info in record["inputs"].items():
        shape = [d if isinstance(d, int) else sizes[d] for d in info["shape"]]
        if name == "input_ids":
            ids = rng.integers(0, 500, size=shape)
            ids[:, 0] = 549
            ids[:, 7:] = 550  # <|endoftext|> of the tiny vocabulary, then padding
            feeds[name] = ids.astype(np.int32)
        elif name == "timestep":
            feeds[name] = np.full(shape, 637.0, dtype=np.float32)
        elif name == "time_ids":
            feeds[name] = np.tile(np.array([height, width, 0, 0, height, width], np.float32), (shape[0], 1))
        elif name == "image":
            feeds[name] = rng.uniform(-1, 1, size=shape).astype(np.float32)
        else:
            feeds[name] = rng.standard_normal(size=shape).astype(np.float32)
    return feeds


def check_bundle(
    model_dir: Path, bundle: Path, cases: list[tuple[int, int, int]], *, graphs: str = "onnx"
) -> dict:
    """Worst max relative error per component over ``cases`` of (batch, height, width)."""
    manifest = json.loads((bundle / "manifest.json").read_text())
    vae_scale = manifest["vae"]["scale_factor"] if manifest["vae"] else 1
    worst: dict[str, float] = {}
    for component, record in manifest["components"].items():
        path = bundle / (record["onnx"] if graphs == "onnx" else record["ort"]["file"])
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        for i, (batch, height, width) in enumerate(cases):
            feeds = make_feeds(record, batch=batch, height=height, width=width, vae_scale=vae_scale, seed=i)
            expected = torch_outputs(model_dir, component, feeds, manifest["model_type"])
            names = list(record["outputs"])
            for name, actual in zip(names, session.run(names, feeds)):
                assert actual.shape == expected[name].shape, (component, name, actual.shape)
                err = max_rel_err(actual, expected[name])
                worst[f"{component}.{name}"] = max(worst.get(f"{component}.{name}", 0.0), err)
    return worst
