"""The one place that maps config strings to factories.

Kinds: ``"text_encoder"``, ``"image_encoder"``, ``"audio_encoder"``, ``"fusion"``, ``"head"``.
Every component registers itself where it is defined; ``mmkeras.registry.load_all()`` imports
the modules that do so, so that ``names(kind)`` is complete (it also registers every mmkeras Keras
layer as serializable, since those modules define them).

``import mmkeras`` calls ``register_keras_classes_on_import()``: the modules above are imported
at once when Keras is already imported, else right after Keras finishes importing (an import
hook), so ``keras.models.load_model("best.keras")`` finds every mmkeras layer whichever of
``keras`` and ``mmkeras`` is imported first, and ``import mmkeras`` alone never imports Keras
(the CLI picks the backend after it).

A component that reads files or the network while it is built (a SavedModel, pretrained weights)
is registered with ``loads_files=True``: the config-load check (``mmkeras.models.dry_build``)
then checks its keys without building it.

Example:
    >>> from mmkeras import registry
    >>> @registry.register("fusion", "my_fusion")
    ... class MyFusion: ...
    >>> registry.get("fusion", "my_fusion") is MyFusion
    True
    >>> registry.unregister("fusion", "my_fusion")
    >>> registry.loads_files("text_encoder", "hub"), registry.loads_files("text_encoder", "embedding")
    (True, False)
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys
import warnings

KINDS = ("text_encoder", "image_encoder", "audio_encoder", "fusion", "head")

# Modules whose import registers components; kept here so that `names()` is always complete.
_REGISTERING_MODULES = (
    "mmkeras.layers",
    "mmkeras.encoders",
    "mmkeras.models.heads",
)

_REGISTRY: dict[str, dict[str, object]] = {kind: {} for kind in KINDS}
# (kind, name) of the components whose build loads files, as declared by register(loads_files=True).
_LOADS_FILES: set = set()
_loaded = False


def _check_kind(kind: str) -> None:
    if kind not in _REGISTRY:
        raise ValueError(f"Unknown registry kind {kind!r}; valid kinds: {', '.join(KINDS)}")


def register(kind: str, name: str, *, loads_files: bool = False):
    """Decorator: register ``obj`` under ``name`` for ``kind``.

    ``loads_files``: building it reads files or the network (see ``loads_files()``).
    """
    _check_kind(kind)

    def decorator(obj):
        existing = _REGISTRY[kind].get(name)
        if existing is not None and existing is not obj:
            raise ValueError(f"{kind} {name!r} is registered twice ({existing} and {obj})")
        _REGISTRY[kind][name] = obj
        if loads_files:
            _LOADS_FILES.add((kind, name))
        return obj

    return decorator


def unregister(kind: str, name: str) -> None:
    """Remove a registration (for tests and plug-ins)."""
    _check_kind(kind)
    _REGISTRY[kind].pop(name, None)


def loads_files(kind: str, name: str) -> bool:
    """True when building ``name`` reads files or the network, so a dry build must not run it."""
    _check_kind(kind)
    return (kind, name) in _LOADS_FILES


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


class _RegisteringLoader:
    """Keras's own loader, plus the registration once ``keras`` has executed (any other call is Keras's)."""

    def __init__(self, loader):
        self._loader = loader

    def __getattr__(self, name):
        if name == "_loader":
            raise AttributeError(name)
        return getattr(self._loader, name)

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        _remove_hook()
        try:
            load_all()
        except Exception as error:  # noqa: BLE001 - never make `import keras` fail because of mmkeras
            warnings.warn(f"mmkeras could not register its Keras classes ({error!r}); "
                          "import mmkeras.layers before loading a .keras file", stacklevel=2)


class _AfterKerasImport(importlib.abc.MetaPathFinder):
    """Import hook: once ``keras`` has executed, import the registering modules (then it leaves).

    It stays until Keras actually runs: a mere ``importlib.util.find_spec("keras")`` (TensorFlow
    makes one) must not use it up.
    """

    def find_spec(self, fullname, path=None, target=None):
        if fullname != "keras":
            return None
        spec = None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


def _remove_hook() -> None:
    sys.meta_path[:] = [finder for finder in sys.meta_path if not isinstance(finder, _AfterKerasImport)]


def register_keras_classes_on_import() -> None:
    """Register mmkeras' Keras classes with ``keras.saving`` now if Keras is imported, else just after it is."""
    if "keras" in sys.modules:
        load_all()
    elif not any(isinstance(finder, _AfterKerasImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _AfterKerasImport())
