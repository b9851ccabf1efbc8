"""Lookahead copies: a last-step model's output on every prefix ``x[:, :t]`` in one call.

The stateful check's reference for a model returning its last step is its
output on each prefix the stream ends at. Where the layers before the last
RNN read a bounded number of neighbouring steps (a ``'same'`` or ``'causal'``
convolution), :func:`lookahead_copy` computes all those outputs in one call
instead of one call per prefix: a thousand-step stream of single steps is
then one reference call, not a thousand, whether the check passes or fails.
A copy is used only where it agrees with the prefix calls it replaces
(checked on random inputs, once per architecture).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np

from pytest_rnn._keras import traced
from pytest_rnn._keras.backend import to_numpy
from pytest_rnn._keras.everystep import acts_per_step, reads_past_only
from pytest_rnn._keras.layers import keras_module, needs_static_time
from pytest_rnn._keras.timing import timing
from pytest_rnn._random import kept

__all__ = ["lookahead_copy"]

#: torch: prefix ends computed in one eager call (each a window of a few steps, the whole batch's).
END_ROWS = 1 << 13


def _reach(layer: Any) -> tuple[int, int] | None:
    """``(future, past)``: bounds on how many later and earlier steps of its input ``layer``'s output
    at a step reads, for a layer before the last RNN of a lookahead copy; ``None`` where unbounded or unknown.

    From :func:`timing`: a layer acting on each step alone reads neither; a
    ``'causal'`` convolution reads ``steps`` earlier ones; a ``'same'`` one
    ``steps`` later ones (TensorFlow pads more on the right) and at most as
    many earlier ones. Only stride 1 along time, and not models, wrappers,
    RNNs, pooling or time-spatial convolutions.
    """
    keras = keras_module()
    t = timing(layer)
    if (
        t is None
        or t.nested
        or t.spatial
        or t.stride != 1
        or isinstance(layer, (keras.layers.Wrapper, keras.layers.RNN))
    ):
        return None
    if t.kind == "per-step":
        return 0, 0
    if t.kind == "buffer" and t.steps is not None:
        return 0, t.steps
    if t.kind == "future" and t.padding == "same" and t.steps is not None:
        return t.steps, t.steps
    return None


def lookahead_copy(
    model: Any, rnn_at: int, synced_clone: Callable[[Any], Any]
) -> tuple[Any, Any] | None:
    """A lookahead copy of a last-step Sequential and the clone it shares weights with, or ``None``.

    ``rnn_at`` is the index of the model's last RNN; ``synced_clone(model)`` makes
    the clone, with the model's weights and other state.

    The layers before the last RNN read ``future`` later steps in all (a
    ``'same'`` convolution), so on ``x[:, :t]`` they give the whole sequence's
    outputs except at the last ``future`` steps, where the prefix ends in
    padding. The RNN's state after step ``t - 1 - ahead`` (``ahead =
    max(future, 1)``) is therefore the whole sequence's, and the output on
    ``x[:, :t]`` is the RNN run on from that state over the last ``ahead``
    steps of those layers' output on ``x[:, t - window : t]`` (``window = ahead
    + past``, ``past`` the earlier steps they read in all), then the layers
    after it. :class:`_Lookahead` does that for every ``t`` in one call: one
    pass over the sequence for the states, then the ends: on TensorFlow and JAX
    a compiled scan over them, each for the whole batch as a prefix call
    computes it (the same shapes, so the same rounding); on torch, where that
    scan is a thousand replays for a thousand steps, every end at once, in
    blocks of :data:`END_ROWS` rows (a matmul over more rows may round otherwise in
    the last bit: 1.5e-7 for a GRU(3), well inside float32's tolerance). The
    first ``window - 1`` prefixes run as they are. Checked against prefix calls
    on random inputs (once per architecture).

    ``None`` where it disagrees, where a layer before the last RNN reads an
    unbounded or unknown span (an RNN, a model, a wrapper, a mask-making
    layer, pooling, a stride), or where the model has several inputs, token
    inputs, needs a static time axis or computes in another dtype than
    float32 or float64.
    """
    layers = list(model.layers)
    rnn = layers[rnn_at]
    if not reads_past_only(rnn, last=True) or not all(
        acts_per_step(lyr) for lyr in layers[rnn_at + 1 :]
    ):
        return None
    reaches = [_reach(lyr) for lyr in layers[:rnn_at]]
    if any(r is None for r in reaches) or needs_static_time(model):
        return None
    if len(model.inputs) != 1 or not np.issubdtype(np.dtype(model.inputs[0].dtype), np.floating):
        return None
    if any(getattr(lyr, "compute_dtype", None) not in ("float32", "float64") for lyr in layers):
        return None
    future = sum(r[0] for r in reaches if r is not None)
    past = sum(r[1] for r in reaches if r is not None)
    ahead = max(future, 1)
    key = _architecture(model)
    if _AGREED.get(key) is False:  # known to disagree: no clone to throw away
        return None
    clone = synced_clone(model)
    with kept():
        copy = _lookahead_class()(clone, rnn_at, ahead, ahead + past)
    if key not in _AGREED:
        _AGREED[key] = _agrees_on_random(clone, copy, ahead + past)
    return (copy, clone) if _AGREED[key] else None


# architecture (:func:`_architecture`) -> whether its lookahead copy agreed with prefix
# calls: many models of one architecture (every test building its own, a float64 copy for
# the re-run) are checked on the first only.
_AGREED: dict[str, bool] = {}


def _architecture(model: Any) -> str:
    """What a lookahead copy's agreement depends on: the input's features and every
    layer's class and config, less names and dtypes."""

    def config(layer: Any) -> dict[str, Any]:
        return {k: v for k, v in layer.get_config().items() if k not in ("name", "dtype")}

    layers = [(type(lyr).__module__, type(lyr).__qualname__, config(lyr)) for lyr in model.layers]
    return json.dumps([list(model.inputs[0].shape[2:]), layers], sort_keys=True, default=repr)


def _agrees_on_random(model: Any, copy: Any, window: int) -> bool:
    """Whether ``copy`` gives ``model``'s prefix outputs on random inputs (a few steps past ``window``)."""
    spec = model.inputs[0]
    steps = window + 3
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, steps, *tuple(spec.shape)[2:])).astype(np.dtype(spec.dtype))
    got = np.asarray(to_numpy(copy(x, training=False)))
    want = np.stack(
        [np.asarray(to_numpy(model(x[:, :t], training=False))) for t in range(1, steps + 1)],
        axis=1,
    )
    scale = float(np.max(np.abs(want), initial=1.0))
    return got.shape == want.shape and bool(
        np.allclose(got, want, rtol=1e-4, atol=1e-5 * scale, equal_nan=True)
    )


_LOOKAHEAD: list[Any] = []


def _lookahead_class() -> Any:
    """:class:`_Lookahead`'s class, made on first use (it subclasses ``keras.Model``)."""
    if _LOOKAHEAD:
        return _LOOKAHEAD[0]
    keras = keras_module()
    ops = keras.ops

    class _Emitter(keras.layers.Layer):  # type: ignore[name-defined]
        """A cell's states as its output: the RNN around it returns the states after every step."""

        def __init__(self, cell: Any) -> None:
            super().__init__(dtype=cell.dtype_policy, name=f"{cell.name}_states")
            self.cell = cell
            size = cell.state_size
            self.sizes = [size] if isinstance(size, int) else list(size)
            self.state_size = size
            self.output_size = sum(self.sizes)
            self.built = True

        def call(self, inputs: Any, states: Any, training: bool = False) -> Any:
            _, new = self.cell(inputs, states, training=training)
            flat = list(new) if isinstance(new, (list, tuple)) else [new]
            return ops.concatenate(flat, axis=-1), new

        def get_initial_state(self, batch_size: Any) -> Any:
            return self.cell.get_initial_state(batch_size=batch_size)

    class _Lookahead(keras.Model):  # type: ignore[name-defined]
        """Position ``t - 1`` of its output is ``clone(x[:, :t])``, for every ``t`` (see :func:`_lookahead_copy`)."""

        def __init__(self, clone: Any, rnn_at: int, ahead: int, window: int) -> None:
            super().__init__(name=f"{clone.name}_lookahead")
            layers = list(clone.layers)
            self.clone = clone
            self.front = layers[:rnn_at]
            self.rnn = layers[rnn_at]
            self.back = layers[rnn_at + 1 :]
            emitter = _Emitter(self.rnn.cell)
            self.sizes = emitter.sizes
            self.states_rnn = keras.layers.RNN(emitter, return_sequences=True)
            self.ahead, self.window = ahead, window
            # What a trace of the states loop's step reads (torch), if Keras's own layers only.
            self.traced_reads = list(clone.variables) if traced.keras_layers_only(clone) else None
            self.traces: dict[str, Any] = {}  # its states loop's traces (traced.scan's kept)
            self.built = True

        def _front(self, h: Any) -> Any:
            for layer in self.front:
                h = layer(h, training=False)
            return h

        def call(self, x: Any, training: bool = False) -> Any:
            del training
            try:
                return self._every_end(x)
            finally:  # what the RNN layer does after its loop: no dropout mask kept
                for reset in ("reset_dropout_mask", "reset_recurrent_dropout_mask"):
                    getattr(self.rnn.cell, reset, lambda: None)()

        def _states(self, h: Any) -> Any:
            """The RNN's states after every step of ``h``, joined: ``(batch, steps, sum of sizes)``."""
            if self.traced_reads is None or keras.backend.backend() != "torch":
                return self.states_rnn(h, training=False)
            # torch: the loop of the RNN around the emitter, its steps replays of one trace.
            cuts = [int(c) for c in np.cumsum(self.sizes)[:-1]]

            def step(carry: Any, at: Any) -> tuple[Any, Any]:
                start = ops.split(carry, cuts, axis=-1) if cuts else [carry]
                _, new = self.rnn.cell(at, start, training=False)
                joined = ops.concatenate(list(new) if isinstance(new, (list, tuple)) else [new], -1)
                return joined, joined

            start = self.rnn.cell.get_initial_state(batch_size=ops.shape(h)[0])
            start = ops.concatenate(
                list(start) if isinstance(start, (list, tuple)) else [start], -1
            )
            _, states = traced.scan(
                step,
                ops.cast(start, h.dtype),
                ops.transpose(h, (1, 0, 2)),
                variables=self.traced_reads,
                kept=self.traces,
            )
            return ops.transpose(states, (1, 0, 2))

        def _every_end(self, x: Any) -> Any:
            ahead, window = self.ahead, self.window
            steps = ops.shape(x)[1]
            features = tuple(x.shape[2:])
            # The RNN's states after every step of the whole sequence; the prefix
            # x[:, :t] reaches the state after step t - 1 - ahead unchanged (zeros
            # before the first step).
            states = self._states(self._front(x))
            starts = ops.pad(states, [[0, 0], [ahead, 0], [0, 0]])[:, :steps]
            # The steps x[:, t - window : t] for every t (x padded with zeros in front:
            # the first window - 1 are replaced by the prefixes themselves below).
            padded = ops.pad(x, [[0, 0], [window - 1, 0]] + [[0, 0]] * len(features))
            windows = ops.stack([padded[:, j : j + steps] for j in range(window)], axis=2)
            if keras.backend.backend() == "torch":
                y = self._ends_at_once(windows, starts, features)
            else:
                y = self._ends_scanned(windows, starts, states, x)
            if window == 1:
                return y
            first = ops.stack(
                [self.clone(x[:, :t], training=False) for t in range(1, window)], axis=1
            )
            return ops.concatenate([first[:, :steps], y[:, window - 1 :]], axis=1)

        def _end(self, piece: Any, start: list[Any]) -> Any:
            """The outputs at prefix ends: their last ``window`` steps ``piece``, the RNN's
            states ``start`` before their last ``ahead`` steps."""
            # The RNN's steps as its loop takes them: its cell on each, the states as a
            # list (unrolled: ``ahead`` is known, and a loop inside a scan costs as much
            # as the rest).
            edge = self._front(piece)[:, self.window - self.ahead :]
            carried = start
            for k in range(self.ahead):
                y, carried = self.rnn.cell(edge[:, k], carried, training=False)
                carried = list(carried) if isinstance(carried, (list, tuple)) else [carried]
            for layer in self.back:
                y = layer(y, training=False)
            return y

        def _ends_at_once(self, windows: Any, starts: Any, features: tuple[int, ...]) -> Any:
            """torch: every end's output, :data:`END_ROWS` ends (rows of the batch) in one eager call."""
            batch, steps = int(windows.shape[0]), int(windows.shape[1])
            rows = ops.reshape(windows, (batch * steps, self.window, *features))
            carried = ops.reshape(starts, (batch * steps, -1))
            cuts = [int(c) for c in np.cumsum(self.sizes)[:-1]]
            ys = []
            for a in range(0, batch * steps, END_ROWS):
                part = carried[a : a + END_ROWS]
                start = ops.split(part, cuts, axis=-1) if cuts else [part]
                ys.append(self._end(rows[a : a + END_ROWS], start))
            y = ops.concatenate(ys, axis=0) if len(ys) > 1 else ys[0]
            return ops.reshape(y, (batch, steps, *tuple(y.shape[1:])))

        def _ends_scanned(self, windows: Any, starts: Any, states: Any, x: Any) -> Any:
            """Every end's output, one end (the whole batch) per step of a scan: TensorFlow, JAX."""
            window = self.window
            batch, steps = ops.shape(x)[0], ops.shape(x)[1]
            features = tuple(x.shape[2:])
            # One sequence to scan over (Keras's TensorFlow scan over several needs their
            # length known when traced): per end, its window and its states, flattened.
            size = int(np.prod(features, dtype=np.int64)) * window
            kinds = {keras.backend.standardize_dtype(t.dtype) for t in (x, states)}
            both = "float64" if "float64" in kinds else keras.backend.standardize_dtype(x.dtype)
            per_end = ops.concatenate(
                [
                    ops.cast(ops.reshape(windows, (batch, steps, size)), both),
                    ops.cast(starts, both),
                ],
                axis=-1,
            )
            cuts = [size + int(c) for c in np.cumsum(self.sizes)[:-1]]

            def end(out: Any, at: Any) -> tuple[Any, Any]:
                # One prefix end for the whole batch, as a prefix call computes it.
                piece, *start = ops.split(at, [size, *cuts], axis=-1)
                piece = ops.cast(ops.reshape(piece, (batch, window, *features)), x.dtype)
                y = self._end(piece, [ops.cast(s, states.dtype) for s in start])
                return y, y

            spec = self.clone.outputs[0]
            _, ends = ops.scan(
                end,
                ops.zeros((batch, *tuple(spec.shape)[1:]), dtype=spec.dtype),
                ops.transpose(per_end, (1, 0, 2)),
            )
            return ops.transpose(ends, (1, 0, *range(2, len(ends.shape))))

    _LOOKAHEAD.append(_Lookahead)
    return _Lookahead
