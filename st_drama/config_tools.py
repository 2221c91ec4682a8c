"""What every stage config shares: updating a (frozen, possibly nested) config from keyword changes, and its JSON
form. Each stage's defaults live in its own ``config.py``; this module holds none."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, TypeVar

ConfigT = TypeVar("ConfigT")


def updated(config: ConfigT, changes: Mapping[str, Any] | None = None) -> ConfigT:
    """A copy of the dataclass ``config`` with ``changes`` applied. A change to a nested config may be a mapping of
    its own fields (``{"crop": {"per_document": 4}}``), merged into the nested config rather than replacing it; an
    unknown field is a ValueError naming the config and its fields."""
    if not changes:
        return config
    names = {field.name for field in dataclasses.fields(config)}
    unknown = sorted(set(changes) - names)
    if unknown:
        raise ValueError(f"{type(config).__name__} has no setting {unknown[0]!r}; its settings: {sorted(names)}.")
    values = {}
    for name, value in changes.items():
        current = getattr(config, name)
        if isinstance(value, Mapping) and dataclasses.is_dataclass(current):
            value = updated(current, value)
        values[name] = value
    return dataclasses.replace(config, **values)


def config_from(config_class: type[ConfigT], config: ConfigT | None, overrides: Mapping[str, Any]) -> ConfigT:
    """``config`` (default: ``config_class()``) with keyword ``overrides`` applied: what every stage function does
    with its ``config`` argument and its ``**overrides``."""
    if config is not None and not isinstance(config, config_class):
        raise TypeError(f"config must be a {config_class.__name__}, got {type(config).__name__}.")
    return updated(config if config is not None else config_class(), overrides)


def nested(value: Any, config_class: type[ConfigT]) -> ConfigT:
    """A nested config given as a mapping of its fields, or as the config itself."""
    return config_class(**value) if isinstance(value, Mapping) else value


def as_dict(config: Any) -> dict[str, Any]:
    """The config as plain data (nested configs as dicts, tuples as lists): what run records fingerprint."""
    from .runs import normalized

    return normalized(dataclasses.asdict(config))
