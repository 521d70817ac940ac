"""The two training stages of the shapes model: the autoencoder, then text encoder + UNet.

Each stage is a loop over steps that can stop (time budget) and resume from a checkpoint dict;
the caller owns the checkpoint file and the progress bar's wall clock.
"""

from __future__ import annotations

import copy
import logging
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from tqdm import tqdm

logger = logging.getLogger(__name__)


def lr_factor(step: int, *, warmup: int, total: int, floor: float = 0.1) -> float:
    """Linear warmup, then cosine decay to ``floor`` at ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


class Ema:
    """Exponential moving average of a module's parameters (decay warms up as (1+n)/(10+n))."""

    def __init__(self, module: torch.nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(module).eval().requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        self.updates += 1
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        for ema_p, p in zip(self.module.parameters(), module.parameters()):
            ema_p.lerp_(p.detach(), 1.0 - d)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = state["updates"]


def foreground_weighted_mse(recon: torch.Tensor, target: torch.Tensor, *, weight: float) -> torch.Tensor:
    """MSE with the shape's pixels (those unlike the top-left background pixel) counted 1 + weight times."""
    foreground = (target - target[:, :, :1, :1]).abs().amax(dim=1, keepdim=True) > 0.1
    weights = 1.0 + weight * foreground.float()
    return ((recon - target) ** 2 * weights).mean() / weights.mean()


def train_vae(
    vae: torch.nn.Module,
    images: torch.Tensor,
    *,
    state: dict,
    steps: int,
    batch_size: int,
    lr: float,
    kl_weight: float,
    foreground_weight: float = 4.0,
    should_stop: Callable[[], bool],
    on_checkpoint: Callable[[], None],
) -> bool:
    """Train the autoencoder on images [-1, 1] NCHW (MSE + kl_weight * KL). True when finished.

    ``state`` holds step, optimizer and generator states and is updated in place for checkpoints.
    """
    optimizer = torch.optim.AdamW(vae.parameters(), lr=lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(state.setdefault("seed", 0))
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
    step = state.setdefault("step", 0)
    vae.train()
    bar = tqdm(total=steps, initial=step, desc="vae", dynamic_ncols=True)
    running = None
    while step < steps:
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_factor(step, warmup=100, total=steps)
        batch = images[torch.randint(len(images), (batch_size,), generator=generator)]
        posterior = vae.encode(batch).latent_dist
        recon = vae.decode(posterior.sample(generator=generator)).sample
        mse = F.mse_loss(recon, batch)
        loss = (
            foreground_weighted_mse(recon, batch, weight=foreground_weight)
            + kl_weight * posterior.kl().mean()
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 1.0)
        optimizer.step()
        step += 1
        running = mse.item() if running is None else 0.98 * running + 0.02 * mse.item()
        bar.update(1)
        bar.set_postfix(mse=f"{running:.4f}")
        state.update(
            step=step, optimizer=optimizer.state_dict(), generator=generator.get_state(), mse=running
        )
        if step % 50 == 0 or step == steps:
            on_checkpoint()
            if should_stop() and step < steps:
                bar.close()
                return False
    bar.close()
    return True


def min_snr_weights(alphas_cumprod: torch.Tensor, snr_gamma: float) -> torch.Tensor:
    """Per-timestep loss weights min(SNR, gamma) / SNR (Min-SNR weighting, Hang et al. 2023)."""
    snr = alphas_cumprod / (1.0 - alphas_cumprod)
    return torch.clamp(snr, max=snr_gamma) / snr


def _noisy_batch(
    generator: torch.Generator,
    *,
    latent_mean: torch.Tensor,
    latent_std: torch.Tensor,
    scaling_factor: float,
    input_ids: torch.Tensor,
    empty_ids: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    batch_size: int,
    drop_caption: float,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random training batch: ``(ids, noisy latents, noise, timesteps)``.

    Latents are sampled from each image's posterior; a ``drop_caption`` share of the captions is
    replaced by the empty one. The draws' order (images, posterior, dropped, noise, timesteps) is part
    of what makes a run reproducible from its seed.
    """
    index = torch.randint(len(input_ids), (batch_size,), generator=generator)
    eps = torch.randn(latent_mean[index].shape, generator=generator)
    latents = (latent_mean[index] + latent_std[index] * eps) * scaling_factor
    ids = input_ids[index].clone()
    dropped = torch.rand(batch_size, generator=generator) < drop_caption
    ids[dropped] = empty_ids
    noise = torch.randn(latents.shape, generator=generator)
    t = torch.randint(len(alphas_cumprod), (batch_size,), generator=generator)
    a = alphas_cumprod[t].view(-1, 1, 1, 1)
    noisy = a.sqrt() * latents + (1.0 - a).sqrt() * noise
    return ids, noisy, noise, t


def _optimizer_step(
    optimizer: torch.optim.Optimizer, loss: torch.Tensor, params: list[torch.nn.Parameter]
) -> None:
    """Backpropagate ``loss`` and step, with the gradients' norm clipped to 1."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()


def train_diffusion(
    unet: torch.nn.Module,
    text_encoder: torch.nn.Module,
    emas: tuple[Ema, Ema],
    *,
    latent_mean: torch.Tensor,
    latent_std: torch.Tensor,
    scaling_factor: float,
    input_ids: torch.Tensor,
    empty_ids: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    state: dict,
    steps: int,
    batch_size: int,
    lr: float,
    drop_caption: float,
    snr_gamma: float,
    should_stop: Callable[[], bool],
    on_checkpoint: Callable[[], None],
) -> bool:
    """Train text encoder + UNet to predict the noise (min-SNR weighted MSE). True when finished."""
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-2)
    generator = torch.Generator().manual_seed(state.setdefault("seed", 0))
    if "optimizer" in state:
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
    step = state.setdefault("step", 0)
    unet.train()
    text_encoder.train()
    weights = min_snr_weights(alphas_cumprod, snr_gamma)
    bar = tqdm(total=steps, initial=step, desc="unet", dynamic_ncols=True)
    running = state.get("loss")
    while step < steps:
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_factor(step, warmup=200, total=steps)
        ids, noisy, noise, t = _noisy_batch(
            generator, latent_mean=latent_mean, latent_std=latent_std, scaling_factor=scaling_factor,
            input_ids=input_ids, empty_ids=empty_ids, alphas_cumprod=alphas_cumprod, batch_size=batch_size,
            drop_caption=drop_caption,
        )  # fmt: skip
        context = text_encoder(ids)[0]
        pred = unet(noisy, t, context).sample
        per_sample = ((pred - noise) ** 2).mean(dim=(1, 2, 3))
        _optimizer_step(optimizer, (weights[t] * per_sample).mean(), params)
        emas[0].update(unet)
        emas[1].update(text_encoder)
        step += 1
        plain = per_sample.mean().item()
        running = plain if running is None else 0.99 * running + 0.01 * plain
        bar.update(1)
        bar.set_postfix(loss=f"{running:.4f}")
        state.update(
            step=step, optimizer=optimizer.state_dict(), generator=generator.get_state(), loss=running
        )
        if step % 100 == 0 or step == steps:
            on_checkpoint()
            if should_stop() and step < steps:
                bar.close()
                return False
    bar.close()
    return True
