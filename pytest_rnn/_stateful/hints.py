"""What pytest-rnn can see is wrong with a user's own streaming copy (``stateful_model``).

The lines :func:`~pytest_rnn._stateful.diagnose._diagnose` adds to a failure
report when the check streamed the user's copy: no RNN layer, an RNN layer
left ``stateful=False``, another architecture, other weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import compare as _compare


def _user_copy_hints(model: Any, stateful_model: Any) -> list[str]:
    """What is wrong with a user's streaming copy that pytest-rnn can see directly."""
    hints = []
    rnns = K.rnn_layers(stateful_model)
    if not rnns:
        hints.append("stateful_model has no RNN layer")
    for path, layer in rnns:
        if not layer.stateful:
            hints.append(
                f"stateful_model layer '{path}' ({K.describe_layer(layer)}) has stateful=False: "
                "its state starts from zeros at every chunk"
            )
    ours, theirs = model.weights, stateful_model.weights
    if len(ours) != len(theirs) or any(
        tuple(a.shape) != tuple(b.shape) for a, b in zip(ours, theirs)
    ):
        hints.append(
            f"stateful_model's variables ({len(theirs)}) do not match model's ({len(ours)}): "
            "not the same architecture"
        )
        return hints
    for a, b in zip(ours, theirs):
        diff = float(
            np.max(
                np.abs(
                    np.asarray(K.to_numpy(a), np.float64) - np.asarray(K.to_numpy(b), np.float64)
                ),
                initial=0.0,
            )
        )
        if diff > 0:
            hints.append(
                f"stateful_model's weights are not model's: '{b.path}' differs from '{a.path}' by up to "
                f"{_compare.format_value(diff)}; copy them with stateful_model.set_weights(model.get_weights())"
            )
            break
    return hints
