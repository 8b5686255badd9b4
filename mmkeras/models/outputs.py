"""The names of the model's outputs, stated once; training, evaluation and export import them.

``build_model`` names its main output ``PROBABILITIES``; with ``model.head.auxiliary: true`` it
adds one output per column, named ``aux_name(column)``. The serving signature's
``probabilities`` output is the same name.

Example:
    >>> PROBABILITIES, aux_name("image")
    ('probabilities', 'aux_image')
    >>> aux_column("aux_image"), aux_column(PROBABILITIES)
    ('image', None)
"""

from __future__ import annotations

from typing import Optional

#: The main output: ``(batch, num_classes)`` float32 class probabilities.
PROBABILITIES = "probabilities"
#: What every auxiliary output's name starts with.
AUX_PREFIX = "aux_"


def aux_name(column: str) -> str:
    """The name of the auxiliary output (and its layer) that classifies from ``column`` alone."""
    return f"{AUX_PREFIX}{column}"


def aux_column(output_name: str) -> Optional[str]:
    """The column an auxiliary output classifies from; None for any other output."""
    return output_name[len(AUX_PREFIX) :] if output_name.startswith(AUX_PREFIX) else None
