"""mmkeras: multimodal (text, image, speech) models for Keras 3, from files to TF Serving.

The public API is what this module exports. Names are imported lazily so that the Keras backend
(``KERAS_BACKEND`` or ``train.backend``) can still be chosen after ``import mmkeras``. As
``import keras_hub`` does, ``import mmkeras`` makes every mmkeras Keras class known to
``keras.saving`` (now if Keras is imported, else as soon as it is), so a saved ``.keras`` model
loads with ``keras.models.load_model`` alone.

Example:
    >>> import mmkeras
    >>> mmkeras.load_config.__name__
    'load_config'
    >>> mmkeras.validate.__name__, mmkeras.registry.__name__
    ('validate', 'mmkeras.registry')
"""

from __future__ import annotations

import importlib

from mmkeras import registry as _registry

__version__ = "0.1.0"

_EXPORTS = {
    "load_config": "mmkeras.config",
    "config_from_dict": "mmkeras.config",
    "apply_overrides": "mmkeras.config",
    "Config": "mmkeras.config",
    "ConfigError": "mmkeras.errors",
    "registry": "mmkeras.registry",
    "datasets": "mmkeras.datasets",
    "Preprocessor": "mmkeras.data.preprocessor",
    "build_dataset": "mmkeras.data.pipeline",
    "fit_preprocessor": "mmkeras.data.pipeline",
    "validate": "mmkeras.data.validate",
    "build_model": "mmkeras.models.factory",
    "train": "mmkeras.training.trainer",
    "pretrain": "mmkeras.training.pretrain",
    "distill": "mmkeras.training.distill",
    "distill_report": "mmkeras.evaluation.comparison",
    "retrieve": "mmkeras.evaluation.retrieval",
    "Run": "mmkeras.training.run",
    "evaluate_run": "mmkeras.evaluation.report",
    "export_run": "mmkeras.export.serving",
}

_MODULE_EXPORTS = ("registry", "datasets")

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'mmkeras' has no attribute {name!r}")
    module = importlib.import_module(_EXPORTS[name])
    value = module if name in _MODULE_EXPORTS else getattr(module, name)
    globals()[name] = value
    return value


_registry.register_keras_classes_on_import()
