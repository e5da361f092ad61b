"""The model registry: builders registered by name, created with keyword-only config.

Modelled on torchvision's ``models/_api.py``: ``register_model`` decorates a builder,
``create`` is the only indirection, unknown names and duplicate registrations raise.

>>> create("no_such_model")
Traceback (most recent call last):
...
ValueError: name: expected one of [...], got 'no_such_model'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

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
    return _BUILDERS[name](**config)


def _import_families() -> None:
    # Importing the package registers every family (each module decorates its builders).
    import handlab.models  # noqa: F401
