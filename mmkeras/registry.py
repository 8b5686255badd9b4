"""The one place that maps config strings to factories.

Kinds: ``"text_encoder"``, ``"image_encoder"``, ``"audio_encoder"``, ``"fusion"``, ``"head"``.
Every component registers itself where it is defined; ``mmkeras.registry.load_all()`` imports
the modules that do so, so that ``names(kind)`` is complete.

Example:
    >>> from mmkeras import registry
    >>> @registry.register("fusion", "my_fusion")
    ... class MyFusion: ...
    >>> registry.get("fusion", "my_fusion") is MyFusion
    True
    >>> registry.unregister("fusion", "my_fusion")
"""

from __future__ import annotations

import importlib

KINDS = ("text_encoder", "image_encoder", "audio_encoder", "fusion", "head")

# Modules whose import registers components; kept here so that `names()` is always complete.
_REGISTERING_MODULES = (
    "mmkeras.layers",
    "mmkeras.encoders",
    "mmkeras.models.heads",
)

_REGISTRY: dict[str, dict[str, object]] = {kind: {} for kind in KINDS}
_loaded = False


def _check_kind(kind: str) -> None:
    if kind not in _REGISTRY:
        raise ValueError(f"Unknown registry kind {kind!r}; valid kinds: {', '.join(KINDS)}")


def register(kind: str, name: str):
    """Decorator: register ``obj`` under ``name`` for ``kind``."""
    _check_kind(kind)

    def decorator(obj):
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing is not obj:
            raise ValueError(f"{kind} {name!r} is registered twice ({existing} and {obj})")
        _REGISTRY[kind][name] = obj
        return obj

    return decorator


def unregister(kind: str, name: str) -> None:
    """Remove a registration (for tests and plug-ins)."""
    _check_kind(kind)
    _REGISTRY[kind].pop(name, None)


def load_all() -> None:
    """Import every module that registers components (idempotent)."""
    global _loaded
    if _loaded:
        return
    for module in _REGISTERING_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:
            # Only tolerate the module itself being absent, never a broken import inside it.
            if error.name != module:
                raise
    _loaded = True


def names(kind: str) -> list[str]:
    """Sorted names registered for ``kind``."""
    _check_kind(kind)
    load_all()
    return sorted(_REGISTRY[kind])


def get(kind: str, name: str):
    """The factory or class registered as ``name``; the error lists the valid names."""
    _check_kind(kind)
    load_all()
    try:
        return _REGISTRY[kind][name]
    except KeyError:
        valid = ", ".join(sorted(_REGISTRY[kind])) or "(none registered)"
        raise ValueError(f"Unknown {kind} {name!r}; valid choices: {valid}") from None
