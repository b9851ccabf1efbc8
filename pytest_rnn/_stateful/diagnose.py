"""Why a streamed run differs: the lines a failure report adds below the mismatch.

:func:`_diagnose` names the first top-level layer whose streamed output
differs (:func:`_first_differing_layer`, streamed through the engine's
chunk-by-chunk run) or else the layers that cannot stream (:func:`_hazards`),
what is wrong with a user's own streaming copy (:func:`_user_copy_hints`), and
whether a float64 re-run calls the difference rounding or logic
(:func:`_float64_verdict`). :func:`_cannot_stream` is the report for a model
Keras refused to copy or feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import compare as _compare
from pytest_rnn._core.stream import ChunkSchedule, chunk_pieces, compare_runs, join
from pytest_rnn._core.validate import Batch
from pytest_rnn._stateful.run import _reference, _Setup, _stream

#: A float64 re-run whose greatest difference is below this share of the
#: float32 one calls the mismatch rounding (float64 is ~1e-9 times finer).
ROUNDING_SHRINK = 1e-3


@dataclass(frozen=True)
class _Case:
    """One comparison, as the checks and the diagnosis need it: what ran, on what, how compared.

    ``valid`` is the ``(batch, steps)`` mask of valid (unmasked) steps, or ``None``.
    """

    model: Any
    stateful_model: Any
    setup: _Setup
    inputs: Batch
    schedule: ChunkSchedule
    sequence: list[bool]
    tolerances: list[_compare.Tolerance]
    valid: np.ndarray | None


def _hazards(model: Any) -> list[str]:
    """Every layer that cannot stream, with why; layers inside a named wrapper are not repeated."""
    return [
        f"'{s.path}' ({K.describe_layer(s.layer)}): {s.reason}"
        for s in K.suspects(model, K.stream_reason, wrapped=True)
    ]


def _cannot_stream(
    model: Any, error: Exception, inputs: Batch, schedule: ChunkSchedule
) -> str | None:
    """The report for a model Keras refused to copy or stream, when a layer explains why."""
    hazards = _hazards(model)
    if not hazards:
        return None
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return "\n".join(
        [
            "The model cannot be streamed: Keras failed to build or feed its stateful copy.",
            f"  model {K.describe_model(model)}, batch {inputs.batch}, {inputs.steps} steps, {schedule.describe()}",
            *(f"  layer {h}" for h in hazards),
            f"  Keras raised {type(error).__name__}: {first_line}",
        ]
    )


def _diagnose(case: _Case, mismatches: list[tuple[int, _compare.Mismatch]]) -> list[str]:
    """Lines that say where the difference starts and whether it is rounding or logic."""
    model, stateful_model, setup = case.model, case.stateful_model, case.setup
    lines = []
    layer = _first_differing_layer(
        setup, case.inputs, case.schedule, case.tolerances[0], case.valid
    )
    if layer is not None:
        lines.append(f"  first layer that differs: {layer}")
    elif hazards := _hazards(model):
        lines.append(f"  layers that cannot stream: {'; '.join(hazards)}")
    if setup.user_stream:
        lines.extend(f"  {hint}" for hint in _user_copy_hints(model, stateful_model))
    lines.append(f"  {_float64_verdict(case, mismatches)}")
    return lines


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


def _float64_verdict(case: _Case, mismatches: list[tuple[int, _compare.Mismatch]]) -> str:
    """Re-run both sides in float64 with the same tolerance: rounding vanishes, logic stays."""
    setup = case.setup
    source = case.stateful_model if setup.user_stream else case.model
    if not (K.is_graph_model(setup.reference) and K.is_graph_model(source)):
        return (
            "float64 re-run: not possible (subclassed model); rounding and logic are not told apart"
        )
    if (missing := K.float64_missing()) is not None:
        return f"float64 re-run: not possible ({missing}); rounding and logic are not told apart"
    try:
        with K.float64_scope():
            streamed, expected = _float64_runs(case)
    except Exception as error:  # the verdict is advice; never hide the real failure behind it
        return f"float64 re-run: not possible ({type(error).__name__}: {error})"
    still = compare_runs(
        streamed, expected, case.tolerances, case.sequence, case.valid, case.schedule
    )
    worst64 = max((m.max_abs for _, m in still), default=0.0)
    worst32 = max((m.max_abs for _, m in mismatches), default=0.0)
    # Rounding shrinks by ~9 orders of magnitude from float32 to float64; a logic
    # difference keeps its size. A residue that still exceeds a tight tolerance
    # but is a thousand times smaller is rounding.
    if still and worst64 > ROUNDING_SHRINK * worst32:
        return (
            f"float64 re-run: mismatch persists (greatest abs diff {_compare.format_value(worst64)}) "
            "-> a logic difference, not rounding"
        )
    return (
        f"float64 re-run: the difference shrinks to {_compare.format_value(worst64)} "
        f"(from {_compare.format_value(worst32)}) -> float32 rounding, not logic; loosen "
        "rtol/atol or compute in float64"
    )


def _float64_runs(case: _Case) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The streamed run and the reference of ``case``, on float64 copies of the models."""
    model, stateful_model, setup, inputs = case.model, case.stateful_model, case.setup, case.inputs
    schedule, sequence = case.schedule, case.sequence
    reference = K.clone(setup.reference, batch_size=None, stateful=False, dtype="float64")
    if setup.user_stream:
        streamer = K.clone(
            stateful_model, batch_size=K.input_batch(stateful_model), stateful=None,
            dtype="float64", free_time=K.fixed_steps(stateful_model) is None,
        )  # fmt: skip
    else:
        streamer = K.clone(model, batch_size=inputs.batch, stateful=True, dtype="float64")
    x64 = inputs.map(lambda a: a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a)
    streamed = _stream(streamer, x64, schedule, sequence, setup.per_sample)
    expected = _reference(reference, x64, schedule, sequence)
    return streamed, expected


def _first_differing_layer(
    setup: _Setup,
    inputs: Batch,
    schedule: ChunkSchedule,
    tolerance: _compare.Tolerance,
    valid: np.ndarray | None,
) -> str | None:
    """The first top-level layer whose streamed output differs from its full-pass output."""
    ref, stream = setup.reference, setup.streamer
    if not (K.is_graph_model(ref) and K.is_graph_model(stream)):
        return None
    ref_layers, stream_layers = K.top_layers(ref), K.top_layers(stream)
    if len(ref_layers) != len(stream_layers):
        return None
    try:
        ref_probe = K.layer_outputs_model(ref, ref_layers)
        stream_probe = K.layer_outputs_model(stream, stream_layers)
        full = list(K.eager_call(ref_probe, inputs.tree))
        pieces = chunk_pieces(
            lambda chunk: list(K.eager_call(stream_probe, chunk.tree)),
            lambda: K.reset_states(stream),
            inputs,
            schedule,
            per_sample=setup.per_sample,
        )
    except Exception:  # diagnosis is best effort: shared layers, nested outputs...
        return None
    for n, layer in enumerate(ref_layers):
        chunks_out, whole = pieces[n], full[n]
        if (
            whole.ndim >= 3
            and whole.shape[1] == inputs.steps
            and all(
                c.ndim == whole.ndim and c.shape[1] == ln
                for c, ln in zip(chunks_out, schedule.lengths)
            )
        ):
            (got,), keep = join([chunks_out], [True]), valid
        else:
            got = chunks_out[-1]
            keep = None if valid is None else valid[:, -1]
            if got.shape != whole.shape:
                continue
        if _compare.compare(got, whole, tolerance, valid=keep) is not None:
            path = layer.name
            why = K.stream_reason(layer)
            if why is None and K.is_rnn(stream_layers[n]) and not stream_layers[n].stateful:
                why = "stateful=False in the streaming copy: its state starts from zeros at every chunk"
            return f"'{path}' ({K.describe_layer(layer)}{': ' + why if why else ''})"
    return None
