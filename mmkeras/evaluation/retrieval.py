"""Cross-modal retrieval with pretrained towers: recall@k per direction, and ranking a split's items.

For a pair of columns ``(a, b)`` the candidates are the rows of the split that have both; each
row's ``a`` embedding is a query whose one correct answer is the same row's ``b`` embedding
(direction ``"a->b"``), and the other way round (``"b->a"``). Recall@k is the fraction of queries
whose answer ranks among the k most similar (cosine similarity; ties count against the query).

Example:
    >>> import numpy as np
    >>> similarity = np.array([[0.9, 0.1, 0.0], [0.8, 0.2, 0.1], [0.0, 0.1, 0.7]])
    >>> recall_at_k(similarity, ks=(1, 2))
    {'recall@1': 0.6667, 'recall@2': 1.0}
    >>> e = {"a": np.eye(3), "b": np.eye(3)}
    >>> retrieval_scores(e, {"a": np.ones(3), "b": np.array([1, 1, 0])}, [("a", "b")], ks=(1,))["b->a"]
    {'recall@1': 1.0, 'queries': 2}
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

KS = (1, 5, 10)


def recall_at_k(similarity: np.ndarray, ks=KS) -> dict:
    """``{"recall@k": fraction}`` for queries (rows) whose answer is the target on the diagonal."""
    similarity = np.asarray(similarity, dtype=np.float64)
    answer = np.diagonal(similarity)[:, None]
    others = similarity >= answer
    np.fill_diagonal(others, False)
    rank = others.sum(axis=1)  # targets scoring at least as high as the answer
    return {f"recall@{k}": round(float(np.mean(rank < k)), 4) for k in ks}


def retrieval_scores(embeddings: dict, presence: dict, pairs, ks=KS) -> dict:
    """``{"a->b": {"recall@k": ..., "queries": n}, "b->a": ...}`` for every pair, on rows having both."""
    out = {}
    for a, b in pairs:
        rows = (np.asarray(presence[a]) > 0) & (np.asarray(presence[b]) > 0)
        if rows.sum() < 2:
            out[f"{a}->{b}"] = out[f"{b}->{a}"] = {"queries": int(rows.sum()), "skipped": "fewer than 2 pairs"}
            continue
        similarity = np.asarray(embeddings[a])[rows] @ np.asarray(embeddings[b])[rows].T
        out[f"{a}->{b}"] = {**recall_at_k(similarity, ks), "queries": int(rows.sum())}
        out[f"{b}->{a}"] = {**recall_at_k(similarity.T, ks), "queries": int(rows.sum())}
    return out


def split_embeddings(towers, config, preprocessor, split: str, batch_size: int = 64) -> tuple:
    """``(embeddings, presence)``: ``{column: (rows, d)}`` and ``{column: (rows,)}`` over every row
    of ``split`` in manifest order, without augmentation."""
    from mmkeras.data.pipeline import build_dataset
    from mmkeras.data.schema import PRESENCE_SUFFIX
    from mmkeras.models.towers import tower_inputs

    embeddings, presence = {}, {}
    dataset = build_dataset(config, split, preprocessor, training=False, batch_size=batch_size, drop_remainder=False)
    for features, _ in dataset:
        outputs = towers(tower_inputs(towers, features), training=False)
        for column, value in outputs.items():
            embeddings.setdefault(column, []).append(np.asarray(value, dtype=np.float32))
            presence.setdefault(column, []).append(np.asarray(features[column + PRESENCE_SUFFIX]))
    return ({c: np.concatenate(v) for c, v in embeddings.items()},
            {c: np.concatenate(v) for c, v in presence.items()})


def rank(query: np.ndarray, targets: np.ndarray, top_k: int) -> list:
    """``[(index, cosine similarity), ...]``: the ``top_k`` rows of ``targets`` nearest ``query``."""
    scores = np.asarray(targets, dtype=np.float64) @ np.asarray(query, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[:top_k]
    return [(int(i), round(float(scores[i]), 4)) for i in order]


def _column(preprocessor, name: str, flag: str) -> str:
    """The column ``name`` (a column, or a modality with one column) names; errors list the columns."""
    columns = {spec.column: spec.modality for spec in preprocessor.input_specs}
    if name in columns:
        return name
    matches = [c for c, modality in columns.items() if modality == name]
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(f"{c} ({m})" for c, m in columns.items())
    raise ValueError(f"{flag} {name!r} names no single column of the pretraining run; its columns: {listed}")


def _query_value(column, value, flag: str):
    """The query as the column's raw string: the text, or a file's bytes checked like a served input."""
    import tensorflow as tf

    if not column.reads_files:
        if not str(value).strip():
            raise ValueError(f"{flag} is empty: give the text to search with")
        return tf.constant(str(value))
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise FileNotFoundError(f"{flag} {path} does not exist or is not a file")
        value = path.read_bytes()
    if not value:
        raise ValueError(f"{flag}: the file is empty")
    problem = column.problems(tf.constant([value]), serving=True)[0].numpy().decode()
    if problem:
        raise ValueError(f"{flag}: the file {problem}")
    return tf.constant(value)


def retrieve(run_dir, query: dict, target: str, *, top_k: int = 5, split: str = "test") -> list:
    """Rank ``split``'s ``target`` items for one query; ``[{"rank", "score", "row", "item"}, ...]``.

    Args:
        run_dir: a complete pretraining run (``mmkeras pretrain``).
        query: ``{modality or column: value}``: the text itself, or an image / WAV file's path (or bytes).
        target: the column (or modality) to rank; only rows where it is present are candidates.
        top_k: how many to return.
        split: whose items to rank (the run config's manifest for it).
    """
    import tensorflow as tf

    from mmkeras.data.rows import read_cells, split_path
    from mmkeras.models.towers import tower_inputs
    from mmkeras.training.pretrained import load_towers

    if len(query) != 1:
        raise ValueError("give exactly one query (--query-text, --query-image or --query-audio)")
    (name, value), = query.items()
    towers, preprocessor, config = load_towers(run_dir)
    column = _column(preprocessor, name, f"--query-{name}")
    target = _column(preprocessor, target, "--target")
    if column == target:
        raise ValueError(f"--target {target!r} is the query's own column; rank another modality")
    value = _query_value(preprocessor.columns[column], value, f"--query-{name}")
    raw = {c: tf.constant([""]) for c in preprocessor.columns} | {column: tf.reshape(value, [1])}
    features = preprocessor.preprocess_batch(raw)
    query_vector = np.asarray(towers(tower_inputs(towers, features), training=False)[column])[0]
    embeddings, presence = split_embeddings(towers, config, preprocessor, split)
    _, rows = read_cells(split_path(config, split), [target], preprocessor.label)
    if len(rows) != len(presence[target]):
        raise ValueError(f"the {split} split has {len(rows)} rows and {len(presence[target])} decoded; run "
                         "mmkeras data validate on the pretraining config")
    candidates = np.flatnonzero(presence[target] > 0)
    hits = rank(query_vector, embeddings[target][candidates], top_k)
    return [{"rank": i + 1, "score": score, "row": int(candidates[j]) + 1, "item": rows[candidates[j]][target]}
            for i, (j, score) in enumerate(hits)]
