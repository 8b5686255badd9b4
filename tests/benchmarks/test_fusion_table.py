"""benchmarks/fusion_table.py --quick on a few rows of avdigits: the markdown table it writes."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "fusion_table.py"
HEADER = ("| method | test accuracy | test macro-F1 | parameters | train wall (s) | train CPU (s) "
          "| CPU time / concat |")
MEAN_STD = re.compile(r"^(\d+\.\d{3}) ± (\d+\.\d{3})$")


def _rows(markdown: str, section: str) -> list:
    """The cells of each table row under the ``## <section>`` heading."""
    body = markdown.split(f"## {section}:", 1)[1].split("\n## ", 1)[0]
    lines = body.splitlines()
    start = lines.index(HEADER)
    assert re.fullmatch(r"(\|---)+\|", lines[start + 1])
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_quick_run_writes_a_table_of_accuracies_between_0_and_1(tmp_path):
    out = tmp_path / "results.md"
    # A first "## Discussion" must survive the rewrite.
    out.write_text("# old table\n\n## Discussion\n\nhand-written notes\n")
    command = [sys.executable, str(SCRIPT), "--quick", "--variants", "clean", "--methods", "image_only,concat",
               "--max-train", "120", "--max-test", "40", "--batch-size", "16",
               "--data-dir", str(tmp_path / "data"), "--out", str(out)]
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "clean concat seed 0: accuracy" in result.stdout  # printed as it goes

    markdown = out.read_text()
    assert markdown.startswith("# Fusion results on avdigits\n")
    assert "Partial run" not in markdown
    assert "benchmarks/fusion_table.py --quick --variants clean --methods image_only,concat" in markdown
    assert re.search(r"TensorFlow \d+\.\d+", markdown) and re.search(r"Keras \d+\.\d+", markdown)
    assert "1 epochs (the model after the last one is evaluated), batch size 16, 1 seed(s)" in markdown
    assert "Train 120 / test 40 examples" in markdown
    assert markdown.rstrip().endswith("## Discussion\n\nhand-written notes".rstrip())

    rows = _rows(markdown, "clean")
    assert [row[0] for row in rows] == ["image only (baseline)", "concat"]
    for method, accuracy, macro_f1, parameters, seconds, cpu_seconds, ratio in rows:
        for cell in (accuracy, macro_f1):
            mean, std = map(float, MEAN_STD.match(cell).groups())
            assert 0.0 <= mean <= 1.0 and std == 0.0  # one seed: no spread
        assert int(parameters.replace(",", "")) > 1000
        assert float(seconds) > 0 and float(cpu_seconds) > 0
    # concat is the time reference; the image-only model is smaller than the two-branch one.
    assert rows[1][6] == "1.00x" and re.fullmatch(r"\d+\.\d\dx", rows[0][6])
    assert int(rows[0][3].replace(",", "")) < int(rows[1][3].replace(",", ""))
    assert "Best single modality: image only (baseline)" in markdown
