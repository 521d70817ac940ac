"""diffusers-compatible configuration: ``register_to_config``, ``from_config`` and the frozen ``config``.

The semantics follow ``diffusers.configuration_utils`` so that swapping schedulers with
``B.from_config(a.config)`` keeps the same keys as diffusers does (including the "hidden" keys of
the original class, which let a later swap back recover them).
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

logger = logging.getLogger(__name__)

CONFIG_NAME = "scheduler_config.json"


class FrozenConfig(dict):
    """A read-only dict whose keys are also attributes, like diffusers' ``FrozenDict``."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"config has no key {name!r}") from None

    def _readonly(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError(
            "a scheduler's config is frozen; make a new scheduler with from_config(config, key=value)"
        )

    __setitem__ = __delitem__ = setdefault = pop = popitem = update = clear = _readonly
    __setattr__ = _readonly

    def __deepcopy__(self, memo: dict[int, Any]) -> FrozenConfig:
        """Frozen: a copied scheduler shares its config (MultiDiffusion copies one scheduler per view batch)."""
        return self


def register_to_config(init):
    """Decorator for ``__init__``: records every argument (passed or default) in ``self.config``."""

    signature = inspect.signature(init)
    parameters = {name: p.default for name, p in list(signature.parameters.items())[1:] if name != "kwargs"}

    @functools.wraps(init)
    def inner_init(self, *args, **kwargs):
        private = {k: v for k, v in kwargs.items() if k.startswith("_")}
        kwargs = {k: v for k, v in kwargs.items() if not k.startswith("_")}
        values = dict(zip(parameters, args))
        values.update({k: kwargs.get(k, default) for k, default in parameters.items() if k not in values})
        defaulted = set(values) - set(kwargs) - set(list(parameters)[: len(args)])
        if defaulted:
            values["_use_default_values"] = sorted(defaulted)
        self.register_to_config(**private, **values)
        init(self, *args, **kwargs)

    return inner_init


def load_config(path: str | os.PathLike) -> dict[str, Any]:
    """Read a ``scheduler_config.json`` from a file, a scheduler folder, or a model folder."""
    path = Path(path)
    candidates = [path] if path.is_file() else [path / CONFIG_NAME, path / "scheduler" / CONFIG_NAME]
    for candidate in candidates:
        if candidate.is_file():
            return _read_config(candidate)
    raise FileNotFoundError(
        f"no scheduler config at {path}: expected a {CONFIG_NAME} file, or a folder holding one "
        f"(directly or in scheduler/)"
    )


def _read_config(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the scheduler config {path}: {error}; it is damaged") from error
    if not isinstance(data, dict):
        raise ValueError(f"the scheduler config {path} does not hold a JSON object; it is damaged")
    return data


class ConfigMixin:
    """Config handling shared by all schedulers."""

    config_name = CONFIG_NAME
    _compatibles: tuple[str, ...] = ()
    _internal_dict: FrozenConfig  # set by register_to_config, through __dict__

    def register_to_config(self, **kwargs: Any) -> None:
        current = self.__dict__.get("_internal_dict", {})
        self.__dict__["_internal_dict"] = FrozenConfig({**current, **kwargs})

    @property
    def config(self) -> FrozenConfig:
        return self._internal_dict

    @classmethod
    def init_keys(cls) -> set[str]:
        params = inspect.signature(cls.__init__).parameters
        return {name for name in params if name not in ("self", "kwargs")}

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any] | str | os.PathLike | None = None,
        return_unused_kwargs: bool = False,
        **kwargs,
    ):
        """Make a scheduler from a config dict, another scheduler's ``.config``, or a path.

        Keyword arguments override config values. Keys this class does not take are ignored for
        construction but kept in its config, as diffusers does.
        """
        if config is None:
            config = {}
        elif isinstance(config, (str, os.PathLike)):
            config = load_config(config)
        elif not isinstance(config, Mapping):
            raise TypeError(
                f"{cls.__name__}.from_config expects a dict, a scheduler's .config or a path, got {type(config).__name__}"
            )
        class_name = config.get("_class_name", cls.__name__)
        if not isinstance(class_name, str):
            raise ValueError(f"`_class_name` in the scheduler config must be a string, got {class_name!r}")

        used_defaults = set(config.get("_use_default_values", []))
        config = {k: v for k, v in config.items() if k not in used_defaults and k != "_use_default_values"}
        original = dict(config)

        expected = cls.init_keys()
        init_dict = {}
        for key in expected:
            if key in kwargs:
                init_dict[key] = kwargs.pop(key)
            elif key in config:
                init_dict[key] = config[key]

        known_elsewhere = (
            set().union(*(c.init_keys() for c in _compatible_classes(cls))) if cls._compatibles else set()
        )
        ignored = {
            k: v
            for k, v in config.items()
            if k not in expected and k not in known_elsewhere and not k.startswith("_")
        }
        if ignored:
            logger.warning("%s ignores config keys it does not use: %s", cls.__name__, sorted(ignored))

        scheduler = cls(**init_dict)
        hidden = {k: v for k, v in original.items() if k not in init_dict}
        if "_class_name" in hidden:
            hidden["_class_name"] = cls.__name__
        scheduler.register_to_config(**hidden)
        if return_unused_kwargs:
            return scheduler, {**kwargs, **hidden}
        return scheduler

    def save_config(self, save_directory: str | os.PathLike) -> Path:
        """Write ``scheduler_config.json`` into ``save_directory`` (diffusers can read it)."""
        path = Path(save_directory)
        path.mkdir(parents=True, exist_ok=True)
        out = path / self.config_name
        out.write_text(self.to_json_string(), encoding="utf-8")
        return out

    def to_json_string(self) -> str:
        config = {k: v for k, v in self.config.items() if k != "_use_default_values"}
        config["_class_name"] = type(self).__name__
        return json.dumps(_jsonable(config), indent=2, sort_keys=True) + "\n"

    @property
    def compatibles(self) -> list[type]:
        return _compatible_classes(type(self))

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string()}"


def _compatible_classes(cls: type[ConfigMixin]) -> list[type[ConfigMixin]]:
    from . import get_scheduler_class

    return [get_scheduler_class(name) for name in cls._compatibles]


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
