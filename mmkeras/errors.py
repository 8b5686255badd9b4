"""The error types mmkeras raises for user mistakes; each message names the culprit.

This module imports nothing from mmkeras, so every other module can raise these without an import
cycle. ``mmkeras.config.ConfigError`` is the same class.

Example:
    >>> try:
    ...     raise ConfigError("unknown key train.epoch; valid keys of train: epochs")
    ... except ValueError as error:
    ...     print(error)
    unknown key train.epoch; valid keys of train: epochs
"""

from __future__ import annotations


class ConfigError(ValueError):
    """A config value or key is wrong; the message names the key path (``data.features.text.x``)."""
