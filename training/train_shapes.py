"""Train the shapes model on CPU and save it as a diffusers StableDiffusionPipeline folder.

    python -m training.train_shapes --out models/sd-shapes [--minutes N] [--resume]

Stage 1 trains the autoencoder and encodes the data set to latents once (the VAE's
``scaling_factor`` is set so scaled latents have unit std, as in SD); stage 2 trains the text encoder
and the UNet together, with 10% empty captions for classifier-free guidance and EMA weights.
A checkpoint (``--work-dir``/state.pt) is written every few minutes; ``--resume`` continues from
it, and ``--minutes`` stops the run (checkpoint + an export of the weights so far) after N minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from .shapes_data import make_dataset
from .shapes_models import make_scheduler, make_text_encoder, make_unet, make_vae, save_pipeline
from .shapes_stages import Ema, train_diffusion, train_vae
from .shapes_tokenizer import make_clip_tokenizer

logger = logging.getLogger(__name__)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("models/sd-shapes"))
    p.add_argument("--work-dir", type=Path, default=Path(".work/sd-shapes-train"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-images", type=int, default=8192)
    p.add_argument("--vae-steps", type=int, default=1800)
    p.add_argument("--vae-batch", type=int, default=16)
    p.add_argument("--vae-lr", type=float, default=2e-3)
    p.add_argument("--kl-weight", type=float, default=1e-6)
    p.add_argument("--unet-steps", type=int, default=3200)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=8e-4)
    p.add_argument("--drop-caption", type=float, default=0.1)
    p.add_argument("--snr-gamma", type=float, default=5.0)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--minutes", type=float, default=None, help="stop this run after N minutes (resumable)")
    p.add_argument("--checkpoint-minutes", type=float, default=3.0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a busy machine)")
    p.add_argument("--stop-after-vae", action="store_true", help="end after stage 1 (continue with --resume)")
    p.add_argument("--resume", action="store_true")
    return p.parse_args(argv)


def train(
    *,
    out: Path,
    work_dir: Path,
    seed: int,
    num_images: int,
    vae_steps: int,
    vae_batch: int,
    vae_lr: float,
    kl_weight: float,
    unet_steps: int,
    batch: int,
    lr: float,
    drop_caption: float,
    snr_gamma: float,
    ema_decay: float,
    minutes: float | None,
    checkpoint_minutes: float,
    resume: bool,
    stop_after_vae: bool = False,
) -> bool:
    """Run (or continue) the training; returns True when both stages finished and ``out`` was saved."""
    torch.manual_seed(seed)
    work_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = work_dir / "state.pt"
    ckpt: dict = torch.load(ckpt_path, weights_only=False) if resume and ckpt_path.exists() else {}
    ckpt.setdefault("seconds", {"vae": 0.0, "unet": 0.0})
    start = time.monotonic()
    stage_start = [start]
    last_save = [start]

    def should_stop() -> bool:
        return minutes is not None and time.monotonic() - start > 60.0 * minutes

    def save(force: bool = False) -> None:
        now = time.monotonic()
        if force or now - last_save[0] > 60.0 * checkpoint_minutes or should_stop():
            ckpt["seconds"][ckpt["stage"]] += now - stage_start[0]
            stage_start[0] = now
            torch.save(ckpt, work_dir / "state.tmp")
            (work_dir / "state.tmp").replace(ckpt_path)
            last_save[0] = now
            logger.info("Checkpoint saved to %s", ckpt_path)

    images_u8, captions, _ = make_dataset(seed * 1_000_003, num_images)
    images = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    vae = make_vae()
    if "vae" in ckpt:
        vae.load_state_dict(ckpt["vae"])
    ckpt["vae"] = vae.state_dict()
    ckpt.setdefault("stage", "vae")
    if ckpt["stage"] == "vae":
        state = ckpt.setdefault("vae_state", {"seed": seed})
        done = train_vae(
            vae, images, state=state, steps=vae_steps, batch_size=vae_batch, lr=vae_lr,
            kl_weight=kl_weight, should_stop=should_stop, on_checkpoint=save,
        )  # fmt: skip
        if not done:
            save(force=True)
            return False
        vae.eval()
        with torch.no_grad():
            dists = [vae.encode(images[i : i + 256]).latent_dist for i in range(0, len(images), 256)]
        mean = torch.cat([d.mean for d in dists])
        std = torch.cat([d.std for d in dists])
        sample = mean + std * torch.randn(mean.shape, generator=torch.Generator().manual_seed(seed))
        ckpt["latents"] = {"mean": mean, "std": std, "scaling_factor": float(1.0 / sample.std())}
        save(force=True)
        ckpt["stage"] = "unet"
        ckpt["vae_mse_final"] = ckpt.pop("vae_state").get("mse")
        if stop_after_vae:
            save(force=True)
            return False
    vae.eval().requires_grad_(False)
    scaling_factor = ckpt["latents"]["scaling_factor"]
    vae.register_to_config(scaling_factor=scaling_factor)

    tokenizer = make_clip_tokenizer(work_dir / "tokenizer")
    input_ids = torch.from_numpy(
        tokenizer(captions, padding="max_length", max_length=77, return_tensors="np").input_ids
    )
    empty_ids = torch.from_numpy(
        tokenizer([""], padding="max_length", max_length=77, return_tensors="np").input_ids
    )[0]
    unet, text_encoder = make_unet(), make_text_encoder()
    if "unet" in ckpt:
        unet.load_state_dict(ckpt["unet"])
        text_encoder.load_state_dict(ckpt["text_encoder"])
    emas = (Ema(unet, ema_decay), Ema(text_encoder, ema_decay))
    if "ema_unet" in ckpt:
        emas[0].load_state_dict(ckpt["ema_unet"])
        emas[1].load_state_dict(ckpt["ema_text_encoder"])
    ckpt.update(unet=unet.state_dict(), text_encoder=text_encoder.state_dict())
    ckpt.update(ema_unet=emas[0].state_dict(), ema_text_encoder=emas[1].state_dict())

    def save_diffusion(force: bool = False) -> None:
        ckpt["ema_unet"]["updates"] = emas[0].updates
        ckpt["ema_text_encoder"]["updates"] = emas[1].updates
        save(force)

    alphas_cumprod = make_scheduler().alphas_cumprod.float()
    done = train_diffusion(
        unet, text_encoder, emas,
        latent_mean=ckpt["latents"]["mean"], latent_std=ckpt["latents"]["std"], scaling_factor=scaling_factor,
        input_ids=input_ids, empty_ids=empty_ids, alphas_cumprod=alphas_cumprod,
        state=ckpt.setdefault("unet_state", {"seed": seed + 1}), steps=unet_steps, batch_size=batch, lr=lr,
        drop_caption=drop_caption, snr_gamma=snr_gamma, should_stop=should_stop, on_checkpoint=save_diffusion,
    )  # fmt: skip
    save_diffusion(force=True)
    save_pipeline(out, vae=vae, text_encoder=emas[1].module, unet=emas[0].module, tokenizer=tokenizer)
    summary = {
        "finished": done,
        "vae_steps": vae_steps,
        "vae_mse": ckpt.get("vae_mse_final"),
        "unet_steps_done": ckpt["unet_state"]["step"],
        "unet_loss": ckpt["unet_state"].get("loss"),
        "scaling_factor": scaling_factor,
        "seconds": ckpt["seconds"],
    }
    (work_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return done


def main(argv: list[str] | None = None) -> None:
    args = _parse(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    torch.set_num_threads(args.threads)
    np.random.seed(args.seed)
    done = train(**{k: v for k, v in vars(args).items() if k != "threads"})
    print(f"{'Finished' if done else 'Stopped (continue with --resume)'}; model folder: {args.out}")


if __name__ == "__main__":
    main()
