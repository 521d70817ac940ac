"""Step caching (DeepCache) in the denoising loop: ``cache_interval=N`` runs the full UNet at the loop's calls
0, N, 2N... (``unet_deepcache_full``, which also returns the feature at the bundle's branch) and the shallow UNet
(``unet_deepcache_shallow``) on that cached feature in between: DeepCache's uniform schedule.

A call takes ``cache_interval`` (1, the default: off, the plain ``unet``) and ``cache_branch`` (None: the
bundle's; else it must be the branch the bundle was built with, ``build-engine --deepcache BRANCH``) as
keywords of every text-guided pipeline (``checks._legacy`` reads them into the call's state). The two engines
are opened on the first call that asks for them, once per loaded UNet.
"""

from __future__ import annotations

import numbers
import threading
import weakref
from dataclasses import dataclass
from typing import Any

from sdrt.runtime.bundle.weights_check import check_weights
from sdrt.runtime.components import open_component
from sdrt.runtime.errors import BundleError, InputError, InputTypeError

FULL, SHALLOW = "unet_deepcache_full", "unet_deepcache_shallow"
_REBUILD = "build-engine MODEL -o BUNDLE --deepcache"
_OPENED: weakref.WeakKeyDictionary[Any, tuple[Any, Any]] = weakref.WeakKeyDictionary()
_OPENING = threading.Lock()


@dataclass(frozen=True)
class CacheSettings:
    """A call's step caching: every ``interval``-th UNet call is a full one (1: no caching)."""

    interval: int = 1
    branch: int | None = None


def cache_settings(interval: Any, branch: Any) -> CacheSettings:
    """The call's ``cache_interval`` and ``cache_branch``, checked."""
    interval = 1 if interval is None else _whole("cache_interval", interval, "pass e.g. cache_interval=3")
    if interval < 1:
        raise InputError(
            f"`cache_interval` must be at least 1 (1: no step caching; N: the full UNet every N steps), got {interval}"
        )
    if branch is not None:
        branch = _whole("cache_branch", branch, "pass the branch the bundle was built with, or leave it out")
    return CacheSettings(interval, branch)


def _whole(name: str, value: Any, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputTypeError(f"`{name}` must be an int, got {type(value).__name__} {value!r}; {fix}")
    return int(value)


class StepCache:
    """The UNet one call's loop runs: the full UNet every ``interval``-th call (keeping its feature), the
    shallow UNet on the kept feature otherwise. Takes and returns what the plain UNet does."""

    def __init__(self, full: Any, shallow: Any, interval: int) -> None:
        self.full, self.shallow, self.interval = full, shallow, interval
        self.calls = 0
        self.feature: Any = None

    def __call__(self, sample: Any, timestep: Any, encoder_hidden_states: Any = None, **added: Any) -> Any:
        if self.calls % self.interval == 0 or self.feature is None:
            noise_pred, self.feature = self.full(sample, timestep, encoder_hidden_states, **added)
        else:
            noise_pred = self.shallow(
                sample, timestep, encoder_hidden_states, cached_feature=self.feature, **added
            )
        self.calls += 1
        return noise_pred


def step_unet(pipe: Any, settings: CacheSettings | None) -> Any:
    """The UNet a call of ``pipe`` runs: its plain ``unet``, or a :class:`StepCache` over the bundle's DeepCache
    engines (a clear error where the bundle has none, or another branch)."""
    built = pipe.manifest.unet.deepcache_branch
    if settings is None or (settings.interval == 1 and settings.branch is None):
        return pipe.unet
    if built is None or FULL not in pipe.bundle.components or SHALLOW not in pipe.bundle.components:
        raise BundleError(
            f"cache_interval={settings.interval}: the bundle {pipe.bundle.path} has no DeepCache engines "
            f"({FULL}, {SHALLOW}); rebuild it with {_REBUILD} [BRANCH], or pass cache_interval=1"
        )
    if settings.branch is not None and settings.branch != built:
        raise InputError(
            f"cache_branch={settings.branch}: the bundle's DeepCache engines were built for branch {built}; pass "
            f"cache_branch={built} (or leave it out), or rebuild with {_REBUILD} {settings.branch}"
        )
    if settings.interval == 1:
        return pipe.unet
    _refuse_run_time_lora(pipe)
    full, shallow = _engines(pipe)
    return StepCache(full, shallow, settings.interval)


def _refuse_run_time_lora(pipe: Any) -> None:
    state = pipe._state
    snapshot = getattr(state, "lora", None) if state is not None else None
    if snapshot is not None and snapshot.state.contributions():
        raise InputError(
            "cache_interval > 1 with run-time LoRA: the DeepCache engines hold the weights as built; fuse the LoRA "
            "at build (build-engine --lora FILE --deepcache), unload it, or pass cache_interval=1"
        )


def _engines(pipe: Any) -> tuple[Any, Any]:
    """The two engines, opened once per loaded UNet on its provider."""
    unet = pipe.unet
    with _OPENING:
        if unet not in _OPENED:
            full, shallow = (open_component(pipe.bundle, name, pipe.provider) for name in (FULL, SHALLOW))
            check_weights(pipe.bundle, [FULL, SHALLOW])
            _OPENED[unet] = (full, shallow)
        return _OPENED[unet]
