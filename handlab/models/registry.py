"""The model registry: builders registered by name, created with keyword-only config.

Modelled on torchvision's ``models/_api.py``: ``register_model`` decorates a builder,
``create`` is the only indirection, unknown names and duplicate registrations raise.

>>> create("no_such_model")
Traceback (most recent call last):
...
ValueError: name: expected one of [...], got 'no_such_model'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from torch import nn

from handlab.errors import InputError

__all__ = ["create", "list_models", "register_model"]

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Register ``fn`` as the builder for ``name``; a second registration of a name raises."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is already registered")
        _BUILDERS[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _import_families()
    return sorted(_BUILDERS)


def create(name: str, **config: Any) -> nn.Module:
    """Build model ``name`` with keyword-only ``config`` (see each family's config dataclass)."""
    _import_families()
    if name not in _BUILDERS:
        raise ValueError(f"name: expected one of {sorted(_BUILDERS)}, got {name!r}")
    builder = _BUILDERS[name]
    known = _config_fields(builder)
    unknown = sorted(set(config) - known) if known is not None else []
    if unknown:
        raise InputError(
            f"model config (--model-config) of {name!r}: unknown keys {unknown}; expected some "
            f"of {sorted(known)}"
        )
    return builder(**config)


def _config_fields(builder: Callable[..., nn.Module]) -> set[str] | None:
    """The fields of the config dataclass a builder passes its keywords to (``XConfig(**config)``),
    found among the global names it uses; ``None`` when it uses none."""
    code, scope = getattr(builder, "__code__", None), getattr(builder, "__globals__", {})
    names = [n for n in code.co_names if n.endswith("Config")] if code is not None else []
    found = [scope.get(n) for n in names]
    classes = [c for c in found if dataclasses.is_dataclass(c)]
    return {f.name for f in dataclasses.fields(classes[0])} if classes else None


def _import_families() -> None:
    # Importing the package registers every family (each module decorates its builders).
    import handlab.models  # noqa: F401
