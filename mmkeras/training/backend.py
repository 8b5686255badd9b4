"""Choosing the Keras backend before Keras is imported.

Keras fixes its backend when it is first imported, so the CLI calls ``select_backend`` with the
config's ``train.backend`` before anything imports Keras.

Example:
    >>> import os
    >>> select_backend(None) == os.environ.get("KERAS_BACKEND", "tensorflow")
    True
"""

from __future__ import annotations

import os
import sys

BACKENDS = ("tensorflow", "jax")


def select_backend(requested: str | None) -> str:
    """Set ``KERAS_BACKEND`` to ``requested`` (or keep the environment's, default tensorflow).

    Raises ``RuntimeError`` when Keras is already imported with another backend, since the switch
    would silently not happen.
    """
    backend = requested or os.environ.get("KERAS_BACKEND") or "tensorflow"
    if backend not in BACKENDS:
        raise ValueError(f"train.backend={backend!r} is not valid; choose one of: {', '.join(BACKENDS)}")
    if "keras" in sys.modules:
        import keras

        current = keras.backend.backend()
        if current != backend:
            raise RuntimeError(
                f"train.backend={backend!r} but Keras was already imported with the {current!r} backend; "
                f"set KERAS_BACKEND={backend} before importing keras (or use the mmkeras CLI, which does)"
            )
        return backend
    os.environ["KERAS_BACKEND"] = backend
    return backend
