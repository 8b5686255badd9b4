"""Checking the ``model`` section at config load: the model it describes is built, symbolically.

``check_model(model_config, specs)`` runs ``build_model`` on ``FeatureSpec``s derived from the
feature settings (``vocab_size = max_tokens``, two placeholder classes). Each encoder, fusion and
head factory validates its keys and values on the way; no data is read and nothing is trained.
Any failure is a ``ConfigError`` naming the component's key (``model.encoders.image.units``)
and, where it can be told, the value.

A component registered with ``loads_files`` (a SavedModel, pretrained weights) has its keys
checked but is left out of the dry build, replaced by the modality's default encoder, so that
loading a config never reads a model file or the network; its values are checked when the model
is built for training. A setting whose default is a bool must be a bool, one whose default is a
float must be a number; numeric strings given for a float (YAML reads ``1e-3`` as a string)
become floats, in place. Builds are remembered per (backend, specs, settings), so
loading one config twice builds once. With ``build=False`` (``train.strategy: multi_worker``,
whose strategy must exist before TensorFlow starts) only names, keys and value types are checked.

Example:
    >>> from mmkeras.config import ModelConfig
    >>> from mmkeras.data.schema import FeatureSpec
    >>> specs = [FeatureSpec("text", "text", (8,), "int32", vocab_size=100)]
    >>> check_model(ModelConfig(fusion={"type": "gated", "output_dim": 8}), specs)
    >>> check_model(ModelConfig(encoders={"text": {"type": "embedding", "pooling": "sum"}}), specs)
    Traceback (most recent call last):
    ...
    mmkeras.errors.ConfigError: model.encoders.text.pooling='sum' is not valid; choose one of: 'mean', 'max'
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
from typing import Optional

import keras

from mmkeras import registry
from mmkeras.encoders.base import DEFAULT_ENCODERS, ENCODER_KINDS, build_encoder, check_settings, settings_of
from mmkeras.config_schema import number_from_string
from mmkeras.errors import ConfigError
from mmkeras.models.factory import DEFAULT_FUSION_OUTPUT_DIM, build_model, loss_weights
from mmkeras.models.heads import AUXILIARY_SETTINGS

_PLACEHOLDER_CLASSES = ("class_0", "class_1")
_MAX_REMEMBERED = 64
_built: dict = {}


@dataclasses.dataclass
class _Sizes:
    """What ``build_model`` reads from a preprocessor."""

    input_specs: list
    num_classes: int = len(_PLACEHOLDER_CLASSES)
    class_names: tuple = _PLACEHOLDER_CLASSES


def _lookup(kind: str, settings: dict, where: str, default: Optional[str] = None):
    name = settings.get("type", default)
    try:
        return name, registry.get(kind, name)
    except ValueError as error:
        raise ConfigError(f"{where}.type: {error}") from None


def _check_types(factory, settings: dict, where: str, reserved, extra=None) -> None:
    """A setting whose default is a bool must be a bool; one whose default is a float, a number.

    Numeric strings for a float become floats in ``settings``. Other settings are left to the
    factory, whose values may legitimately take several types (an int or a list of ints).
    """
    defaults = {**settings_of(factory, reserved), **(extra or {})}
    for key, value in settings.items():
        default = defaults.get(key)
        if key == "type" or value is None:
            continue
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ConfigError(f"{where}.{key} must be true or false, got {type(value).__name__} {value!r}")
        if isinstance(default, float) and not isinstance(default, bool):
            number = number_from_string(value)
            if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                raise ConfigError(f"{where}.{key} must be a number, got {type(value).__name__} {value!r}")
            settings[key] = number


def _dry_encoders(model_config, specs) -> dict:
    encoders = {}
    for spec in specs:
        where = f"model.encoders.{spec.column}"
        settings = model_config.encoders.get(spec.column)
        if spec.modality not in ENCODER_KINDS or settings is None:
            continue  # build_model names a bad modality; no settings means the default encoder
        kind = ENCODER_KINDS[spec.modality]
        name, factory = _lookup(kind, settings, where, DEFAULT_ENCODERS[spec.modality])
        _check_types(factory, settings, where, ("name",))
        check_settings(factory, settings, where)
        encoders[spec.column] = {"type": DEFAULT_ENCODERS[spec.modality]} if registry.loads_files(kind, name) else settings
    return encoders


def _named(where: str, settings: dict, message: str) -> ConfigError:
    """``message`` prefixed with the setting it mentions (by key and value, else value), else the component."""
    given = [(key, value) for key, value in settings.items() if key != "type" and str(value)]
    for matches in (lambda k, v: k in message and str(v) in message, lambda k, v: str(v) in message):
        for key, value in given:
            if matches(key, value):
                return ConfigError(f"{where}.{key}={value!r} is not valid: {message}")
    return ConfigError(f"{where} ({settings.get('type')}): {message}")


def _text(error: Exception) -> str:
    return str(error).strip() or type(error).__name__


def _culprit(model_config, specs, error: Exception) -> ConfigError:
    # Only on failure: rebuild piece by piece to tell which component raised.
    for spec in specs:
        settings = model_config.encoders.get(spec.column)
        try:
            build_encoder(keras.Input(spec.shape, dtype=spec.dtype, name=spec.column), spec, settings)
        except Exception:  # noqa: BLE001 - any failure of this encoder is the culprit
            return _named(f"model.encoders.{spec.column}", settings or {}, _text(error))
    try:
        build_model(dataclasses.replace(model_config, head={"type": "softmax"}), _Sizes(specs))
    except Exception:  # noqa: BLE001 - the fusion fails without the configured head too
        return _named("model.fusion", model_config.fusion, _text(error))
    return _named("model.head", model_config.head, _text(error))


@contextlib.contextmanager
def _without_values():
    """Build in a ``keras.StatelessScope``: variables get shapes, never values.

    Running the initializers is most of a dry build's cost, and under JAX each new shape compiles
    (measured: 13 s for the digits model, 0.2 s without). The scope leaves the variables it made
    registered for a later initialization; they are dropped here, since the model is thrown away.
    """
    try:
        from keras.src.backend.common import global_state
    except ImportError:  # another Keras layout: pay for the initializers
        yield
        return
    pending = global_state.get_global_attribute("uninitialized_variables", [], set_to_default=True)
    before = len(pending)
    try:
        with keras.StatelessScope(initialize_variables=False):
            yield
    finally:
        pending = global_state.get_global_attribute("uninitialized_variables")
        if pending is not None:
            del pending[before:]


def check_model(model_config, specs, build: bool = True) -> None:
    """Build the model ``model_config`` describes for ``specs``; a ``ConfigError`` names what is wrong.

    Args:
        model_config: the ``model`` section (a ``ModelConfig``); float settings given as numeric
            strings are converted in place.
        specs: one ``FeatureSpec`` per feature column (``TextFeature.spec(column)``, ...).
        build: ``False`` checks the components' names, keys and value types only. Building can
            start TensorFlow's runtime (a Keras LSTM lists the GPUs), which must not happen before
            a ``MultiWorkerMirroredStrategy`` exists.
    """
    specs = list(specs)
    _, fusion_class = _lookup("fusion", model_config.fusion, "model.fusion")
    _check_types(fusion_class, model_config.fusion, "model.fusion", ("name", "num_classes"))
    _, head_factory = _lookup("head", model_config.head, "model.head")
    _check_types(head_factory, model_config.head, "model.head", ("name",), AUXILIARY_SETTINGS)
    dry = dataclasses.replace(model_config, encoders=_dry_encoders(model_config, specs))
    if not build:
        fusion = {"output_dim": DEFAULT_FUSION_OUTPUT_DIM, **model_config.fusion}  # what build_model passes
        check_settings(fusion_class, fusion, "model.fusion", reserved=("name", "num_classes"))
        check_settings(head_factory, model_config.head, "model.head", extra=AUXILIARY_SETTINGS)
        return
    key = (keras.backend.backend(), tuple(specs),
           json.dumps(dataclasses.asdict(dry), sort_keys=True, default=repr))
    if key in _built:
        return
    try:
        with _without_values():
            build_model(dry, _Sizes(specs))
            loss_weights(dry, _Sizes(specs))
    except ConfigError as error:
        # The factory names a refused fusion as "model.fusion (<type>): <the layer's message>".
        prefix = f"model.fusion ({model_config.fusion.get('type')}): "
        if str(error).startswith(prefix):
            raise _named("model.fusion", model_config.fusion, str(error)[len(prefix):]) from None
        raise
    except Exception as error:  # noqa: BLE001 - a Keras layer refusing a setting, whatever its type
        with _without_values():
            culprit = _culprit(dry, specs, error)
        raise culprit from None
    if len(_built) >= _MAX_REMEMBERED:
        _built.clear()
    _built[key] = True
