"""``build-engine FILE.ckpt --allow-pickle``: a pickled checkpoint's tensors re-saved as safetensors, so that
diffusers never opens a pickle. Unpickling runs what the file holds, hence the explicit option.

A1111-era files also pickle training objects (PyTorch Lightning callbacks, OmegaConf configs); a class
whose module is not installed here is read as an empty stand-in, since only the tensors are kept.
"""

from __future__ import annotations

import logging
import pickle
import types
from pathlib import Path
from typing import Any

from sdrt.export.errors import CheckpointError

log = logging.getLogger(__name__)


class _StandInUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            log.info("pickle: %s.%s is not installed here; read as an empty stand-in", module, name)
            return type(name, (_StandIn,), {"__module__": module})


class _StandIn:
    def __init__(self, *args, **kwargs) -> None:
        pass

    def __setstate__(self, state) -> None:
        pass


_PICKLE = types.SimpleNamespace(**{**vars(pickle), "Unpickler": _StandInUnpickler})


def unpickle_to_safetensors(path: Path, target: Path, check_layout) -> Path:
    """The state dict of the pickle ``path`` (its ``state_dict`` entry, as diffusers takes it), tensors only,
    checked with ``check_layout(path, keys)`` and saved as ``target``."""
    import torch
    from safetensors.torch import save_file

    try:
        state = torch.load(str(path), map_location="cpu", weights_only=False, pickle_module=_PICKLE)
    except Exception as err:  # pickle, zipfile and torch raise many kinds for a damaged file
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} cannot be unpickled ({reason}); it is damaged, download it again"
        ) from err
    state = _innermost_state_dict(path, state)
    tensors = (
        {k: v for k, v in state.items() if isinstance(v, torch.Tensor)} if isinstance(state, dict) else {}
    )
    check_layout(path, list(tensors))
    skipped = len(state) - len(tensors)
    if skipped:
        log.info("%s: %d entries that are not tensors left out", path, skipped)
    save_file({k: v.detach().contiguous().clone() for k, v in tensors.items()}, str(target))
    return target


def _innermost_state_dict(path: Path, state: Any) -> Any:
    """``state["state_dict"]["state_dict"]...`` as far as it goes; a pickle can make that chain a cycle."""
    seen: set[int] = set()
    while isinstance(state, dict) and "state_dict" in state:
        if id(state) in seen:
            raise CheckpointError(
                f"{path}: its 'state_dict' entry refers back to itself (a cycle), so it holds no weights; "
                "it is not a Stable Diffusion checkpoint, use the original file"
            )
        seen.add(id(state))
        state = state["state_dict"]
    return state
