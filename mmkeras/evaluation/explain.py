"""``explain_example(run_dir, split, index, out)``: which modality drove the run's decision on one example.

The example is the ``index``-th row of the split's manifest (0-based, manifest order). Its
preprocessed features go through ``mmkeras.evaluation.attribution.integrated_gradients``; the
figure ``out`` (PNG) shows one panel per column the run has, chosen by what the model input is:
pixels ``(height, width, channels)`` as the image with its attribution overlaid, a
``(frames, bins)`` input as the spectrogram, token ids as the tokens coloured by their
attribution (red pushed towards the predicted class, blue against it) and a bar of the modality
shares. ``out`` with the suffix ``.json`` holds the same numbers. The prediction is reported with
the run's calibrated probabilities (``mmkeras.evaluation.calibration``; temperature scaling never
changes the predicted class, and the attribution explains the model's raw probability).

It needs only a trained run, not its report: ``mmkeras evaluate`` need not have run.

Example:
    >>> check_index(31, "test", 32)
    >>> check_index(500, "test", 32)
    Traceback (most recent call last):
    ValueError: --index 500 is outside the test split (32 examples: 0-31)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mmkeras.evaluation.attribution import integrated_gradients
from mmkeras.training.run import Run, read_run_backend

TOP_CLASSES = 5


def check_index(index: int, split: str, count: int) -> None:
    """Raise a ValueError naming the split and its size unless ``0 <= index < count``."""
    if index < 0:
        raise ValueError(f"--index must be 0 or more (the row of the {split} split, 0-based); got {index}")
    if index >= count:
        rows = f"{count} examples: 0-{count - 1}" if count else "it is empty"
        raise ValueError(f"--index {index} is outside the {split} split ({rows})")


def token_strings(column, ids) -> list:
    """The token of each id of a text column (None for padding), from its vocabulary or tokenizer."""
    from mmkeras.data.columns.text import NUM_RESERVED_IDS, OOV_ID

    vectorizer = getattr(column, "vectorizer", None)
    tokenizer = None if vectorizer is not None else getattr(column, "tokenizer", None)
    out = []
    for token_id in (int(i) for i in ids):
        if token_id == column.spec.padding_id:
            out.append(None)
        elif vectorizer is not None:
            out.append("[OOV]" if token_id == OOV_ID else vectorizer.vocabulary[token_id - NUM_RESERVED_IDS])
        else:
            out.append(str(tokenizer.id_to_token(token_id)) if tokenizer is not None else str(token_id))
    return out


def _load_example(run: Run, split: str, index: int):
    """``(loaded run, features, label, row)`` of the split's ``index``-th row, or a clear error."""
    from mmkeras.config import load_config
    from mmkeras.data.diagnosis import data_errors
    from mmkeras.data.pipeline import SPLITS, build_dataset, num_examples, split_path
    from mmkeras.data.rows import is_tfrecord_path, read_cells
    from mmkeras.evaluation.predictions import load_run

    read_run_backend(run.run_dir)  # a missing folder, or one that is not a run
    run.model_path()  # a failed run, or one without a trained model
    if split not in SPLITS:
        raise ValueError(f"--split must be one of {', '.join(SPLITS)}; got {split!r}")
    config = load_config(run.config_file)
    if not getattr(config.data, split):
        raise ValueError(f"the run's config has no data.{split} manifest to explain an example of")
    check_index(index, split, num_examples(config, split, training=False))  # every row, as evaluated
    loaded = load_run(run)
    dataset = build_dataset(config, split, loaded.preprocessor, training=False, batch_size=1, drop_remainder=False)
    with data_errors(config, loaded.preprocessor, [split]):
        batch = next(iter(dataset.skip(index).take(1)), None)
    if batch is None:
        raise ValueError(f"row {index} of the {split} split was dropped as unreadable (data.on_error: skip)")
    path = split_path(config, split)
    row = {"number": index + 1, "manifest": Path(path).name}
    if not is_tfrecord_path(path):
        _, cells = read_cells(path, loaded.columns, config.data.label)
        row["cells"] = cells[index]
    return loaded, {k: np.asarray(v) for k, v in batch[0].items()}, int(np.asarray(batch[1]).reshape(-1)[0]), row


def explain_example(run_dir, split: str = "test", index: int = 0, out="explain.png", *, steps: int = 64) -> dict:
    """Explain the run's prediction on row ``index`` of ``split``; write ``out`` and ``out`` as .json.

    Returns what the JSON holds: ``run_dir``, ``split``, ``index``, ``row`` (1-based ``number``,
    ``manifest`` and its ``cells``), ``label``, ``prediction`` ``{"class", "probability"}``,
    ``probabilities`` ``{class: p}``, ``top_classes`` ``[[class, p], ...]``, ``temperature``,
    ``shares`` / ``attributions`` / ``presence_attributions`` (the flag's part) ``{column: value}``, ``tokens`` ``{column: [[token, attribution],
    ...]}`` for token-id columns, ``completeness_gap``, ``methods``, ``figure`` and ``json``.

    Raises ValueError / FileNotFoundError (RunFailedError for a failed run), each one sentence.
    """
    from mmkeras.evaluation.calibration import apply_temperature, head_kind, run_temperature
    from mmkeras.evaluation.explain_figure import write_figure

    run = Run(run_dir)
    loaded, features, label, row = _load_example(run, split, index)
    columns, class_names = loaded.columns, list(loaded.preprocessor.class_names)
    result = integrated_gradients(loaded.model, features, columns, steps=steps)
    temperature = run_temperature(run)
    probabilities = apply_temperature(result["probabilities"], temperature, head_kind(loaded.config))[0]
    predicted = int(result["targets"][0])
    tokens = {}
    for column in columns:
        if not np.issubdtype(features[column].dtype, np.floating):
            values = result["inputs"][column]
            strings = token_strings(loaded.preprocessor.columns[column], features[column][0])
            tokens[column] = [[token, None if values is None else float(values[0][i])]
                              for i, token in enumerate(strings) if token is not None]
    out = Path(out)
    explanation = {
        "run_dir": str(run.run_dir), "split": split, "index": index, "row": row,
        "label": class_names[label] if 0 <= label < len(class_names) else None,
        "prediction": {"class": class_names[predicted], "probability": float(probabilities[predicted])},
        "probabilities": {name: float(p) for name, p in zip(class_names, probabilities)},
        "top_classes": [[class_names[i], float(probabilities[i])] for i in np.argsort(-probabilities)[:TOP_CLASSES]],
        "temperature": temperature, "steps": steps,
        "shares": {c: float(result["shares"][c][0]) for c in columns},
        "attributions": {c: float(result["attributions"][c][0]) for c in columns},
        "presence_attributions": {c: float(result["presence"][c][0]) for c in columns},
        "tokens": tokens, "completeness_gap": float(result["completeness_gap"][0]),
        "f_x": float(result["f_x"][0]), "f_baseline": float(result["f_baseline"][0]),
        "methods": result["methods"], "figure": str(out), "json": str(out.with_suffix(".json")),
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    write_figure(out, explanation, {c: features[c][0] for c in columns},
                 {c: None if result["inputs"][c] is None else result["inputs"][c][0] for c in columns})
    out.with_suffix(".json").write_text(json.dumps(explanation, indent=2))
    return explanation
