"""The figure of ``mmkeras explain``: one panel per column, chosen by the shape of its model input,
and a bar of the modality shares (matplotlib, Agg backend: no display needed).

- token ids (an integer input): the tokens, each on a colour from its attribution (red: towards
  the predicted class, blue: against it; grey when the column had no per-token attribution);
- ``(height, width, channels)``: the image, its attribution summed over channels overlaid;
- ``(frames, bins)``: the spectrogram (frames across, bins up); ``(samples, 1)`` or a vector: a line.

Example:
    >>> import tempfile, numpy as np
    >>> path = Path(tempfile.mkdtemp()) / "e.png"
    >>> explanation = {"split": "test", "index": 0, "label": "a", "methods": {"image": "integrated_gradients"},
    ...                "prediction": {"class": "a", "probability": 0.9}, "shares": {"image": 1.0}, "tokens": {}}
    >>> write_figure(path, explanation, {"image": np.ones((4, 4, 1))}, {"image": np.ones((4, 4, 1))})
    >>> path.read_bytes()[:4] == b"\\x89PNG"
    True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

#: Characters per line of a token panel before it wraps.
TOKEN_LINE = 42


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _scaled(values) -> np.ndarray:
    values = np.asarray(values, np.float64)
    low, high = values.min(), values.max()
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _image_panel(axes, values, attribution) -> None:
    pixels = _scaled(values)
    if pixels.shape[-1] == 3:
        axes.imshow(pixels)
    else:
        axes.imshow(pixels.mean(axis=-1), cmap="gray")
    if attribution is not None:
        heat = np.asarray(attribution, np.float64).sum(axis=-1)
        limit = np.abs(heat).max() or 1.0
        axes.imshow(heat, cmap="RdBu_r", vmin=-limit, vmax=limit, alpha=0.5)
    axes.axis("off")


def _signal_panel(axes, values) -> None:
    values = np.asarray(values, np.float64)
    if values.ndim == 2 and values.shape[-1] > 1:
        axes.imshow(values.T, origin="lower", aspect="auto", cmap="magma")
        axes.set_xlabel("frame")
        axes.set_ylabel("bin")
    else:
        axes.plot(values.reshape(-1), linewidth=0.6)
        axes.set_xlabel("sample")


def _token_panel(axes, tokens: list) -> None:
    plt = _pyplot()
    limit = max([abs(a) for _, a in tokens if a is not None] or [0.0]) or 1.0
    colours = plt.get_cmap("RdBu_r")
    line, used = 0, 0
    for token, attribution in tokens:
        if used and used + len(token) > TOKEN_LINE:
            line, used = line + 1, 0
        face = "lightgrey" if attribution is None else colours(0.5 + 0.5 * attribution / limit)
        axes.text(used / TOKEN_LINE, 1 - 0.14 * (line + 1), token, family="monospace", fontsize=10,
                  bbox={"facecolor": face, "edgecolor": "none", "pad": 2}, transform=axes.transAxes)
        used += len(token) + 2
    axes.axis("off")


def write_figure(path, explanation: dict, inputs: dict, attributions: dict) -> None:
    """Write the figure of one explained example to ``path``.

    ``explanation`` is what ``explain_example`` returns (``shares``, ``tokens``, ``methods``,
    ``prediction``, ``label``, ``split``, ``index``); ``inputs`` / ``attributions``: ``{column:
    one example's model input / its attributions (None when there are none)}``.
    """
    plt = _pyplot()
    columns = list(inputs)
    figure, axes = plt.subplots(1, len(columns) + 1, figsize=(4.2 * (len(columns) + 1), 4.0), squeeze=False)
    for panel, column in zip(axes[0], columns):
        values = np.asarray(inputs[column])
        if column in explanation["tokens"]:
            _token_panel(panel, explanation["tokens"][column])
        elif values.ndim == 3:
            _image_panel(panel, values, attributions[column])
        else:
            _signal_panel(panel, values)
        panel.set_title(f"{column}: share {explanation['shares'][column]:.2f}\n({explanation['methods'][column]})",
                        fontsize=9)
    bars = axes[0][-1]
    shares = explanation["shares"]
    bars.barh(list(shares), list(shares.values()), color="tab:green")
    bars.set_xlim(0, 1)
    bars.invert_yaxis()
    bars.set_xlabel("share of the decision")
    prediction = explanation["prediction"]
    figure.suptitle(f"{explanation['split']} example {explanation['index']}: predicted {prediction['class']} "
                    f"(p = {prediction['probability']:.2f}), label {explanation['label']}", fontsize=11)
    figure.tight_layout()
    figure.savefig(Path(path), dpi=100)
    plt.close(figure)
