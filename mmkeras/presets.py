"""KerasHub preset handles: resolving them, reading their JSON configs, one sentence when they fail.

A handle is anything ``keras_hub`` accepts (``bert_tiny_en_uncased``, ``kaggle://...``, ``hf://...``)
or a local preset directory. The config check, the preset columns and the ``keras_hub`` encoder all
go through here, so an unresolvable handle gets the same message (naming the config key, the
handle and the way out) wherever it is met first.

Example:
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> try:
    ...     read_preset_json(folder, "config.json", "model.encoders.text")
    ... except ValueError as error:
    ...     print(str(error).startswith(f"model.encoders.text.preset={folder!r} cannot be loaded"))
    True
"""

from __future__ import annotations

import json

from mmkeras.errors import ConfigError

HINT = "without network access pass a local preset directory (written with save_to_preset(dir))"


def preset_error(where: str, handle: str, error: BaseException) -> ConfigError:
    """``<where>.preset=<handle> cannot be loaded (<why>); <hint>`` as a ConfigError (a ValueError)."""
    why = " ".join(f"{type(error).__name__}: {error}".split())[:240]
    return ConfigError(f"{where}.preset={handle!r} cannot be loaded ({why}); {HINT}")


def read_preset_json(handle: str, filename: str, where: str) -> dict:
    """A JSON file of the preset (``config.json``, ``preprocessor.json``, ...), downloaded if remote."""
    from keras_hub.src.utils.preset_utils import get_file

    try:
        with open(get_file(handle, filename)) as handle_file:
            return json.load(handle_file)
    except Exception as error:  # noqa: BLE001 - network, missing files, unknown names: one sentence
        raise preset_error(where, handle, error) from None
