"""Distillation on the Keras JAX backend: the frozen teacher runs inside the jitted training step
(its variables pass through ``stateless_compute_loss``; tests/models/test_distillation.py checks it stays frozen)."""

from __future__ import annotations

import keras

from tests.tiny_data import tiny_config, tiny_digits
from tests.training.test_distill import STUDENT, TEXT_CONFIG


def test_a_student_distils_on_jax_into_a_complete_run(tmp_path):
    from mmkeras.evaluation.comparison import split_scores
    from mmkeras.evaluation.predictions import load_run_model
    from mmkeras.training.distill import distill
    from mmkeras.training.trainer import train

    assert keras.backend.backend() == "jax"
    folder = tiny_digits(tmp_path, rows={"train": 160, "validation": 40, "test": 50}, columns=("text",))
    teacher = train(tiny_config(folder, ["train.strategy=auto"], text=TEXT_CONFIG), run_dir=tmp_path / "teacher")
    student = distill(tiny_config(folder, [*STUDENT, "data.label_fraction=0.1", "train.strategy=auto"],
                                  text=TEXT_CONFIG), teacher.run_dir, tmp_path / "student")
    status = student.status()
    assert (status["backend"], status["status"], status["jit_compile"]) == ("jax", "complete", True)
    assert status["distilled_from"] == str(teacher.run_dir.resolve()) and status["distill"]["unlabelled_rows"]
    history = [row["loss"] for row in student.epoch_rows()]
    assert history[-1] < history[0]
    assert load_run_model(student).count_params() == status["parameters"] < teacher.status()["parameters"]
    assert 0.0 <= split_scores(student.run_dir)["accuracy"] <= 1.0
