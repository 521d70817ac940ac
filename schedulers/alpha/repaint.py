"""RePaint: inpainting with an unconditional DDPM (Lugmayr et al., https://arxiv.org/abs/2201.09865), diffusers'
RePaintScheduler.

Each step denoises the whole sample with DDIM's update (eta as in DDIM; 0 is deterministic), then replaces
the known region (``mask`` = 1) by the original image noised to the same timestep (the paper's Algorithm 1).
The schedule resamples: every ``jump_length`` steps it goes back up ``jump_length`` steps, ``jump_n_sample`` - 1
times, and ``undo_step`` re-noises the sample forward along the way, so that known and generated parts harmonise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..config import register_to_config
from ..math.arrays import array_module, draw_noise
from ..math.betas import linspace_f32
from ..output import RePaintSchedulerOutput
from . import schedule as sched
from .base import AlphaScheduler


class RePaintScheduler(AlphaScheduler):
    _compatibles = ()
    order = 1
    beta_schedules = ("linear", "scaled_linear", "squaredcos_cap_v2", "sigmoid")

    @register_to_config
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        beta_start: float = 0.0001,
        beta_end: float = 0.02,
        beta_schedule: str = "linear",
        eta: float = 0.0,
        trained_betas: np.ndarray | None = None,
        clip_sample: bool = True,
    ) -> None:
        self._init_training_alphas(self._own_betas())
        self.final_alpha_cumprod = np.float32(1.0)
        self.eta = eta

    def _own_betas(self) -> np.ndarray | None:
        """The betas diffusers' RePaint makes differently from the others (else None: the shared ones)."""
        config = self.config
        if config.trained_betas is not None:
            # diffusers keeps a NumPy array's dtype (torch.from_numpy).
            betas = config.trained_betas
            return np.array(betas) if isinstance(betas, np.ndarray) else np.asarray(betas, dtype=np.float32)
        if config.beta_schedule == "sigmoid":
            x = linspace_f32(-6, 6, config.num_train_timesteps)
            sigmoid = (np.float32(1) / (np.float32(1) + np.exp(-x))).astype(np.float32)
            return (
                sigmoid * np.float32(config.beta_end - config.beta_start) + np.float32(config.beta_start)
            ).astype(np.float32)
        return None

    def set_timesteps(
        self, num_inference_steps: int, jump_length: int = 10, jump_n_sample: int = 10, device: Any = None
    ) -> None:
        """The resampling schedule: down one step at a time, and at every ``jump_length``-th step (but the last
        stretch) back up ``jump_length`` steps, ``jump_n_sample`` - 1 times (the paper's Fig. 3)."""
        T = self.config.num_train_timesteps
        num_inference_steps = min(T, num_inference_steps)
        self.num_inference_steps = num_inference_steps
        jumps = {j: jump_n_sample - 1 for j in range(0, num_inference_steps - jump_length, jump_length)}
        timesteps = []
        t = num_inference_steps
        while t >= 1:
            t -= 1
            timesteps.append(t)
            if jumps.get(t, 0) > 0:
                jumps[t] -= 1
                for _ in range(jump_length):
                    t += 1
                    timesteps.append(t)
        self.timesteps = np.array(timesteps, dtype=np.int64) * (T // num_inference_steps)

    def _stride(self) -> int:
        self._require_timesteps()
        assert self.num_inference_steps is not None
        return self.config.num_train_timesteps // self.num_inference_steps

    def _get_variance(self, t: int) -> np.float32:
        """DDIM's sigma_t^2 / eta^2 between t and the timestep one stride below (Song et al. eq. 16)."""
        alpha_bar = self.alphas_cumprod[t]
        alpha_bar_prev = sched.alpha_bar_at(self.alphas_cumprod, t - self._stride(), self.final_alpha_cumprod)
        return ((1 - alpha_bar_prev) / (1 - alpha_bar)) * (1 - alpha_bar / alpha_bar_prev)

    def step(
        self,
        model_output: Any,
        timestep: Any,
        sample: Any,
        original_image: Any,
        mask: Any,
        generator: Any = None,
        return_dict: bool = True,
    ) -> RePaintSchedulerOutput | tuple:
        """x_t -> x_{t-1}: DDIM's update for the unknown region, the noised ``original_image`` where ``mask`` is 1."""
        t = sched.train_timestep("RePaintScheduler", timestep, self.config.num_train_timesteps)
        alpha_bar = self.alphas_cumprod[t]
        alpha_bar_prev = sched.alpha_bar_at(self.alphas_cumprod, t - self._stride(), self.final_alpha_cumprod)
        x0 = sched.predict_x0("epsilon", model_output, sample, alpha_bar)
        if self.config.clip_sample:
            x0 = array_module(x0).clip(x0, -1, 1)
        # Drawn at every step (even where unused), so that the draws stay in step with diffusers'.
        noise = draw_noise(generator, model_output.shape, like=model_output)
        std_dev = np.float32(self.eta) * np.sqrt(self._get_variance(t))
        direction = float(np.sqrt(1 - alpha_bar_prev - std_dev**2)) * model_output
        unknown = float(np.sqrt(alpha_bar_prev)) * x0 + direction
        if t > 0 and self.eta > 0:
            unknown = unknown + float(std_dev) * noise
        known = float(np.sqrt(alpha_bar_prev)) * original_image + float(np.sqrt(1 - alpha_bar_prev)) * noise
        prev_sample = mask * known + (1.0 - mask) * unknown
        if not return_dict:
            return (prev_sample, x0)
        return RePaintSchedulerOutput(prev_sample=prev_sample, pred_original_sample=x0)

    def undo_step(self, sample: Any, timestep: Any, generator: Any = None) -> Any:
        """Noise ``sample`` forward one stride, from ``timestep`` up, one training step (beta) at a time."""
        t = int(timestep.item() if hasattr(timestep, "item") else timestep)
        for i in range(self._stride()):
            beta = self.betas[t + i]
            noise = draw_noise(generator, sample.shape, like=sample)
            sample = float(np.sqrt(1 - beta)) * sample + float(np.sqrt(beta)) * noise
        return sample

    def add_noise(self, original_samples: Any, noise: Any, timesteps: Any) -> Any:
        raise NotImplementedError(
            "RePaintScheduler does not noise training samples: train with DDPMScheduler.add_noise(), "
            "then sample with RePaintScheduler"
        )
