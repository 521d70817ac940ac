"""``Conditioner``: one thing a text-guided call conditions on besides the prompt, plugged into the call.

A pipeline's ``__call__`` makes its conditioners from its arguments and hands them to ``open_call``
(``guided.py``), which runs the opening steps every pipeline shares (checks, guidance, prompt encoding,
noise, timesteps), then lets each conditioner, in order, ``prepare`` the :class:`~..guided.GuidedCall`:
set its starting latents, add tensors to its ``state`` (the names callbacks see), name UNet inputs
(``unet_inputs``) and extra latent channels (``extra_channels``). The starting latents are noise unless a
conditioner set them. In the loop, every step asks each conditioner for further UNet inputs
(``step_inputs``) and lets it change the state after the scheduler's step (``after_step``).

A new conditioner is a subclass overriding the hooks it needs; no pipeline code changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..guided import GuidedCall, TextGuidedPipeline


class Conditioner:
    """The hooks (each does nothing here): ``prepare`` once, ``step_inputs`` and ``after_step`` each step."""

    def prepare(self, pipe: TextGuidedPipeline, call: GuidedCall) -> None:
        """Before the loop, once the prompts, noise and timesteps are known (``call.latents`` is None until a
        conditioner or, after them all, the noise sets it)."""

    def step_inputs(self, state: dict[str, Any], t: Any, model_input: Any) -> dict[str, Any]:
        """Further UNet keyword inputs for this step, from the state, the timestep and the scaled model
        input (before extra channels)."""
        return {}

    def after_step(self, i: int, t: Any, state: dict[str, Any]) -> None:
        """After the scheduler's step ``i`` (``state["latents"]`` is the new latents), before the callbacks."""
