"""``import mmkeras`` registers every mmkeras Keras class, whichever of keras / mmkeras comes first."""

import subprocess
import sys
from pathlib import Path

import keras
import pytest

from mmkeras import registry
from mmkeras.layers import GatedFusion

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    vectors = [keras.Input((4,), name="a"), keras.Input((4,), name="b")]
    presence = keras.Input((2,), name="presence")
    model = keras.Model([*vectors, presence], GatedFusion(output_dim=3, name="gated")(vectors, presence))
    path = tmp_path_factory.mktemp("saved") / "best.keras"
    model.save(path)
    return path


@pytest.mark.parametrize("imports", [
    "import keras, mmkeras",
    # mmkeras first: it must not import Keras itself (the CLI picks the backend after it).
    "import mmkeras\nassert 'keras' not in sys.modules and 'tensorflow' not in sys.modules\nimport keras",
])
def test_a_saved_model_loads_in_a_fresh_process_after_import_mmkeras(saved_model, imports):
    script = (f"import sys\n{imports}\nmodel = keras.models.load_model({str(saved_model)!r})\n"
              "print(type(model.get_layer('gated')).__name__)\n")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-1] == "GatedFusion"


def test_components_that_load_files_are_marked():
    assert registry.loads_files("text_encoder", "hub") and registry.loads_files("image_encoder", "keras_app")
    assert not any(registry.loads_files("fusion", name) for name in registry.names("fusion"))

    @registry.register("head", "test_pretrained_head", loads_files=True)
    def build_head(features, num_classes, features_are_logits=False, *, name="probabilities"):
        return features

    try:
        assert registry.loads_files("head", "test_pretrained_head")
    finally:
        registry.unregister("head", "test_pretrained_head")
