"""What a stream's save and load kept: the findings of a resumed stream that differs.

:func:`_resume_findings` reads the states and weights just before ``save``
against the model ``load`` returned and the states it holds: states not
restored, restored into another layer, cast to a lower precision, a
stateless rebuild, weights that changed.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import compare as _compare

#: An RNN state snapshot: layer path -> its states.
States = dict[str, list[np.ndarray]]

#: How to keep the states across a save, for the "not restored" diagnosis.
_HINT = (
    "Keras's model.save does not save RNN states: save pytest_rnn.get_states(model) beside "
    "the model and pytest_rnn.set_states(loaded, states) after loading"
)


def _resume_findings(
    saved: States, saved_weights: list[tuple[str, np.ndarray]], loaded: Any, restored: States
) -> list[str]:
    """What the states and weights just before ``save`` and the model ``load`` gave show.

    ``saved``: the streamer's states just before the save; ``saved_weights``:
    its weights; ``loaded``: the model the load returned; ``restored``: its
    states just after the load, before it ran.
    """
    if not K.stateful_layers(loaded):
        if not (rnns := K.rnn_layers(loaded)):
            return ["the loaded model has no RNN layer: `load` returned another model"]
        names = ", ".join(f"'{p}' ({K.describe_layer(lyr)})" for p, lyr in rnns)
        return [
            f"the loaded model is not stateful (layers {names}): `load` rebuilt it with "
            "stateful=False, so its states start from zeros at every call; load the saved "
            "model as it is (keras.models.load_model keeps stateful=True) or rebuild it with "
            "stateful=True and a fixed batch size"
        ]
    lines = _state_findings(saved, restored)
    lines += [w for w in [_weight_finding(saved_weights, K.weight_values(loaded))] if w]
    return lines or [
        f"states and weights agree after load ({len(saved)} stateful layer(s), "
        f"{len(saved_weights)} weights compared): the difference is elsewhere, e.g. a "
        "layer's non-weight state or a configuration `load` changed"
    ]


def _state_findings(saved: States, loaded: States) -> list[str]:
    """States just after load against just before save: zeros, casts, swaps, other changes."""
    # Layers are matched by path; those of a rebuild that renamed them, by position.
    renamed = set(saved) != set(loaded) and len(saved) == len(loaded)
    names = dict(zip(saved, loaded)) if renamed else {p: p for p in saved}
    got = {p: loaded.get(names[p]) or [np.zeros_like(v) for v in saved[p]] for p in saved}
    bad = [(p, i) for p, vs in saved.items() for i, v in enumerate(vs) if not _close(got[p][i], v)]
    zero = [
        p for p in dict.fromkeys(p for p, _ in bad)
        if any(np.any(v) for v in saved[p]) and not any(np.any(g) for g in got[p])
    ]  # fmt: skip
    lines = []
    if zero and len(zero) == len({p for p, _ in bad}):
        lines.append(f"states not restored: the loaded model starts from zero states. {_HINT}")
    elif zero:
        lines.append(f"states not restored for layer(s) {zero}: they start from zeros. {_HINT}")
    casts: dict[str, list[str]] = {}
    swaps, other = [], []
    for p, i in (b for b in bad if b[0] not in zero):
        g, v, shown = got[p][i], saved[p][i], f"'{names[p]}' state [{i}]"
        source = [
            (q, j) for q, vs in saved.items() for j, s in enumerate(vs)
            if (q, j) != (p, i) and np.any(g) and _close(g, s)
        ]  # fmt: skip
        if lower := str(g.dtype) if g.dtype != v.dtype else _lower_precision(g, v):
            casts.setdefault(lower, []).append(shown)
        elif source:
            (q, j), layer = source[0], f"layer '{names[p]}'"
            swaps.append(
                f"{layer} got the states of '{q}'" if q != p and i == j
                else f"{layer} state [{i}] got {'its' if q == p else repr(q) + ' '} state [{j}]"
            )  # fmt: skip
        else:
            other.append(f"{shown} (by up to {_compare.format_value(_max_diff(g, v))})")
    for dtype, where in casts.items():
        lines.append(
            f"states cast to {dtype} on the way ({', '.join(where)}): keep their dtype when "
            "saving them"
        )
    if swaps:
        lines.append(
            f"states restored into the wrong layer/order: {'; '.join(dict.fromkeys(swaps))}"
        )
    if other:
        lines.append(f"states differ after load from those before save: {', '.join(other)}")
    return lines


def _close(got: np.ndarray, want: np.ndarray) -> bool:
    tolerance = _compare.resolve_tolerance(None, None, want.dtype)
    return got.shape == want.shape and not tolerance.exceeded(got, want).any()


def _max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)), initial=0.0))


def _lower_precision(got: np.ndarray, want: np.ndarray) -> str | None:
    """The lower precision (float16, bfloat16) that ``got`` is ``want`` rounded to, if any."""
    if got.shape != want.shape or want.dtype.itemsize <= 2:
        return None
    rounded = {name: K.rounded_to(want, name) for name in ("float16", "bfloat16")}
    for name, r in rounded.items():
        if np.array_equal(got.astype(np.float64), r):
            return name
    for name in rounded:
        if not _compare.Tolerance(*_compare.DEFAULT_TOLERANCES[name]).exceeded(got, want).any():
            return name
    return None


def _weight_finding(
    saved: list[tuple[str, np.ndarray]], loaded: list[tuple[str, np.ndarray]]
) -> str | None:
    if len(loaded) != len(saved) or any(
        a.shape != b.shape for (_, a), (_, b) in zip(saved, loaded)
    ):
        return (
            f"the loaded model's variables ({len(loaded)}) do not match the saved model's "
            f"({len(saved)}): `load` built another architecture"
        )
    for (_, a), (path, b) in zip(saved, loaded):
        if not np.array_equal(a, b):
            return (
                f"the loaded weights differ from the saved model's (first: '{path}', by up to "
                f"{_compare.format_value(_max_diff(a, b))})"
            )
    return None
