"""A few steps of both training stages, stopped and resumed, give a folder diffusers loads."""

import json

import numpy as np

from training.train_shapes import train

TINY = dict(
    seed=0, num_images=16, vae_steps=2, vae_batch=2, vae_lr=1e-3, kl_weight=1e-6, unet_steps=2, batch=2,
    lr=5e-4, drop_caption=0.5, snr_gamma=5.0, ema_decay=0.99, minutes=None, checkpoint_minutes=60.0,
)  # fmt: skip


def test_two_stages_resume_and_save_a_diffusers_folder(tmp_path):
    from diffusers import StableDiffusionPipeline

    out, work = tmp_path / "model", tmp_path / "work"
    assert not train(out=out, work_dir=work, resume=False, stop_after_vae=True, **TINY)
    assert (work / "state.pt").exists() and not out.exists()
    assert train(out=out, work_dir=work, resume=True, **TINY)
    summary = json.loads((work / "summary.json").read_text())
    assert summary["finished"] and summary["unet_steps_done"] == 2
    pipe = StableDiffusionPipeline.from_pretrained(str(out))
    assert pipe.vae.config.scaling_factor == summary["scaling_factor"]
    assert json.loads((out / "scheduler" / "scheduler_config.json").read_text())["clip_sample"] is False
    image = pipe("a red circle", num_inference_steps=2, output_type="np").images[0]
    assert image.shape == (64, 64, 3) and np.isfinite(image).all()
