"""Export for TF Serving: a run as a versioned SavedModel that takes raw bytes.

- ``serving.py``: ``export_run(run_dir, base)`` writes ``BASE/<N>/`` with the ``serving_default``
  (raw text / image bytes / WAV bytes) and ``serve_tensors`` signatures.
- the per-column checks of raw inputs live with the columns (``mmkeras.data.columns``).
- ``request_shape.py``: a wrong-rank input refused by name; an empty request answered with empty outputs.
- ``quantize.py``: ``export_run(..., quantize="int8")``: Keras's int8 weights for Dense, EinsumDense, Embedding.
- ``versions.py``: ``BASE/<N>`` reserved atomically (concurrent exports), stale staging folders removed.
- ``wav_bytes.py``: audio in other formats converted to WAV on the client (predict, warm-up).
- ``warmup.py``: ``assets.extra/tf_serving_warmup_requests`` from real validation examples.
- ``rest.py``: TF Serving REST bodies (row and columnar) in and out.
- ``predict.py``: ``predict_files``, ``predict_request``, ``predict_example`` on an export.
"""
