"""Frozen backbones are computed once: training on their cached outputs is training the full model."""

import numpy as np
import pytest

from tests.keras_hub_runs import hub_config


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("hub_data")


def _trained_weights(config, run_dir):
    import keras

    from mmkeras.training.trainer import train

    run = train(config, run_dir=run_dir)
    model = keras.models.load_model(run.last_model)
    return run, {w.path: keras.ops.convert_to_numpy(w) for w in model.weights}


def test_cached_frozen_encodings_train_exactly_like_the_full_model(folder, tiny_presets, tmp_path):
    settings = ["train.epochs=2", "train.optimizer=sgd", "train.learning_rate=0.05", "train.clipnorm=null"]
    cached_run, cached = _trained_weights(hub_config(folder, tiny_presets, ("text", "image"), settings),
                                          tmp_path / "cached")
    plain_run, plain = _trained_weights(hub_config(folder, tiny_presets, ("text", "image"),
                                                   settings + ["data.cache=none"]), tmp_path / "plain")
    assert cached.keys() == plain.keys()
    assert max(float(np.abs(cached[k] - plain[k]).max()) for k in cached) <= 1e-6
    for a, b in zip(cached_run.epoch_rows(), plain_run.epoch_rows()):
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6) and a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)


def test_the_run_saves_the_full_model_and_an_augmented_column_is_not_cached(folder, tiny_presets, tmp_path, caplog):
    import keras

    from mmkeras.data.preprocessor import Preprocessor
    from mmkeras.models.factory import frozen_encodings
    from mmkeras.training.frozen_cache import FrozenCache

    config = hub_config(folder, tiny_presets, ("text", "image"),
                        ["train.epochs=1", "data.features.image.augment={flip: horizontal}"])
    _trained_weights(config, tmp_path / "run")
    model = keras.models.load_model(tmp_path / "run" / "best.keras")
    assert sorted(model.input) == ["image", "image_present", "text", "text_present"]  # raw columns in
    head, extractors = frozen_encodings(model)
    assert sorted(extractors) == ["image", "text"]
    cache = FrozenCache.for_model(model, Preprocessor.load(str(tmp_path / "run" / "preprocessor")), config)
    assert list(cache.extractors) == ["text"] and "image" in cache.fit_model.input
    assert "column image: augmentation changes its frozen backbone's input" in caplog.text
