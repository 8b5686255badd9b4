"""Settings whose default, ``auto``, depends on where the run trains.

``train.jit_compile: auto`` compiles the train step with XLA under JAX (op-by-op JAX is about 10x
slower, and eager steps under DataParallel on several devices crashed natively) and on TPUs (which
need it), and leaves it off for TensorFlow on CPU and GPU (measured here: 0.57-0.83x on CPU,
benchmarks/fusion_cost.py). ``train.verbose: auto`` is a progress bar on a terminal and one line
per epoch (Keras ``verbose=2``) when output goes to a file or a pipe.

Example:
    >>> resolve_jit_compile("auto", "jax", "cpu"), resolve_jit_compile("auto", "tensorflow", "cpu")
    (True, False)
    >>> resolve_jit_compile("auto", "tensorflow", "tpu"), resolve_jit_compile(False, "jax", "cpu")
    (True, False)
    >>> import io
    >>> resolve_verbose("auto", io.StringIO()), resolve_verbose(0)
    (2, 0)
"""

from __future__ import annotations

import sys


def resolve_jit_compile(value, backend: str, strategy: str) -> bool:
    """``train.jit_compile`` as a bool: ``auto`` is on under JAX and on TPUs, off otherwise."""
    if value == "auto":
        return backend == "jax" or strategy == "tpu"
    return bool(value)


def resolve_verbose(value, stream=None) -> int:
    """``train.verbose`` as Keras's 0/1/2: ``auto`` is 1 (progress bar) on a terminal, else 2."""
    if value != "auto":
        return int(value)
    stream = sys.stdout if stream is None else stream
    return 1 if hasattr(stream, "isatty") and stream.isatty() else 2
