"""Why a streamed run differs: the lines a failure report adds below the mismatch.

:func:`_diagnose` names the first top-level layer whose streamed output
differs (:func:`_first_differing_layer`, streamed as the check streams, in one
compiled call per run where the backend allows) or else the layers that cannot stream (:func:`_hazards`),
what is wrong with a user's own streaming copy (:mod:`.hints`), and
whether a float64 re-run calls the difference rounding or logic
(:func:`_float64_verdict`). :func:`_cannot_stream` is the report for a model
Keras refused to copy or feed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import compare as _compare
from pytest_rnn._core import text as _text
from pytest_rnn._core.stream import ChunkSchedule, chunk_pieces, compare_runs, join
from pytest_rnn._core.validate import Batch
from pytest_rnn._stateful.hints import _user_copy_hints
from pytest_rnn._stateful.run import _reference, _Setup, _stream

#: A float64 re-run whose greatest difference is below this share of the
#: float32 one calls the mismatch rounding (float64 is ~1e-9 times finer).
ROUNDING_SHRINK = 1e-3

#: How far a float64 copy's outputs may drift from its model's, as a share of their
#: greatest magnitude, for the two to count as one computation (or ten times the
#: output dtype's rtol where that is more: float16 1e-2, bfloat16 0.16): far above
#: float32 rounding, far below what a lost layer state moves (~0.5).
SAME_COMPUTATION = 1e-3


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
    return "\n".join(
        [
            "The model cannot be streamed: Keras failed to build or feed its stateful copy.",
            f"  model {K.describe_model(model)}, batch {inputs.batch}, {inputs.steps} steps, {schedule.describe()}",
            *(f"  layer {h}" for h in hazards),
            f"  Keras raised {_text.error_line(error)}",
        ]
    )


#: Chunks after the one holding the first mismatch that the diagnosis still runs.
DIAGNOSIS_CHUNKS = 4

#: Chunks up to which the diagnosis of a cut case makes one compiled call per chunk (the
#: layer probe) or per chunk end (the float64 reference): a handful of calls costs less
#: than tracing a whole-stream loop or making and tracing a float64 every-step copy.
FEW_ENDS = 8


def _around_first(case: _Case, mismatches: list[tuple[int, _compare.Mismatch]]) -> _Case:
    """``case`` cut after the chunk of the first mismatch and :data:`DIAGNOSIS_CHUNKS` more.

    Streaming runs forward in time: the outputs up to a step depend on the
    steps up to it only, so what the diagnosis asks (which layer parts first,
    rounding or logic) is answered on the steps around the first mismatch. A
    failing check of 1,000 one-step chunks re-runs a handful of them.
    """
    found = [m.step_of(m.first) for _, m in mismatches if m.first]
    first = min((s for s in found if s is not None), default=None)
    if first is None:
        return case
    last = min(case.schedule.chunk_of(first) + DIAGNOSIS_CHUNKS, len(case.schedule.lengths) - 1)
    end = case.schedule.ends[last]
    if end >= case.inputs.steps:
        return case
    return replace(
        case,
        inputs=case.inputs.steps_slice(0, end),
        schedule=ChunkSchedule(case.schedule.lengths[: last + 1]),
        valid=None if case.valid is None else case.valid[:, :end],
    )


def _diagnose(case: _Case, mismatches: list[tuple[int, _compare.Mismatch]]) -> list[str]:
    """Lines that say where the difference starts and whether it is rounding or logic."""
    model, stateful_model, setup = case.model, case.stateful_model, case.setup
    lines = []
    near = _around_first(case, mismatches)
    layer = _first_differing_layer(
        setup, near.inputs, near.schedule, case.tolerances[0], near.valid
    )
    hazards = _hazards(model)
    if layer is not None:
        lines.append(f"  first layer that differs: {layer}")
    explained = layer is not None and ": " in layer  # "'conv1d' (Conv1D(...): reads ...)"
    if hazards and not explained:
        # No reason of its own: a layer that cannot stream before it is the likely
        # cause (RepeatVector: the RNN after it is where outputs first part).
        lines.append(f"  layers that cannot stream: {'; '.join(hazards)}")
    elif not explained and not K.rnn_layers(model):
        lines.append(
            "  the model has no recurrent layer: nothing carries state from one chunk into "
            "the next, so it streams only if every layer acts on each step alone; "
            + (f"{layer.split(' ')[0]} " if layer else "a layer ")
            + "reads other steps of its input, which a chunk holds only in part (give it a "
            "state, as a keras.layers.RNN cell, or stream whole sequences)"
        )
    if setup.user_stream:
        lines.extend(f"  {hint}" for hint in _user_copy_hints(model, stateful_model))
    lines.append(f"  {_float64_verdict(case, mismatches)}")
    return lines


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
    near = _around_first(case, mismatches)
    try:
        with K.float64_scope():
            streamed, expected = _float64_runs(near)
        drift, runs32 = _float64_drift(near, streamed, expected)
    except Exception as error:  # the verdict is advice; never hide the real failure behind it
        return f"float64 re-run: not possible ({_text.error_line(error)})"
    if drift is not None:
        return f"float64 re-run: not possible ({drift}); rounding and logic are not told apart"
    still = compare_runs(
        streamed, expected, case.tolerances, case.sequence, near.valid, near.schedule
    )
    # Both precisions on the same steps: the float32 runs of the cut case.
    if near is not case:
        mismatches = compare_runs(
            runs32[0], runs32[1], case.tolerances, case.sequence, near.valid, near.schedule
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
    # Cached like the float32 twins: a shrinking Hypothesis run fails many times over.
    reference = K.cached_clone(setup.reference, "stateless", None, "float64")
    if setup.user_stream:
        streamer = K.clone(
            stateful_model, batch_size=K.input_batch(stateful_model), stateful=None,
            dtype="float64", free_time=K.fixed_steps(stateful_model) is None,
        )  # fmt: skip
    else:
        streamer = K.cached_clone(model, "stateful", inputs.batch, "float64")
    x64 = inputs.map(lambda a: a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a)
    streamed = _stream(streamer, x64, schedule, sequence, setup.per_sample, ours=True)
    expected = _cut_reference(reference, x64, schedule, sequence)
    return streamed, expected


def _cut_reference(
    model: Any, inputs: Batch, schedule: ChunkSchedule, sequence: list[bool]
) -> list[np.ndarray]:
    """:func:`_reference` of a cut case, by prefix calls where it has at most :data:`FEW_ENDS` ends."""
    if sequence != [False] or len(schedule.ends) > FEW_ENDS:
        return _reference(model, inputs, schedule, sequence)  # every-step copy or prefix calls
    # One chunk gets no every-step copy: the model on that prefix, (batch, 1, ...).
    runs = [
        _reference(model, inputs.steps_slice(0, end), ChunkSchedule((end,)), sequence)[0]
        for end in schedule.ends
    ]
    return [np.concatenate(runs, axis=1)]


def _float64_drift(
    case: _Case, streamed: list[np.ndarray], expected: list[np.ndarray]
) -> tuple[str | None, tuple[list[np.ndarray], list[np.ndarray]]]:
    """Why the float64 copies do not compute what the models they copy compute, or ``None``.

    A copy that lost something (a layer's state that is not a weight) would make a
    logic difference vanish and be called rounding: each float64 run must stay within
    :data:`SAME_COMPUTATION` of the same run as the check computed it. Also returns
    those runs at the check's precision, ``(streamed, reference)``.
    """
    setup, inputs, schedule, sequence = case.setup, case.inputs, case.schedule, case.sequence
    runs32 = (
        _stream(
            setup.streamer, inputs, schedule, sequence, setup.per_sample, ours=not setup.user_stream
        ),
        _reference(setup.reference, inputs, schedule, sequence),
    )
    for what, run64, ran in (
        ("full-sequence", expected, runs32[1]),
        ("streaming", streamed, runs32[0]),
    ):
        bounds = []
        for out in ran:
            rtol = _compare.DEFAULT_TOLERANCES.get(out.dtype.name, (1.3e-6, 0.0))[0]
            values = np.abs(np.asarray(out, dtype=np.float64))
            scale = float(np.max(values[np.isfinite(values)], initial=1e-3))
            bounds.append(_compare.Tolerance(0.0, max(SAME_COMPUTATION, 10 * rtol) * scale))
        if drift := compare_runs(run64, ran, bounds, sequence, case.valid, schedule):
            worst = _compare.format_value(max(m.max_abs for _, m in drift))
            return (
                f"the float64 copy of the {what} model differs from that model by up to {worst}, "
                "far beyond rounding: a layer's state that is not a weight may not have been copied"
            ), runs32
    return None, runs32


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
        ref_probe = _probe(ref, ref_layers)
        stream_probe = _probe(stream, stream_layers)
        # Compiled, as the check's own calls: eager calls cost 0.5 s each on JAX.
        full = _flat_outputs(K.compiled(ref_probe, inputs.tree, fixed_batch=False)(inputs.tree))
        pieces = _streamed_pieces(setup, stream_probe, inputs, schedule)
        if pieces is None:  # chunk by chunk, one compiled call each
            streaming = K.compiled(
                stream_probe, inputs.samples(slice(0, 1)).tree if setup.per_sample else inputs.tree,
                fixed_batch=True,
            )  # fmt: skip
            pieces = chunk_pieces(
                lambda chunk: _flat_outputs(streaming(chunk.tree)),
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


# model -> {the ids of its top-level layers: a model from its inputs to each one's output}; weak keys.
_PROBES = K.ModelCache()


def _probe(model: Any, layers: list[Any]) -> Any:
    """``K.layer_outputs_model(model, layers)``, made once per model and layers: traced once."""
    per_model = _PROBES.of(model)
    key = tuple(id(layer) for layer in layers)
    if key not in per_model:
        per_model.clear()  # layers added since: the old probe is not this model's
        per_model[key] = K.layer_outputs_model(model, layers)
    return per_model[key]


def _streamed_pieces(
    setup: _Setup, stream_probe: Any, inputs: Batch, schedule: ChunkSchedule
) -> list[list[np.ndarray]] | None:
    """Every layer's streamed output on every chunk, from the check's compiled stream
    (:func:`_stream`: one call per run where the backend has an in-graph loop), or
    ``None`` where that run cannot say what each chunk gave, or the cut case has at
    most :data:`FEW_ENDS` chunks: then one compiled call per chunk."""
    if len(schedule.lengths) <= FEW_ENDS:
        return None  # a handful of compiled calls costs less than tracing a whole-stream loop
    shapes = [tuple(t.shape) for t in stream_probe.outputs]
    if any(len(shape) == 2 and shape[1] is None for shape in shapes):
        return None  # a (batch, time) output: neither joined along time nor stacked
    flags = [len(shape) >= 3 and shape[1] is None for shape in shapes]
    try:
        # over the streamer's own layers: the user's, where the streamer is theirs
        runs = _stream(
            stream_probe, inputs, schedule, flags, setup.per_sample, ours=not setup.user_stream
        )
    except Exception:  # a last-step output whose shape changes from chunk to chunk...
        return None
    bounds = list(schedule.bounds())
    pieces = []
    for run, joined in zip(runs, flags):
        if not joined:  # stacked: axis 1 is the chunk
            pieces.append([run[:, c] for c in range(len(bounds))])
        elif run.shape[1] == inputs.steps:  # one step out per step in
            pieces.append([run[:, start:end] for start, end in bounds])
        elif len(bounds) == 1:
            pieces.append([run])
        else:
            return None
    return pieces


def _flat_outputs(out: Any) -> list[np.ndarray]:
    """A probe's outputs (one per layer) as a list, whatever structure the call returned."""
    return list(out) if isinstance(out, (list, tuple)) else [out]
