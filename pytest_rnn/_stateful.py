"""assert_stateful_equals_batch: a streaming copy computes the batch model's function.

Seed 003: a model trained stateless on whole sequences, copied into a stateful
batch-1 model and fed one step at a time. The two must agree at every step
(sequence outputs) or at every chunk end (last-step outputs, compared with the
model on the prefix seen so far).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import compare as _compare
from pytest_rnn._core import tree as _tree
from pytest_rnn._errors import RNNAssertionError, StepComparison, StepPicture
from pytest_rnn._report import recorded

__all__ = ["ChunkSchedule", "assert_stateful_equals_batch"]

#: A float64 re-run whose greatest difference is below this share of the
#: float32 one calls the mismatch rounding (float64 is ~1e-9 times finer).
ROUNDING_SHRINK = 1e-3


# --------------------------------------------------------------------------- arguments


@dataclass(frozen=True)
class ChunkSchedule:
    """How a sequence of ``steps`` is cut for streaming: positive lengths summing to it."""

    lengths: tuple[int, ...]

    @classmethod
    def parse(cls, chunks: Any, steps: int) -> ChunkSchedule:
        """From a chunk length (the last chunk may be shorter) or a list of lengths.

        Raises:
            TypeError: ``chunks`` is neither an int nor a sequence of ints.
            ValueError: a length is not positive, or the lengths do not sum to ``steps``.
        """
        if isinstance(chunks, (int, np.integer)) and not isinstance(chunks, bool):
            if chunks < 1:
                raise ValueError(f"chunks must be a positive chunk length, got {chunks}")
            size = int(chunks)
            full, rest = divmod(steps, size)
            return cls((size,) * full + ((rest,) if rest else ()))
        if isinstance(chunks, (str, bytes)) or not isinstance(chunks, (Sequence, np.ndarray)):
            raise TypeError(
                f"chunks must be a chunk length (int) or a list of lengths, got {type(chunks).__name__}"
            )
        lengths = list(chunks)
        if not lengths:
            raise ValueError("chunks is an empty list: give at least one chunk length")
        for n in lengths:
            if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
                raise TypeError(f"chunks must hold ints, got {n!r} ({type(n).__name__})")
            if n < 1:
                raise ValueError(f"chunks must hold positive lengths, got {n} in {lengths}")
        if sum(lengths) != steps:
            raise ValueError(
                f"chunks {lengths} sum to {sum(lengths)}, but x has {steps} steps: "
                "the chunk lengths must sum to the number of steps"
            )
        return cls(tuple(int(n) for n in lengths))

    @property
    def ends(self) -> tuple[int, ...]:
        """Cumulative chunk ends: the prefix lengths at which last-step outputs are compared."""
        return tuple(int(e) for e in np.cumsum(self.lengths))

    def bounds(self) -> list[tuple[int, int]]:
        """``(start, end)`` of every chunk."""
        ends = self.ends
        return list(zip((0, *ends[:-1]), ends))

    def describe(self) -> str:
        """``chunks of 1`` or ``chunks [3, 1, 4, ...] (uneven)``."""
        first = self.lengths[0]
        if all(n == first for n in self.lengths[:-1]) and self.lengths[-1] <= first:
            tail = f" (last {self.lengths[-1]})" if self.lengths[-1] != first else ""
            return f"chunks of {first}{tail}"
        shown = ", ".join(str(n) for n in self.lengths[:8])
        more = ", ..." if len(self.lengths) > 8 else ""
        return f"chunks [{shown}{more}] ({len(self.lengths)} chunks)"


@dataclass(frozen=True)
class _Inputs:
    """``x`` checked against the model: numpy leaves, shared batch and steps."""

    x: Any
    batch: int
    steps: int

    def leaves(self) -> list[np.ndarray]:
        return [leaf for _, leaf in _tree.flatten(self.x)]

    def map(self, fn: Callable[[np.ndarray], np.ndarray]) -> Any:
        return _tree.map_structure(fn, self.x)

    def steps_slice(self, start: int, end: int) -> Any:
        return self.map(lambda a: a[:, start:end])

    def samples(self, index: Any) -> Any:
        return self.map(lambda a: a[index])


def _check_inputs(model: Any, x: Any) -> _Inputs:
    if x is None or isinstance(x, (str, bytes, int, float)):
        raise TypeError(
            f"x must be an array (batch, steps, features...) or a list/dict of them, got {type(x).__name__}"
        )
    arrays = _tree.map_structure(np.asarray, x)
    leaves = _tree.flatten(arrays)
    inputs = list(getattr(model, "inputs", None) or [])
    if inputs and len(leaves) != len(inputs):
        raise ValueError(f"x holds {len(leaves)} arrays but model has {len(inputs)} inputs")
    by_name = {getattr(i, "name", None): i for i in inputs}
    batch = steps = None
    for pos, (path, arr) in enumerate(leaves):
        where = f"x{path}"
        if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            raise TypeError(f"{where} must be a numeric array, got dtype {arr.dtype}")
        if arr.ndim < 2:
            raise ValueError(f"{where} must be (batch, steps, features...), got shape {arr.shape}")
        key = path[2:-2] if path.startswith("['") else None
        spec = by_name.get(key) if key in by_name else (inputs[pos] if inputs else None)
        if spec is not None:
            want = tuple(spec.shape)
            if len(want) != arr.ndim:
                raise ValueError(
                    f"{where} has shape {arr.shape} ({arr.ndim} dims) but the model input "
                    f"{getattr(spec, 'name', pos)!r} takes {len(want)} dims {want}"
                )
            for axis in range(2, arr.ndim):
                if want[axis] is not None and want[axis] != arr.shape[axis]:
                    raise ValueError(
                        f"{where} has {arr.shape[axis]} features on axis {axis} but the model "
                        f"input {getattr(spec, 'name', pos)!r} takes {want[axis]} (shape {want})"
                    )
        if np.issubdtype(arr.dtype, np.floating) and not np.all(np.isfinite(arr)):
            raise ValueError(
                f"{where} holds NaN or inf: streamed and full outputs cannot be compared"
            )
        if batch is None:
            batch, steps = arr.shape[0], arr.shape[1]
        elif (arr.shape[0], arr.shape[1]) != (batch, steps):
            raise ValueError(
                f"{where} has batch {arr.shape[0]} and {arr.shape[1]} steps; the first input has "
                f"batch {batch} and {steps} steps: every input must share both"
            )
    assert batch is not None and steps is not None
    if batch < 1:
        raise ValueError("x has an empty batch (0 samples)")
    if steps < 1:
        raise ValueError("x has 0 steps: there is nothing to stream")
    return _Inputs(arrays, int(batch), int(steps))


def _batch_size(model: Any) -> int | None:
    sizes = {next(iter(i.shape)) for i in getattr(model, "inputs", None) or []}
    if len(sizes) == 1:
        return next(iter(sizes))
    return None


def _fixed_steps(model: Any) -> int | None:
    inputs = getattr(model, "inputs", None) or []
    for i in inputs:
        shape = tuple(i.shape)
        if len(shape) >= 2 and shape[1] is not None:
            return int(shape[1])
    return None


# --------------------------------------------------------------------------- masks


def _valid_steps(model: Any, inputs: _Inputs) -> np.ndarray | None:
    """``(batch, steps)`` bool: steps not masked by a Masking or mask_zero Embedding input layer."""
    keras = K.keras_module()
    if not K.is_graph_model(model):
        return None
    model_inputs = list(model.inputs)
    leaves = inputs.leaves()
    valid = None
    for layer in model.layers:
        if isinstance(layer, keras.layers.Masking):
            value = layer.mask_value
        elif isinstance(layer, keras.layers.Embedding) and layer.mask_zero:
            value = None
        else:
            continue
        try:
            source = layer.input
        except (AttributeError, ValueError):
            continue
        pos = next((n for n, t in enumerate(model_inputs) if t is source), None)
        if pos is None:
            continue
        leaf = leaves[pos]
        mask = leaf != 0 if value is None else np.any(leaf != value, axis=-1)
        valid = mask if valid is None else valid & mask
    return valid


# --------------------------------------------------------------------------- runs

# model -> {(kind, batch): twin}; weak keys so a cached twin never keeps a model alive.
_TWINS: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


def _cached_clone(model: Any, kind: str, batch: int | None) -> Any:
    per_model = _TWINS.setdefault(model, {})
    twin = per_model.get((kind, batch))
    if twin is None:
        twin = K.clone(model, batch_size=batch, stateful=(kind == "stateful"))
        per_model[(kind, batch)] = twin
    else:
        _sync_weights(model, twin)  # the model may have been trained since
    return twin


def _sync_weights(source: Any, target: Any) -> None:
    """``K.copy_weights`` for a cached copy: assigns only the variables that may differ.

    A trainable variable of the copy changes only when the source's does, so it is
    compared with the source values of the last sync; non-trainable variables
    (which a layer may assign while it runs) are always copied back.
    """
    src, dst = source.weights, target.weights
    seen = _SYNCED.get(target)
    now = [np.asarray(v.numpy()) for v in src]
    if seen is None or len(seen) != len(now) or len(dst) != len(now):
        K.copy_weights(source, target)
    else:
        for s, d, new, old in zip(src, dst, now, seen):
            if not d.trainable or new.shape != old.shape or not np.array_equal(new, old):
                if tuple(s.shape) != tuple(d.shape):
                    K.copy_weights(source, target)  # raises the shape error
                d.assign(np.asarray(new, dtype=d.dtype))
    _SYNCED[target] = now


# copy -> the source's weight values it was last synced to; weak keys.
_SYNCED: weakref.WeakKeyDictionary[Any, list[np.ndarray]] = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class _Run:
    """Outputs of one streamed run: flat list per model output."""

    outputs: list[np.ndarray]


def _stream(
    twin: Any, inputs: _Inputs, schedule: ChunkSchedule, sequence: list[bool], per_sample: bool
) -> _Run:
    """Reset ``twin`` and feed it ``inputs`` chunk by chunk (one sample at a time if ``per_sample``).

    Where the backend allows, every chunk of a group is fed in one compiled call
    (an in-graph loop over the chunks); otherwise one compiled call per chunk.
    """
    groups = [slice(i, i + 1) for i in range(inputs.batch)] if per_sample else [slice(None)]
    per_group: list[list[np.ndarray]] = []
    for group in groups:
        part = _Inputs(inputs.samples(group), 1 if per_sample else inputs.batch, inputs.steps)
        whole = _graph_stream(twin, part.x, sequence)
        if whole is not None:
            try:
                per_group.append(whole(part.x, schedule))
                continue
            except Exception:  # not expressible in one graph: chunk by chunk says why
                _GRAPH_STREAMS[twin][_stream_key(part.x, sequence)] = None
        K.reset_states(twin)
        call = K.compiled(twin, part.x, fixed_batch=True)
        pieces: list[list[np.ndarray]] = [[] for _ in sequence]
        for start, end in schedule.bounds():
            out = [leaf for _, leaf in _tree.flatten(call(part.steps_slice(start, end)))]
            for n, leaf in enumerate(out):
                pieces[n].append(leaf)
        per_group_out = [
            np.concatenate(p, axis=1) if seq else np.stack(p, axis=1)
            for p, seq in zip(pieces, sequence)
        ]
        per_group.append(per_group_out)
    if len(per_group) == 1:
        return _Run(per_group[0])
    return _Run([np.concatenate([g[n] for g in per_group], axis=0) for n in range(len(sequence))])


def _stream_key(x: Any, sequence: list[bool]) -> Any:
    structure = tuple((p, np.asarray(a).dtype.str, np.shape(a)[2:]) for p, a in _tree.flatten(x))
    return (structure, tuple(sequence))


# twin -> {(input structure, sequence flags): streamer}; weak keys, as in K.compiled.
_GRAPH_STREAMS: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()


def _graph_stream(
    twin: Any, x: Any, sequence: list[bool]
) -> Callable[[Any, ChunkSchedule], list[np.ndarray]] | None:
    """A compiled whole streamed run: ``(x, schedule) -> flat outputs``, or ``None``.

    Where the backend has an in-graph loop (:func:`K.graph_stream`), one call
    per run instead of one per chunk, one trace per twin. ``None`` (feed chunk
    by chunk) on other backends, for models holding ``TimeDistributed`` (Keras
    maps it over the batch when the time axis is unknown in a graph) and for
    models whose inputs take a fixed number of steps.
    """
    keras = K.keras_module()
    if not K.is_graph_model(twin):
        return None
    key = _stream_key(x, sequence)
    per_twin = _GRAPH_STREAMS.setdefault(twin, {})
    if key in per_twin:
        return per_twin[key]
    if _fixed_steps(twin) is not None or any(
        isinstance(lyr, keras.layers.TimeDistributed) for _, lyr in K.iter_layers(twin)
    ):
        per_twin[key] = None
        return None
    loop = K.graph_stream(twin, x, sequence)
    if loop is None:
        per_twin[key] = None
        return None

    def run(xs: Any, schedule: ChunkSchedule) -> list[np.ndarray]:
        ends = np.asarray(schedule.ends, np.int32)
        starts = np.concatenate([[0], ends[:-1]]).astype(np.int32)
        return loop(xs, starts, ends)

    per_twin[key] = run
    return run


def _reference(
    model: Any, inputs: _Inputs, schedule: ChunkSchedule, sequence: list[bool]
) -> list[np.ndarray]:
    """The model on the whole of x (sequence outputs) and on every chunk-end prefix (last-step outputs)."""
    if sequence == [False] and len(schedule.ends) > 1:
        every_step = _every_step_model(model)
        if every_step is not None:
            # The last RNN's output at step t-1 of the whole sequence is its last
            # output on x[:, :t] (it reads the past only, and so do the layers
            # before it); the layers after it act on each step alone.
            call = K.compiled(every_step, inputs.x, fixed_batch=False)
            (out,) = [leaf for _, leaf in _tree.flatten(call(inputs.x))]
            return [out[:, np.asarray(schedule.ends) - 1]]
    call = K.compiled(model, inputs.x, fixed_batch=False)
    full = [leaf for _, leaf in _tree.flatten(call(inputs.x))]
    if all(sequence):
        return full
    prefixes: list[list[np.ndarray]] = [[] for _ in sequence]
    for end in schedule.ends:
        out = (
            full
            if end == inputs.steps
            else [leaf for _, leaf in _tree.flatten(call(inputs.steps_slice(0, end)))]
        )
        for n, leaf in enumerate(out):
            prefixes[n].append(leaf)
    return [f if seq else np.stack(p, axis=1) for f, p, seq in zip(full, prefixes, sequence)]


# reference -> its every-step copy (or None where there is none); weak keys.
_EVERY_STEP: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()

# Layers that act on each step alone (training=False): their output at step t
# reads only the input at step t.
_PER_STEP = (
    "Dense", "Activation", "ReLU", "LeakyReLU", "ELU", "Softmax", "Dropout", "AlphaDropout",
    "GaussianNoise", "GaussianDropout", "ActivityRegularization", "Identity",
    "BatchNormalization", "LayerNormalization",
)  # fmt: skip


def _every_step_model(model: Any) -> Any:
    """A stateless copy of a last-step Sequential whose last RNN returns every step, or ``None``.

    Only where that copy's output at step ``t - 1`` is the model's output on
    ``x[:, :t]``: every top-level layer is a forward, stateless RNN or acts
    on each step alone (``_PER_STEP``, normalising the feature axis only), no
    layer masks, and the last layer that changes the output's rank is that RNN.
    """
    if model in _EVERY_STEP:
        copy = _EVERY_STEP[model]
        if copy is not None:
            _sync_weights(model, copy)  # the model may have been trained since
        return copy
    copy = None
    keras = K.keras_module()
    if isinstance(model, keras.Sequential):
        layers = list(model.layers)
        rnns = [n for n, lyr in enumerate(layers) if isinstance(lyr, keras.layers.RNN)]
        ok = bool(rnns) and all(
            _reads_past_only(lyr, keras, last=(n == rnns[-1]))
            if isinstance(lyr, keras.layers.RNN)
            else _acts_per_step(lyr)
            for n, lyr in enumerate(layers)
        )
        if ok:
            last = layers[rnns[-1]]

            def clone_layer(layer: Any) -> Any:
                cfg = layer.get_config()
                if layer is last:
                    cfg = {**cfg, "return_sequences": True}
                return layer.__class__.from_config(cfg)

            try:
                with K.rng_guard():
                    copy = keras.models.clone_model(model, clone_function=clone_layer)
                K.copy_weights(model, copy)
            except Exception:  # best effort: the prefix calls are always right
                copy = None
    _EVERY_STEP[model] = copy
    return copy


def _reads_past_only(layer: Any, keras: Any, *, last: bool) -> bool:
    cfg = layer.get_config()
    return (
        type(layer) in (keras.layers.LSTM, keras.layers.GRU, keras.layers.SimpleRNN)
        and not cfg.get("go_backwards")
        and not cfg.get("stateful")
        and not cfg.get("return_state")
        and bool(cfg.get("return_sequences")) != last
    )


def _acts_per_step(layer: Any) -> bool:
    if type(layer).__name__ not in _PER_STEP:
        return False
    axis = layer.get_config().get("axis", -1)
    return axis in (-1, [-1], (-1,))


def _sequence_flags(reference: Any, inputs: _Inputs) -> list[bool]:
    """Which outputs have a time axis (change length with the input's steps)."""
    if K.is_graph_model(reference) and _fixed_steps(reference) is None:
        return [
            len(t.shape) >= 2 and t.shape[1] is None for _, t in _tree.flatten(reference.outputs)
        ]
    call = K.compiled(reference, inputs.x, fixed_batch=False)
    probe = _Inputs(
        inputs.map(lambda a: np.concatenate([a, a[:, -1:]], axis=1)), inputs.batch, inputs.steps + 1
    )
    longer = [leaf.shape for _, leaf in _tree.flatten(call(probe.x))]
    normal = [leaf.shape for _, leaf in _tree.flatten(call(inputs.x))]
    return [len(a) >= 2 and a[1] != b[1] for a, b in zip(longer, normal)]


# --------------------------------------------------------------------------- the assertion


@dataclass
class _Setup:
    """Everything one check needs, in one dtype."""

    reference: Any
    streamer: Any
    per_sample: bool
    user_stream: bool


@recorded
def assert_stateful_equals_batch(
    model: Any,
    x: Any,
    *,
    stateful_model: Any = None,
    chunks: int | Sequence[int] = 1,
    rtol: float | None = None,
    atol: float | None = None,
) -> None:
    """Assert that streaming ``x`` through a stateful copy gives the batch model's outputs.

    The reference is ``model`` on the whole of ``x`` (``training=False``). The
    streamed run resets a stateful model (your ``stateful_model``, or a twin
    pytest-rnn builds with the same weights) and feeds it ``x`` chunk by chunk.

    - Sequence outputs are compared at every step.
    - Last-step outputs (``return_sequences=False``) are compared at every chunk
      end ``t`` with ``model(x[:, :t])``: prefix consistency, seed 003's question.
    - Masked steps (``Masking``, ``Embedding(mask_zero=True)``, pre- or
      post-padding) are left out; only valid steps must agree.
    - After a reset the streamed run repeats itself exactly (every stateful
      layer, nested ones too, really resets), and sample *i* of the batch is
      unaffected by the other samples.

    Args:
        model: a Keras model (Sequential or Functional), stateless or stateful.
        x: ``(batch, steps, features...)`` array (or ``(batch, steps)`` token ids),
            or a list/dict of them for a multi-input model.
        stateful_model: your own streaming copy; batch size 1 (fed one sample
            at a time, as in seed 003) or ``x``'s batch size. Its states are
            saved and put back.
        chunks: a chunk length (the last chunk may be shorter) or a list of
            lengths summing to the number of steps: uneven schedules are where
            bugs hide.
        rtol: relative tolerance; with ``atol``, both or neither. Default by
            output dtype (float32: 1.3e-6 and 1e-5), or ``--rnn-rtol``/``--rnn-atol``.
        atol: absolute tolerance.

    Raises:
        RNNAssertionError: the outputs differ. The message gives the model, shapes
            and chunking, the first step and sample that differ, how many
            differ and by how much, the first layer whose output differs and why
            it cannot stream, whether a float64 re-run calls it rounding or logic,
            and, for your own ``stateful_model``, layers left stateless or weights
            never copied.
        TypeError, ValueError: an argument is wrong; the message names it.

    Example:
        >>> model = keras.Sequential([keras.Input((None, 3)), layers.LSTM(16), layers.Dense(1)])
        >>> pytest_rnn.assert_stateful_equals_batch(model, x, chunks=[3, 1, 4])
    """
    __tracebackhide__ = True
    K.check_model(model, "model")
    inputs = _check_inputs(model, x)
    schedule = ChunkSchedule.parse(chunks, inputs.steps)
    _compare.resolve_tolerance(rtol, atol, "float32")  # both-or-neither, early
    _check_stateful_model(stateful_model, inputs, schedule)
    picture = None
    with K.untouched(stateful_model):
        try:
            setup = _setup(model, stateful_model, inputs, schedule)
        except Exception as error:  # Keras may refuse to copy such a model
            report = _cannot_stream(model, error, inputs, schedule)
            if report is None:
                raise
        else:
            report, picture = _check(model, stateful_model, setup, inputs, schedule, rtol, atol)
    if report is not None:
        raise RNNAssertionError(report, picture=picture)


def _cannot_stream(
    model: Any, error: Exception, inputs: _Inputs, schedule: ChunkSchedule
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


def _check_stateful_model(stateful_model: Any, inputs: _Inputs, schedule: ChunkSchedule) -> None:
    if stateful_model is None:
        return
    keras = K.keras_module()
    if not isinstance(stateful_model, keras.Model):
        raise TypeError(
            f"stateful_model must be a Keras model, got {type(stateful_model).__name__}"
        )
    size = _batch_size(stateful_model)
    if size not in (1, inputs.batch):
        raise ValueError(
            f"stateful_model has batch size {size}; it must be 1 (fed one sample at a time) "
            f"or x's batch size {inputs.batch}"
        )
    fixed = _fixed_steps(stateful_model)
    if fixed is not None and any(n != fixed for n in schedule.lengths):
        raise ValueError(
            f"stateful_model takes chunks of exactly {fixed} step(s) (its input shape is "
            f"{tuple(stateful_model.inputs[0].shape)}), but chunks is {list(schedule.lengths)}: "
            f"use chunks={fixed} or build it with a None time dimension"
        )


def _setup(model: Any, stateful_model: Any, inputs: _Inputs, schedule: ChunkSchedule) -> _Setup:
    graph = K.is_graph_model(model)
    # A stateful model or one with a fixed number of steps cannot take whole
    # batches of every prefix length: the reference is then a stateless copy
    # with an open time axis and the same weights.
    needs_clone = bool(K.stateful_layers(model)) or _fixed_steps(model) is not None
    if needs_clone and not graph:
        raise TypeError(
            "model is a stateful or fixed-length subclassed model; pass a stateless model "
            "with an open time axis as model (pytest-rnn cannot copy subclassed models)"
        )
    with K.rng_guard():
        reference = _cached_clone(model, "stateless", None) if needs_clone else model
    if stateful_model is None:
        if not graph:
            raise TypeError(
                f"model {model.name!r} is a subclassed {type(model).__name__}: pytest-rnn cannot "
                "build its stateful twin; pass your streaming copy as stateful_model="
            )
        with K.rng_guard():
            streamer = _cached_clone(model, "stateful", inputs.batch)
        return _Setup(reference, streamer, per_sample=False, user_stream=False)
    size = _batch_size(stateful_model)
    per_sample = size == 1 and inputs.batch > 1
    return _Setup(reference, stateful_model, per_sample=per_sample, user_stream=True)


def _check(
    model: Any,
    stateful_model: Any,
    setup: _Setup,
    inputs: _Inputs,
    schedule: ChunkSchedule,
    rtol: float | None,
    atol: float | None,
) -> tuple[str | None, StepPicture | None]:
    """Run every comparison; the failure report and its picture, or ``None`` when all hold."""
    sequence = _sequence_flags(setup.reference, inputs)
    try:
        streamed = _stream(setup.streamer, inputs, schedule, sequence, setup.per_sample)
    except Exception as error:  # Keras may refuse to feed such a model chunk by chunk
        report = _cannot_stream(model, error, inputs, schedule)
        if report is None:
            raise
        return report, None
    reference = _reference(setup.reference, inputs, schedule, sequence)
    valid = _valid_steps(model, inputs)
    ends = np.asarray(schedule.ends) - 1

    def mask_for(seq: bool) -> np.ndarray | None:
        if valid is None:
            return None
        return valid if seq else valid[:, ends]

    tolerances = [_compare.resolve_tolerance(rtol, atol, ref.dtype) for ref in reference]
    mismatches = _compare_runs(streamed.outputs, reference, tolerances, sequence, mask_for, ends)

    blocks: list[list[str]] = []
    drawn: list[StepComparison] = []  # what the failure picture shows
    if mismatches:
        n, m = mismatches[0]
        drawn.append(StepComparison(
            "streamed vs full-sequence output" + (f", output [{n}]" if len(reference) > 1 else ""),
            "streamed (stateful, chunk by chunk)", "full (whole sequence at once)",
            streamed.outputs[n], reference[n], m.tolerance.rtol,
            m.tolerance.atol, None if sequence[n] else ends.tolist(), mask_for(sequence[n]),
        ))  # fmt: skip
        blocks.append(
            _mismatch_block(mismatches, sequence, len(reference))
            + _diagnose(
                _Case(
                    model, stateful_model, setup, inputs, schedule, sequence, tolerances, mask_for
                ),
                mismatches,
            )
        )

    # Independence: change the odd samples (time-reversed) and require the even
    # ones to be unaffected: this catches mixing across the batch even when it is
    # symmetric in the samples (a batch mean), which a permutation would not.
    kept = np.arange(inputs.batch) % 2 == 0
    other = None
    if not setup.per_sample and inputs.batch > 1:
        changed = _Inputs(
            inputs.map(lambda a: np.where(_expand(kept, a.ndim), a, _changed_samples(a))),
            inputs.batch,
            inputs.steps,
        )
        other = _stream(setup.streamer, changed, schedule, sequence, per_sample=False)

    # Repeat after a reset. The independence run above is itself a run after a
    # reset: when its kept samples repeat the first run bit for bit, the reset
    # restored everything they depend on, and a third run would only repeat
    # that; otherwise the same inputs are streamed again to tell leftover state
    # from mixing across the batch.
    if other is None or not all(
        _same(o[kept], s[kept]) for o, s in zip(other.outputs, streamed.outputs)
    ):
        repeat = _stream(setup.streamer, inputs, schedule, sequence, setup.per_sample)
        if not all(_same(a, b) for a, b in zip(repeat.outputs, streamed.outputs)):
            n = next(
                n
                for n, (a, b) in enumerate(zip(repeat.outputs, streamed.outputs))
                if not _same(a, b)
            )
            drawn.append(StepComparison(
                "streamed again after a reset vs the first streamed run (must repeat exactly)",
                "after reset", "first run", repeat.outputs[n], streamed.outputs[n], 0.0, 0.0,
                None if sequence[n] else ends.tolist(), mask_for(sequence[n]),
            ))  # fmt: skip
            layers = [p for p, _ in K.stateful_layers(setup.streamer)]
            blocks.append(
                [
                    "After a reset the streamed run does not repeat itself: some state survives the reset.",
                    f"  stateful RNN layers reset: {layers or 'none'}; any other layer that keeps state "
                    "between calls (a custom layer with variables it assigns) is not reset by reset_state()",
                ]
            )

    if other is not None:
        crossed = _compare_runs(
            [o[kept] for o in other.outputs],
            [o[kept] for o in streamed.outputs],
            tolerances,
            sequence,
            lambda seq: None if (m := mask_for(seq)) is None else m[kept],
            ends,
        )
        if crossed:
            n, m = crossed[0]
            valid = mask_for(sequence[n])
            drawn.append(StepComparison(
                "kept samples (0, 2, 4...) with the others time-reversed vs as streamed",
                "others changed", "as streamed", other.outputs[n][kept], streamed.outputs[n][kept],
                m.tolerance.rtol, m.tolerance.atol, None if sequence[n] else ends.tolist(),
                None if valid is None else valid[kept],
            ))  # fmt: skip
            blocks.append(
                [
                    "Samples are not independent: changing the other samples of the batch "
                    "changes a sample's streamed output (samples 0, 2, 4... kept, the others "
                    "time-reversed, or replaced by the sample before them where reversing changes "
                    "nothing; sample numbers below count the kept samples).",
                    *_mismatch_lines(crossed, sequence, "others changed", "as streamed"),
                ]
            )
    if not blocks:
        return None, None
    title = (
        "Streamed output differs from the full-sequence output."
        if mismatches
        else "Streaming is not repeatable or not independent per sample."
    )
    lines = [title, f"  {_context(model, setup, inputs, schedule)}"]
    for block in blocks:
        lines.extend(block if block is blocks[0] and mismatches else ["", *block])
    picture = StepPicture("stateful", title, tuple(drawn[:2]), schedule.ends) if drawn else None
    return "\n".join(lines), picture


def _changed_samples(a: np.ndarray) -> np.ndarray:
    """Every sample time-reversed; one that reversing leaves as it was (a palindrome,
    common in short token sequences) gets the sample before it, reversed."""
    changed = a[:, ::-1]
    same = np.all((changed == a).reshape(len(a), -1), axis=1)
    return np.where(_expand(same, a.ndim), np.roll(changed, 1, axis=0), changed)


def _expand(flags: np.ndarray, ndim: int) -> np.ndarray:
    return flags.reshape((-1,) + (1,) * (ndim - 1))


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def _compare_runs(
    actual: list[np.ndarray],
    expected: list[np.ndarray],
    tolerances: list[_compare.Tolerance],
    sequence: list[bool],
    mask_for: Callable[[bool], np.ndarray | None],
    ends: np.ndarray,
) -> list[tuple[int, _compare.Mismatch]]:
    found = []
    for n, (a, e, tol, seq) in enumerate(zip(actual, expected, tolerances, sequence)):
        m = _compare.compare(a, e, tol, valid=mask_for(seq), steps=None if seq else ends.tolist())
        if m is not None:
            found.append((n, m))
    return found


def _mismatch_lines(
    mismatches: list[tuple[int, _compare.Mismatch]],
    sequence: list[bool],
    actual: str,
    expected: str,
) -> list[str]:
    lines: list[str] = []
    for n, m in mismatches:
        if len(sequence) > 1:
            lines.append(f"  output [{n}]:")
        lines.extend(_compare.format_mismatch(m, actual_name=actual, expected_name=expected))
    return lines


def _mismatch_block(
    mismatches: list[tuple[int, _compare.Mismatch]], sequence: list[bool], n_outputs: int
) -> list[str]:
    lines: list[str] = []
    if not all(sequence[n] for n, _ in mismatches):
        lines.append(
            "  last-step output: compared at every chunk end t with the model on x[:, :t] "
            "(step s below is the output after step s)"
        )
    return lines + _mismatch_lines(mismatches, sequence, "streamed", "full")


def _context(model: Any, setup: _Setup, inputs: _Inputs, schedule: ChunkSchedule) -> str:
    text = f"model {K.describe_model(model)}, batch {inputs.batch}, {inputs.steps} steps, {schedule.describe()}"
    if setup.user_stream:
        how = "one sample at a time" if setup.per_sample else "the whole batch at once"
        text += f"\n  streamed by your stateful_model {setup.streamer.name!r}, fed {how}"
    return text


def _hazards(model: Any) -> list[str]:
    """Every layer that cannot stream, with why; layers inside a named wrapper are not repeated."""
    named: list[str] = []
    lines: list[str] = []
    for path, layer in K.iter_layers(model):
        if any(path.startswith(f"{prev}/") for prev in named):
            continue
        if why := K.time_hazard(layer, streaming=True):
            named.append(path)
            lines.append(f"'{path}' ({K.describe_layer(layer)}): {why}")
    return lines


# --------------------------------------------------------------------------- diagnosis


@dataclass(frozen=True)
class _Case:
    """One failing comparison, as the diagnosis needs it: what ran, on what, how compared."""

    model: Any
    stateful_model: Any
    setup: _Setup
    inputs: _Inputs
    schedule: ChunkSchedule
    sequence: list[bool]
    tolerances: list[_compare.Tolerance]
    mask_for: Callable[[bool], np.ndarray | None]


def _diagnose(case: _Case, mismatches: list[tuple[int, _compare.Mismatch]]) -> list[str]:
    """Lines that say where the difference starts and whether it is rounding or logic."""
    model, stateful_model, setup = case.model, case.stateful_model, case.setup
    lines = []
    layer = _first_differing_layer(
        setup, case.inputs, case.schedule, case.tolerances[0], case.mask_for(True)
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
                np.abs(np.asarray(a.numpy(), np.float64) - np.asarray(b.numpy(), np.float64)),
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
    model, stateful_model, setup = case.model, case.stateful_model, case.setup
    schedule, sequence, tolerances, mask_for = (
        case.schedule,
        case.sequence,
        case.tolerances,
        case.mask_for,
    )
    source = stateful_model if setup.user_stream else model
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
    ends = np.asarray(schedule.ends) - 1
    still = _compare_runs(streamed.outputs, expected, tolerances, sequence, mask_for, ends)
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


def _float64_runs(case: _Case) -> tuple[_Run, list[np.ndarray]]:
    """The streamed run and the reference of ``case``, on float64 copies of the models."""
    model, stateful_model, setup, inputs = case.model, case.stateful_model, case.setup, case.inputs
    schedule, sequence = case.schedule, case.sequence
    reference = K.clone(setup.reference, batch_size=None, stateful=False, dtype="float64")
    if setup.user_stream:
        streamer = K.clone(
            stateful_model, batch_size=_batch_size(stateful_model), stateful=None,
            dtype="float64", free_time=_fixed_steps(stateful_model) is None,
        )  # fmt: skip
    else:
        streamer = K.clone(model, batch_size=inputs.batch, stateful=True, dtype="float64")
    x64 = _Inputs(
        inputs.map(lambda a: a.astype(np.float64) if np.issubdtype(a.dtype, np.floating) else a),
        inputs.batch,
        inputs.steps,
    )
    streamed = _stream(streamer, x64, schedule, sequence, setup.per_sample)
    expected = _reference(reference, x64, schedule, sequence)
    return streamed, expected


def _first_differing_layer(
    setup: _Setup,
    inputs: _Inputs,
    schedule: ChunkSchedule,
    tolerance: _compare.Tolerance,
    valid: np.ndarray | None,
) -> str | None:
    """The first top-level layer whose streamed output differs from its full-pass output."""
    keras = K.keras_module()
    ref, stream = setup.reference, setup.streamer
    if not (K.is_graph_model(ref) and K.is_graph_model(stream)):
        return None
    ref_layers = [lyr for lyr in ref.layers if not isinstance(lyr, keras.layers.InputLayer)]
    stream_layers = [lyr for lyr in stream.layers if not isinstance(lyr, keras.layers.InputLayer)]
    if len(ref_layers) != len(stream_layers):
        return None
    try:
        with K.rng_guard():
            ref_probe = keras.Model(_inputs_of(ref), [_first(lyr.output) for lyr in ref_layers])
            stream_probe = keras.Model(
                _inputs_of(stream), [_first(lyr.output) for lyr in stream_layers]
            )
        full = list(K.eager_call(ref_probe, inputs.x))
        groups = (
            [slice(i, i + 1) for i in range(inputs.batch)] if setup.per_sample else [slice(None)]
        )
        per_group = []
        for group in groups:
            K.reset_states(stream)
            pieces: list[list[np.ndarray]] = [[] for _ in stream_layers]
            for start, end in schedule.bounds():
                chunk = _Inputs(inputs.samples(group), inputs.batch, inputs.steps).steps_slice(
                    start, end
                )
                for n, out in enumerate(K.eager_call(stream_probe, chunk)):
                    pieces[n].append(out)
            per_group.append(pieces)
    except Exception:  # diagnosis is best effort: shared layers, nested outputs...
        return None
    for n, layer in enumerate(ref_layers):
        chunks_out = [
            np.concatenate([g[n][c] for g in per_group], axis=0)
            for c in range(len(schedule.lengths))
        ]
        whole = full[n]
        if (
            whole.ndim >= 3
            and whole.shape[1] == inputs.steps
            and all(
                c.ndim == whole.ndim and c.shape[1] == ln
                for c, ln in zip(chunks_out, schedule.lengths)
            )
        ):
            got, keep = np.concatenate(chunks_out, axis=1), valid
        else:
            got = chunks_out[-1]
            keep = None if valid is None else valid[:, -1]
            if got.shape != whole.shape:
                continue
        if _compare.compare(got, whole, tolerance, valid=keep) is not None:
            path = layer.name
            why = K.time_hazard(layer, streaming=True)
            if (
                why is None
                and isinstance(stream_layers[n], keras.layers.RNN)
                and not stream_layers[n].stateful
            ):
                why = "stateful=False in the streaming copy: its state starts from zeros at every chunk"
            return f"'{path}' ({K.describe_layer(layer)}{': ' + why if why else ''})"
    return None


def _inputs_of(model: Any) -> Any:
    # The structure the model was built with: one tensor, not a one-item list.
    return model.inputs[0] if len(model.inputs) == 1 else model.inputs


def _first(output: Any) -> Any:
    return output[0] if isinstance(output, (list, tuple)) else output
