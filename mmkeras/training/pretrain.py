"""``pretrain(config, run_dir)``: contrastive pretraining of the config's encoders on paired columns.

No label is used: each row of the train split contributes the pairs of columns it has (``pretrain.pairs``,
default every pair of ``data.features``). The towers (``mmkeras.models.towers``: the encoders of
``model.encoders`` plus a projection each) train with the SigLIP or CLIP loss
(``mmkeras.models.contrastive``) on in-batch negatives, under ``train.backend``, ``train.strategy``,
``train.precision`` and ``train.seed``, with the ``pretrain`` section's epochs, batch size, learning rate
and weight decay (AdamW, cosine schedule). Negatives span the global batch: under the JAX backend the
jitted step sees the whole batch on every strategy; under ``mirrored`` (TensorFlow) every replica gathers
the others' embeddings (``ReplicaContext.all_gather``, gradients flow back through it).

A complete run is left as it is (``overwrite=True`` starts again); an interrupted one trains again from
its first epoch (pretraining keeps no backups), reusing its adapted preprocessor. The run directory::

    P/
      config.yaml  run.json ("kind": "pretrain")  preprocessor/
      towers.keras            the towers (a Functional model; ``model.init_from: P`` reads it)
      pretrain_history.json   loss per epoch
      pretrain_report.json    recall@1/5/10 for every direction ("image->text", ...) on the test split
                              (else validation), the same under "retrieval_at_init", and the settings

Example (not run here: it trains):
    run = pretrain(load_config("emoji", ["pretrain.epochs=5"]), "runs/emoji-pretrain")
    json.loads((run.run_dir / "pretrain_report.json").read_text())["text->image"]["recall@5"]
"""

from __future__ import annotations

import dataclasses
import json
import time

from mmkeras.config import Config, save_config
from mmkeras.config_checks import pretrain_pairs
from mmkeras.errors import ConfigError
from mmkeras.training.atomic import replace_atomically, save_model_atomically, write_text_atomically
from mmkeras.training.backend import select_backend
from mmkeras.training.lock import RunLock
from mmkeras.training.pretrained import HISTORY_FILE, KIND, REPORT_FILE, towers_path
from mmkeras.training.run import Run, software_versions
from mmkeras.training.trainer import check_before_run, dtype_policy, load_or_fit_preprocessor


def schedule(config: Config):
    """``config.train`` with the ``pretrain`` section's schedule (what the strategy and optimizer read)."""
    p = config.pretrain
    return dataclasses.replace(config.train, epochs=p.epochs, batch_size=p.batch_size, learning_rate=p.learning_rate,
                               weight_decay=p.weight_decay, warmup_epochs=0.0, early_stopping_patience=None)


def evaluation_split(config: Config) -> str:
    """Where retrieval is measured: the test split, else validation, else train (said in the report)."""
    return next(split for split in ("test", "validation", "train") if getattr(config.data, split))


def _check(config: Config) -> list:
    if len(config.data.features) < 2:
        raise ConfigError(f"pretraining needs at least two columns in data.features to pair; got "
                          f"{', '.join(config.data.features) or 'none'}")
    if config.train.strategy == "multi_worker":
        raise ConfigError("train.strategy=multi_worker is not supported by mmkeras pretrain; use mirrored (one "
                          "machine) or train.backend=jax with data_parallel")
    return pretrain_pairs(config)


def _steps(config: Config) -> int:
    from mmkeras.data.pipeline import num_examples

    rows = num_examples(config, "train")
    if rows // config.pretrain.batch_size == 0:
        raise ConfigError(f"pretrain.batch_size={config.pretrain.batch_size} is larger than the {rows} training "
                          "examples; lower it")
    return rows // config.pretrain.batch_size


def _retrieval(towers, config, preprocessor, pairs, batch_size: int) -> dict:
    from mmkeras.evaluation.retrieval import retrieval_scores, split_embeddings

    embeddings, presence = split_embeddings(towers, config, preprocessor, evaluation_split(config), batch_size)
    return retrieval_scores(embeddings, presence, pairs)


def _train_batches(config, preprocessor, batch_size: int):
    from mmkeras.data.pipeline import build_dataset

    dataset = build_dataset(config, "train", preprocessor, training=True, batch_size=batch_size, repeat=True)
    return dataset.map(lambda features, label: features)


def pretrain(config: Config, run_dir, *, overwrite: bool = False) -> Run:
    """Pretrain ``config``'s encoders into ``run_dir`` and write its retrieval report; returns the ``Run``."""
    backend = select_backend(config.train.backend)
    run = Run(run_dir)
    if run.complete and not overwrite:
        print(f"{run.run_dir} already holds a complete pretraining run; nothing to do (pass --overwrite)")
        return run
    pairs = _check(config)
    # Pretraining uses no label, so every row of the train split: data.label_fraction is for fine-tuning.
    config = dataclasses.replace(config, data=dataclasses.replace(config.data, label_fraction=1.0))
    check_before_run(config)

    import keras

    from mmkeras.models.contrastive import ContrastiveModel, pair_name
    from mmkeras.models.towers import build_towers
    from mmkeras.training.auto import resolve_verbose
    from mmkeras.training.distributed import gather_replicas
    from mmkeras.training.objective import build_optimizer
    from mmkeras.training.strategy import build_strategy

    keras.utils.set_random_seed(config.train.seed)
    train_config = schedule(config)
    plan = build_strategy(train_config)
    steps = _steps(config)
    try:
        with RunLock(run.run_dir):
            if overwrite:
                _clear(run)
            replace_atomically(run.config_file, lambda temp: save_config(config, temp))
            run.update_status(status="pretraining", kind=KIND, failure=None, backend=backend, strategy=plan.name,
                              replicas=plan.num_replicas, precision=train_config.precision,
                              epochs_planned=train_config.epochs, batch_size=train_config.batch_size,
                              versions=software_versions())
            preprocessor = load_or_fit_preprocessor(run, config)
            with dtype_policy(train_config.precision):
                with plan.scope():
                    towers = build_towers(config.model, preprocessor, config.pretrain.projection_dim)
                    gathers = backend == "tensorflow" and plan.num_replicas > 1
                    model = ContrastiveModel(towers, pairs, loss=config.pretrain.loss,
                                             global_batch=gather_replicas if gathers else None)
                    model.compile(optimizer=build_optimizer(train_config, steps), jit_compile=plan.jit_compile)
                at_init = _retrieval(towers, config, preprocessor, pairs, train_config.batch_size)
                start = time.time()
                history = model.fit(_train_batches(config, preprocessor, train_config.batch_size),
                                    epochs=train_config.epochs, steps_per_epoch=steps,
                                    verbose=resolve_verbose(train_config.verbose)).history
                seconds = time.time() - start
                save_model_atomically(towers, towers_path(run.run_dir))
                after = _retrieval(towers, config, preprocessor, pairs, train_config.batch_size)
            losses = [round(float(v), 5) for v in history.get("loss", [])]
            write_text_atomically(run.run_dir / HISTORY_FILE, json.dumps({"loss": losses}, indent=2))
            report = {
                **after,
                "retrieval_at_init": at_init,
                "split": evaluation_split(config),
                "loss": config.pretrain.loss,
                "pairs": [pair_name(p) for p in pairs],
                "negatives": (f"global batch of {train_config.batch_size} rows over {plan.num_replicas} replicas"
                              if plan.num_replicas > 1 else f"the batch of {train_config.batch_size} rows"),
                "temperatures": model.temperatures(),
                "loss_first_epoch": losses[0] if losses else None,
                "loss_last_epoch": losses[-1] if losses else None,
            }
            write_text_atomically(run.run_dir / REPORT_FILE, json.dumps(report, indent=2))
            run.update_status(status="complete", epochs_done=len(losses), train_seconds=round(seconds, 2),
                              loss=losses[-1] if losses else None, parameters=int(towers.count_params()))
    finally:
        if backend == "jax":
            keras.distribution.set_distribution(None)
    return run


def _clear(run: Run) -> None:
    import shutil

    for path in run.run_dir.iterdir():
        if path != run.lock_file:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
