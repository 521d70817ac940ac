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
from collections.abc import Callable
from pathlib import Path
from typing import Any

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


class _Checkpoint:
    """The run's state dict, saved to ``work_dir``/state.pt every few minutes and when the run stops.

    It also keeps the run's clock: the time budget (``minutes``) and the seconds spent in each stage.
    """

    def __init__(self, work_dir: Path, *, resume: bool, minutes: float | None, every_minutes: float) -> None:
        self.path = work_dir / "state.pt"
        self._tmp_path = work_dir / "state.tmp"
        self.state: dict = torch.load(self.path, weights_only=False) if resume and self.path.exists() else {}
        self.state.setdefault("seconds", {"vae": 0.0, "unet": 0.0})
        self.minutes = minutes
        self.every_minutes = every_minutes
        self.start = time.monotonic()
        self._stage_start = self.start
        self._last_save = self.start

    def should_stop(self) -> bool:
        return self.minutes is not None and time.monotonic() - self.start > 60.0 * self.minutes

    def save(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._last_save > 60.0 * self.every_minutes or self.should_stop():
            self.state["seconds"][self.state["stage"]] += now - self._stage_start
            self._stage_start = now
            torch.save(self.state, self._tmp_path)
            self._tmp_path.replace(self.path)
            self._last_save = now
            logger.info("Checkpoint saved to %s", self.path)


def _autoencoder(ckpt: dict) -> torch.nn.Module:
    """The autoencoder, new or from the checkpoint, which then holds its weights."""
    vae = make_vae()
    if "vae" in ckpt:
        vae.load_state_dict(ckpt["vae"])
    ckpt["vae"] = vae.state_dict()
    return vae


def _encode_latents(vae: torch.nn.Module, images: torch.Tensor, *, seed: int) -> dict:
    """Every image's posterior mean and std, and the scaling factor that gives a sample of them unit std."""
    vae.eval()
    with torch.no_grad():
        dists = [vae.encode(images[i : i + 256]).latent_dist for i in range(0, len(images), 256)]
    mean = torch.cat([d.mean for d in dists])
    std = torch.cat([d.std for d in dists])
    sample = mean + std * torch.randn(mean.shape, generator=torch.Generator().manual_seed(seed))
    return {"mean": mean, "std": std, "scaling_factor": float(1.0 / sample.std())}


def _autoencoder_stage(
    vae: torch.nn.Module,
    images: torch.Tensor,
    checkpoint: _Checkpoint,
    *,
    seed: int,
    steps: int,
    batch_size: int,
    lr: float,
    kl_weight: float,
) -> bool:
    """Stage 1: train the autoencoder, then encode the data set to latents; False when time ran out first."""
    ckpt = checkpoint.state
    done = train_vae(
        vae, images, state=ckpt.setdefault("vae_state", {"seed": seed}), steps=steps, batch_size=batch_size,
        lr=lr, kl_weight=kl_weight, should_stop=checkpoint.should_stop, on_checkpoint=checkpoint.save,
    )  # fmt: skip
    if not done:
        checkpoint.save(force=True)
        return False
    ckpt["latents"] = _encode_latents(vae, images, seed=seed)
    checkpoint.save(force=True)
    ckpt["stage"] = "unet"
    ckpt["vae_mse_final"] = ckpt.pop("vae_state").get("mse")
    return True


def _token_ids(tokenizer: Any, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """The captions' token ids, and those of the empty caption (for the dropped ones)."""
    input_ids = torch.from_numpy(
        tokenizer(captions, padding="max_length", max_length=77, return_tensors="np").input_ids
    )
    empty_ids = torch.from_numpy(
        tokenizer([""], padding="max_length", max_length=77, return_tensors="np").input_ids
    )[0]
    return input_ids, empty_ids


def _diffusion_models(
    ckpt: dict, ema_decay: float
) -> tuple[torch.nn.Module, torch.nn.Module, tuple[Ema, Ema]]:
    """The UNet, the text encoder and their EMAs, new or from the checkpoint, which then holds their weights."""
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
    return unet, text_encoder, emas


def _saving_ema_updates(checkpoint: _Checkpoint, emas: tuple[Ema, Ema]) -> Callable[..., None]:
    """``checkpoint.save`` that first records the EMAs' update counts.

    The checkpoint shares the weights' tensors, which train in place, but holds copies of the counts.
    """

    def save(force: bool = False) -> None:
        checkpoint.state["ema_unet"]["updates"] = emas[0].updates
        checkpoint.state["ema_text_encoder"]["updates"] = emas[1].updates
        checkpoint.save(force)

    return save


def _write_summary(work_dir: Path, ckpt: dict, *, done: bool, vae_steps: int, scaling_factor: float) -> None:
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
    checkpoint = _Checkpoint(work_dir, resume=resume, minutes=minutes, every_minutes=checkpoint_minutes)
    ckpt = checkpoint.state
    images_u8, captions, _ = make_dataset(seed * 1_000_003, num_images)
    images = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float() / 127.5 - 1.0

    vae = _autoencoder(ckpt)
    ckpt.setdefault("stage", "vae")
    if ckpt["stage"] == "vae":
        finished = _autoencoder_stage(
            vae, images, checkpoint, seed=seed, steps=vae_steps, batch_size=vae_batch, lr=vae_lr,
            kl_weight=kl_weight,
        )  # fmt: skip
        if not finished:
            return False
        if stop_after_vae:
            checkpoint.save(force=True)
            return False
    vae.eval().requires_grad_(False)
    scaling_factor = ckpt["latents"]["scaling_factor"]
    vae.register_to_config(scaling_factor=scaling_factor)

    tokenizer = make_clip_tokenizer(work_dir / "tokenizer")
    input_ids, empty_ids = _token_ids(tokenizer, captions)
    unet, text_encoder, emas = _diffusion_models(ckpt, ema_decay)
    save_diffusion = _saving_ema_updates(checkpoint, emas)
    alphas_cumprod = make_scheduler().alphas_cumprod.float()
    done = train_diffusion(
        unet, text_encoder, emas,
        latent_mean=ckpt["latents"]["mean"], latent_std=ckpt["latents"]["std"], scaling_factor=scaling_factor,
        input_ids=input_ids, empty_ids=empty_ids, alphas_cumprod=alphas_cumprod,
        state=ckpt.setdefault("unet_state", {"seed": seed + 1}), steps=unet_steps, batch_size=batch, lr=lr,
        drop_caption=drop_caption, snr_gamma=snr_gamma, should_stop=checkpoint.should_stop,
        on_checkpoint=save_diffusion,
    )  # fmt: skip
    save_diffusion(force=True)
    save_pipeline(out, vae=vae, text_encoder=emas[1].module, unet=emas[0].module, tokenizer=tokenizer)
    _write_summary(work_dir, ckpt, done=done, vae_steps=vae_steps, scaling_factor=scaling_factor)
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
