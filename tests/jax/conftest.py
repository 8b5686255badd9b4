"""Tests of the JAX path (Colab TPU route). They run in `make test`'s second pytest session, under
KERAS_BACKEND=jax; the backend is fixed when Keras is imported, so the TF session does not collect them."""

import os

collect_ignore_glob = [] if os.environ.get("KERAS_BACKEND") == "jax" else ["test_*.py"]
