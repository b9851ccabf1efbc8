"""assert_model_causal: a model's output at step t does not change when later inputs change.

The suffix test replaces steps ``s..`` for every ``s`` (:func:`_perturb.suffix_plan`)
and folds the copies into a :class:`_Leak` (:func:`_suffix_leaks`). On a leak,
:func:`_localise` probes every layer's output the same way to name the first
layer that leaks and why (:func:`_unaligned_reasons` looks upstream through
tensors without a time axis); the message, the text grid and the two failure
pictures (one step replaced, or a suffix) follow.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._causal.args import _check_sequences, _probe
from pytest_rnn._causal.measure import _forward, _ModelRun, _prepare_model, _reference_rows
from pytest_rnn._core import compare as _compare
from pytest_rnn._core import perturb as _perturb
from pytest_rnn._core import text as _text
from pytest_rnn._core import tree as _tree
from pytest_rnn._core.validate import Batch
from pytest_rnn._errors import DependencePicture, RNNAssertionError
from pytest_rnn._report import recorded


@dataclass(frozen=True, eq=False)
class _Leak:
    """What the suffix test found for one per-step tensor."""

    leak: np.ndarray  # (starts, samples, steps): output t < s changed when steps s.. changed
    change: np.ndarray  # same shape: largest change


def _stride_of(total: int, steps: int, out: int) -> int:
    """Input steps per step of an ``out``-step output of a ``steps``-step input.

    1 unless the model's time-strided layers (``total``: the product of their
    strides) shortened it: then the largest divisor of ``total`` whose
    stride gives at least ``out`` steps (a tensor between two strided layers
    has gone through the first only).
    """
    if total <= 1 or out >= steps:
        return 1
    for d in range(total, 1, -1):
        if total % d == 0 and out <= -(-steps // d):
            return d
    return 1


def _suffix_leaks(
    changed: np.ndarray, change: np.ndarray, batch: Batch, trials: int, stride: int = 1
) -> _Leak:
    """Fold the suffix plan's copies: output t changed when steps s.. after its last changed.

    Output step t's last input step is t, or with a time ``stride`` (the
    model's total, see :func:`_stride_of`) the last step of the block it
    covers, ``stride * (t + 1) - 1``.
    """
    starts = batch.steps - 1
    steps = changed.shape[2]
    stride = _stride_of(stride, batch.steps, steps)
    changed = changed.reshape(starts, trials, batch.batch, steps)
    change = change.reshape(starts, trials, batch.batch, steps)
    last = stride * (np.arange(steps) + 1) - 1
    before = last[None, :] < np.arange(1, batch.steps)[:, None]  # (starts, steps)
    leak = changed.any(axis=1) & before[:, None, :]
    return _Leak(leak, np.where(leak, change.max(axis=1), 0.0))


def _localise(mr: _ModelRun, batch: Batch, mask: Any, donor: Any) -> list[str]:
    """Lines naming the first layers whose output leaks, measured per layer."""
    graph = K.graph_nodes(mr.run)
    if graph is None:
        return ["  (a subclassed model: its layers cannot be probed one by one)"]
    inputs, nodes = graph
    tensors = [(node, i, kt) for node in nodes for i, kt in enumerate(node.outputs)]
    if not tensors:
        return []
    probe = K.tensors_model(inputs, [kt for _, _, kt in tensors])
    stacked = _perturb.first_call_input(batch, mask, donor)
    compiled, first = _forward(probe, stacked)
    whole = _tree.flatten(first)
    outs = [np.asarray(o) for _, o in _reference_rows(whole, batch.batch, stacked)]
    aligned = [
        j
        for j, o in enumerate(outs)
        if (o.ndim >= 2 and o.shape[:2] == (batch.batch, batch.steps))
        or (o.ndim >= 3 and o.shape[0] == batch.batch and 1 <= o.shape[1] < batch.steps)
    ]
    tols = [mr.probe.output_tolerance(outs[j].dtype) for j in aligned]

    def call(tree: Any, copies: int) -> list[np.ndarray]:
        got = _tree.flatten(compiled(tree))
        return [np.asarray(got[j][1]) for j in aligned]

    done = [np.asarray(whole[j][1]) for j in aligned]
    each = _perturb.measure_each(call, batch, mask, donor, tols, first=done)
    leaks = {
        j: bool(_suffix_leaks(c, size, batch, mr.probe.trials, mr.stride).leak.any())
        for j, (c, size) in zip(aligned, each)
    }
    index = {id(kt): j for j, (_, _, kt) in enumerate(tensors)}
    lines: list[str] = []
    sources: list[str] = []
    for j, (node, _, _) in enumerate(tensors):
        if not leaks.get(j):
            continue
        parents = [index.get(id(kt)) for kt in node.inputs]
        if any(p is not None and leaks.get(p) for p in parents):
            continue
        layer = node.layer
        label = f"{layer.name!r} ({K.describe_layer(layer)})"
        if label in sources:
            continue
        reason = K.causal_reason(layer, [node.node])
        if reason is None:
            upstream = _unaligned_reasons(node, index, aligned, tensors)
            reason = upstream or "its output at step t changes when later steps change"
        sources.append(label)
        lines.append(
            f"  {'first layer' if not lines else 'also'} whose output leaks: {label}: {reason}"
        )
    return lines


def _unaligned_reasons(
    node: K.GraphNode, index: dict[int, int], aligned: list[int], tensors: list[Any]
) -> str:
    """Reasons found upstream of ``node`` through tensors without a step-aligned time axis."""
    seen: set[int] = set()
    todo = [node]
    reasons: list[str] = []
    while todo:
        n = todo.pop()
        for kt in n.inputs:
            j = index.get(id(kt))
            if j is None or j in seen or j in aligned:
                continue
            seen.add(j)
            parent = tensors[j][0]
            r = K.causal_reason(parent.layer, [parent.node])
            if r:
                reasons.append(f"its input comes from {parent.layer.name!r}: {r}")
            todo.append(parent)
    return "; ".join(reasons)


@recorded
def assert_model_causal(
    model: Any,
    x: Any,
    *,
    trials: int = 1,
    seed: int | None = None,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that the model's output at step t does not change when later inputs change.

    For every step ``s``, steps ``s..`` of every sample are replaced with other
    (sample, step) values of ``x`` (``trials`` times), all copies stacked in
    a few compiled calls; an output at a step before ``s`` that changes by more
    than the tolerance (by output dtype, see ``resolve_tolerance``) reads the
    future. On failure every top-level layer's output is probed the same way
    to name the first layer that leaks, with why (Bidirectional,
    ``go_backwards``, Conv1D padding ``'same'``/``'valid'``, attention without
    ``use_causal_mask``, normalisation over the time axis). Causal Conv1D,
    LSTM/GRU and TimeDistributed layers pass. Stateful or fixed-batch models
    are measured on a stateless copy; the model itself is not changed.

    Args:
        model: a Keras model with per-step outputs ``(batch, steps, ...)``.
        x: inputs ``(batch, steps, features...)``, or a list/dict of them.
        trials: replacements per step (one finds any leak of a generic model).
        seed: seed of the replacements (default: the session seed, 0).
        rtol: relative tolerance (with ``atol``; default by output dtype).
        atol: absolute tolerance (with ``rtol``).

    Raises:
        RNNAssertionError: the output leaks. The message gives the leaking
            output steps with sample counts, how far ahead they read, the
            greatest change, the first leaking layer and why, the layers that
            read the future by their configuration, and a text grid for short
            sequences.
        TypeError: ``model`` is not a Keras model.
        ValueError: a bad ``x``, or a model without per-step outputs.

    Example:
        >>> model = keras.Sequential([keras.Input((None, 3)),
        ...                           keras.layers.Conv1D(4, 3, padding="same")])
        >>> pytest_rnn.assert_model_causal(model, x)
        RNNAssertionError: The model's output at a step changes when later input steps change ...
          first layer whose output leaks: 'conv1d' (Conv1D(4, k=3, padding='same')):
          Conv1D padding='same' reads 1 future step; use padding='causal'
    """
    __tracebackhide__ = True
    K.check_model(model, "model")
    probe = _probe(trials, seed, rtol, atol)
    trials = probe.trials
    batch = _check_sequences(x)
    with K.untouched():
        if batch.steps < 2:  # nothing later to change; the model and x are still checked
            _prepare_model(model, batch, probe, shorter=True)
            return None
        mask, donor = _perturb.suffix_plan(batch, trials, probe.rng())
        stacked = _perturb.first_call_input(batch, mask, donor)
        mr = _prepare_model(model, batch, probe, shorter=True, stacked=stacked)
        each = _perturb.measure_each(mr.call, batch, mask, donor, mr.tolerances, first=mr.first)
        leaking = [
            p
            for p, (c, s) in zip(mr.paths, each)
            if _suffix_leaks(c, s, batch, trials, mr.stride).leak.any()
        ]
        if not leaking:
            return None
        changed, change = _perturb.merge(each)
        found = _suffix_leaks(changed, change, batch, trials, mr.stride)
        try:
            located = _localise(mr, batch, mask, donor)
        except Exception as exc:  # the probe reads Keras graph internals; never hide the leak
            located = [f"  (could not probe layers one by one: {_text.error_line(exc)})"]
        grid: list[str] = []
        stride = _stride_of(mr.stride, batch.steps, mr.out_steps)
        picture = _suffix_picture(found, mr.out_steps, batch.steps, batch.batch, stride)
        if batch.steps <= _text.GRID_STEPS and stride == 1:
            per = _perturb.per_sample_map(mr.call, batch, trials, probe.seed, mr.tolerances)
            grid = _model_grid(per.sum(axis=1), batch.batch)
            picture = _step_picture(per.sum(axis=1), batch.batch)
    message = _model_message(
        model, mr.out_steps, batch, trials, found, mr.tolerances[0], located, grid, leaking,
        stride,
    )  # fmt: skip
    picture = replace(picture, title=message.splitlines()[0])
    raise RNNAssertionError(message, picture=picture)


def _step_picture(counts: np.ndarray, samples: int) -> DependencePicture:
    """Output step x input step, one step replaced at a time; causal: input step <= t."""
    rows, cols = np.indices(counts.shape)
    allowed = np.asarray(cols <= rows)
    bad = (counts > 0) & ~allowed
    return DependencePicture(
        "", counts, samples, allowed, bad, "output step", "input step replaced",
        "causal: input steps <= t",
    )  # fmt: skip


def _suffix_picture(
    found: _Leak, out_steps: int, steps: int, samples: int, stride: int = 1
) -> DependencePicture:
    """Output step x first replaced step s (steps s.. replaced): leaks are cells past t's block."""
    counts = np.zeros((out_steps, steps), dtype=np.int64)
    leak = found.leak[:, :, :out_steps]  # (starts 1.., samples, output steps)
    counts[:, 1:] = leak.sum(axis=1).T[:, : steps - 1]
    rows, cols = np.indices(counts.shape)
    allowed = np.asarray(cols <= stride * (rows + 1) - 1)
    return DependencePicture(
        "", counts, samples, allowed, (counts > 0) & ~allowed, "output step",
        "first replaced input step s (steps s.. replaced)", "causal: input steps <= t",
    )  # fmt: skip


def _model_grid(counts: np.ndarray, samples: int) -> list[str]:
    rows, cols = np.indices(counts.shape)
    symbols = np.where(counts > 0, "#", ".").astype("<U1")
    symbols[(counts > 0) & (cols > rows)] = "X"
    return [
        "  dependence map (one step replaced at a time):",
        *_text.grid(symbols, "output", _text.GRID_STEPS),
        "  X: output depends on a later input step; #: on this or an earlier step; .: neither",
    ]


def _model_message(
    model: Any,
    mr_steps: int,
    batch: Batch,
    trials: int,
    found: _Leak,
    tol: _compare.Tolerance,
    located: list[str],
    grid: list[str],
    leaking: Sequence[str] = ("",),
    stride: int = 1,
) -> str:
    leak, change = found.leak, found.change
    t = batch.steps
    out_steps = mr_steps
    outs = [int(s) for s in np.flatnonzero(leak.any(axis=(0, 1)))]
    starts = np.arange(1, t)
    # reach[i, step]: the latest start s whose replacement still changed the output.
    reach = np.where(leak, starts[:, None, None], -1).max(axis=0)
    samples = [int((reach[:, s] >= 0).sum()) for s in outs]
    far = [int(reach[:, s].max()) for s in outs]
    ahead = sorted({f - (stride * (s + 1) - 1) for f, s in zip(far, outs)})
    if all(f == t - 1 for f in far) and len(ahead) > 1:
        how = "reads to the last step of the sequence"
    else:
        how = f"reads up to {_text.ranges(ahead)} step{'s' if ahead != [1] else ''} ahead"
    lines = [
        "The model's output at a step changes when later input steps change: it reads the future.",
        f"  model {K.describe_model(model)}; x of {batch.batch} samples, {t} steps; "
        f"{_text.plural(trials, 'trial')} per step",
        *(
            [
                f"  the output has {out_steps} steps for {t} input steps and the model strides "
                f"time by {stride}: output step t covers input steps {stride}t..{stride}t+"
                f"{stride - 1} and may read up to input step {stride}t+{stride - 1}"
            ]
            if stride > 1
            else [
                f"  the output has {out_steps} steps for {t} input steps: output step t is "
                "compared with input step t, as Keras aligns them"
            ]
            if out_steps < t
            else []
        ),
        *([f"  outputs that leak: {', '.join(leaking)}"] if any(leaking) else []),
        f"  output at {_text.steps_word(outs)} of {out_steps} changes when later steps change "
        f"({_text.count_range(samples, batch.batch)} samples each); it {how}",
    ]
    s_i, i, step = np.unravel_index(int(np.argmax(change)), change.shape)
    lines.append(
        f"  greatest change: {_compare.format_value(float(change[s_i, i, step]))} at output "
        f"step {step}, sample {i}, when steps {s_i + 1}.. changed "
        f"(allowed {tol.describe('output')})"
    )
    lines.extend(located)
    named = " ".join(located)
    suspects = [
        (p, r)
        for p, _, r in K.suspects(model, K.causal_reason)
        if f"{p.split('/')[-1]!r}" not in named
    ]
    if suspects:
        shown = "; ".join(f"{p!r}: {r}" for p, r in suspects[: _text.MAX_LINES])
        other = "other layers" if "first layer" in named else "layers"
        lines.append(f"  {other} that read later steps by their configuration: {shown}")
    lines.extend(grid)
    lines.append(
        "  What it usually means: a model whose step t reads later steps cannot run step by "
        "step (streaming, generation), and per-step training on it learns from the future."
    )
    return "\n".join(lines)
