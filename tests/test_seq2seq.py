"""assert_inference_matches_training and teacher_forcing_gap on real small Keras models.

Every inference, correct or broken, is built from the SAME layers as the
teacher-forced training model, as a user would. Weights stay untrained: random
weights make a wrong wiring differ by far more than the tolerance.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import keras
import numpy as np
import pytest
from keras import layers as L
from keras import ops
from models import DEC_STEPS, ENC_FEATURES, FEATURES, LATENT, VOCAB, Net, build_net, ids
from models import pair as tutorial_pair
from models import unrolled as tutorial_unrolled

import pytest_rnn
from pytest_rnn import _keras
from pytest_rnn._errors import RNNAssertionError
from pytest_rnn._random import kept
from pytest_rnn._seq2seq import (
    TeacherForcingGap,
    assert_inference_matches_training,
    teacher_forcing_gap,
)
from pytest_rnn._seq2seq.check import step_hint

ENC_STEPS = 6
BATCH = 4
START = -1.0
START_ID = 1


# --------------------------------------------------------------------------- models


# The tutorial net and its inference forms are models.py's; cached here: tests that
# share an inference model share its compiled trace.
unrolled = functools.cache(tutorial_unrolled)
pair = functools.cache(tutorial_pair)


@functools.cache
def plain(net: Net, bug: str | None = None, *, teacher: bool = True) -> Callable[..., Any]:
    """A hand-written Python decoding loop (inference form c)."""
    encoder_model, step_model = pair(net)

    def decode(encoder_inputs: Any, start: Any, decoder_inputs: Any = None) -> list[Any]:
        states = encoder_model(ops.convert_to_tensor(encoder_inputs))
        states = list(states) if isinstance(states, (list, tuple)) else [states]
        cur = ops.convert_to_tensor(start)
        if bug == "own_start":
            cur = ops.zeros_like(cur)
        prev, outs = cur, []
        for t in range(DEC_STEPS):
            if decoder_inputs is not None:
                cur = ops.convert_to_tensor(decoder_inputs[:, t : t + 1])
            y, *states = step_model([cur, *states])
            outs.append(y)
            nxt = ids(y) if net.tokens else y
            cur, prev = (prev, nxt) if bug == "lag" else (nxt, nxt)
        return outs

    if teacher:
        return decode

    def free_only(encoder_inputs: Any, start: Any) -> list[Any]:
        return decode(encoder_inputs, start)

    return free_only


@pytest.fixture(scope="module")
def nets() -> dict[tuple[str, bool], Net]:
    with kept():
        keras.utils.set_random_seed(7)
        return {(c, t): build_net(c, t) for c in ("lstm", "gru") for t in (False, True)}


@pytest.fixture(scope="module")
def lstm(nets: dict[tuple[str, bool], Net]) -> Net:
    return nets[("lstm", False)]


@pytest.fixture(scope="module")
def lstm_tokens(nets: dict[tuple[str, bool], Net]) -> Net:
    return nets[("lstm", True)]


def encoder_inputs(net: Net, batch: int = BATCH, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    if net.tokens:
        return g.integers(0, VOCAB, size=(batch, ENC_STEPS)).astype("int32")
    return g.normal(size=(batch, ENC_STEPS, ENC_FEATURES)).astype("float32")


def decoder_inputs(net: Net, batch: int = BATCH, seed: int = 1) -> np.ndarray:
    g = np.random.default_rng(seed)
    if net.tokens:
        d = g.integers(0, VOCAB, size=(batch, DEC_STEPS)).astype("int32")
        d[:, 0] = START_ID
        return d
    d = g.normal(size=(batch, DEC_STEPS, FEATURES)).astype("float32")
    d[:, 0] = START
    return d


def kwargs(net: Net) -> dict[str, Any]:
    return {"start": START_ID, "feedback": "argmax"} if net.tokens else {"start": START}


def caught(train: Any, inference: Any, x: Any, **kw: Any) -> str:
    with pytest.raises(RNNAssertionError) as info:
        assert_inference_matches_training(train, inference, x, **kw)
    return str(info.value)


# --------------------------------------------------------------------------- correct wiring passes


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("tokens", [False, True], ids=["regression", "tokens"])
@pytest.mark.backends
def test_unrolled_model_passes(nets: dict[tuple[str, bool], Net], cell: str, tokens: bool) -> None:
    net = nets[(cell, tokens)]
    assert_inference_matches_training(net.train, unrolled(net), encoder_inputs(net), **kwargs(net))


def test_unrolled_model_with_one_stacked_output_passes(lstm: Net) -> None:
    inference = unrolled(lstm, stacked=True)
    assert len(inference.outputs) == 1
    assert_inference_matches_training(lstm.train, inference, encoder_inputs(lstm), start=START)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("tokens", [False, True], ids=["regression", "tokens"])
@pytest.mark.backends
def test_tutorial_pair_passes_free_running_and_teacher_forced(
    nets: dict[tuple[str, bool], Net], cell: str, tokens: bool
) -> None:
    net = nets[(cell, tokens)]
    feedback = "argmax" if tokens else None
    assert_inference_matches_training(
        net.train,
        pair(net),
        encoder_inputs(net),
        decoder_inputs=decoder_inputs(net),
        feedback=feedback,
    )


def test_pair_with_a_callable_feedback_agrees_with_argmax(lstm_tokens: Net) -> None:
    assert_inference_matches_training(
        lstm_tokens.train,
        pair(lstm_tokens),
        encoder_inputs(lstm_tokens),
        decoder_inputs=decoder_inputs(lstm_tokens),
        feedback=lambda y: np.argmax(y, axis=-1),
    )


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("tokens", [False, True], ids=["regression", "tokens"])
@pytest.mark.backends
def test_plain_callable_passes_free_running_and_teacher_forced(
    nets: dict[tuple[str, bool], Net], cell: str, tokens: bool
) -> None:
    net = nets[(cell, tokens)]
    assert_inference_matches_training(
        net.train,
        plain(net),
        encoder_inputs(net),
        decoder_inputs=decoder_inputs(net),
        feedback="argmax" if tokens else None,
    )


def test_plain_callable_without_decoder_inputs_keyword_runs_free_only(lstm: Net) -> None:
    free_only = plain(lstm, teacher=False)
    assert_inference_matches_training(
        lstm.train, free_only, encoder_inputs(lstm), decoder_inputs=decoder_inputs(lstm)
    )
    # A teacher-forcing bug is invisible to a free-only callable, but free running sees the start.
    msg = caught(
        lstm.train, plain(lstm, "own_start", teacher=False), encoder_inputs(lstm), start=START
    )
    assert "free-running:" in msg and "teacher-forced replay" not in msg


@pytest.mark.parametrize(
    "start",
    [
        START,
        np.full((FEATURES,), START, "float32"),
        np.full((BATCH, 1, FEATURES), START, "float32"),
        np.linspace(-1, 1, BATCH, dtype="float32")[:, None],
    ],
    ids=["scalar", "per-feature", "one-step-with-time", "per-sample"],
)
def test_start_is_shaped_from_the_input_specs(lstm: Net, start: Any) -> None:
    assert_inference_matches_training(lstm.train, unrolled(lstm), encoder_inputs(lstm), start=start)


def test_default_start_is_decoder_inputs_first_step(lstm: Net) -> None:
    d = decoder_inputs(lstm)
    d[:, 0] = np.linspace(-1, 1, BATCH)[:, None]  # a per-sample start, like a last observed value
    assert_inference_matches_training(
        lstm.train, pair(lstm), encoder_inputs(lstm), decoder_inputs=d
    )


# --------------------------------------------------------------------------- bugs caught


@pytest.mark.backends
def test_state_reinitialised_every_step_is_caught_at_step_1(
    nets: dict[tuple[str, bool], Net],
) -> None:
    for cell in ("lstm", "gru"):
        net = nets[(cell, False)]
        msg = caught(net.train, unrolled(net, "reinit"), encoder_inputs(net), start=START)
        assert "step 0 agrees, step 1 is the first that differs" in msg
        assert "the state carried between steps" in msg
        assert "first mismatch: step 1, sample 0" in msg


@pytest.mark.backends
def test_fresh_untrained_layer_is_caught_at_step_0_and_named(lstm: Net) -> None:
    msg = caught(lstm.train, unrolled(lstm, "fresh_dense"), encoder_inputs(lstm), start=START)
    assert "step 0 differs" in msg
    assert "whose weights are none of train_model's: a fresh (untrained) layer" in msg
    assert "not used by the inference: train_model's 'decoder_dense' (Dense(8))" in msg


def test_start_value_fed_at_every_step_is_caught_and_recognised(lstm: Net) -> None:
    msg = caught(lstm.train, unrolled(lstm, "start_every_step"), encoder_inputs(lstm), start=START)
    assert "step 1 is the first that differs" in msg
    assert "feeds the start value to every step instead of the previous output" in msg


def test_swapped_encoder_states_are_caught_at_step_0(lstm: Net) -> None:
    x = encoder_inputs(lstm)
    for inference in (unrolled(lstm, "swap"), pair(lstm, "swap")):
        msg = caught(lstm.train, inference, x, start=START)
        assert "step 0 differs" in msg
        assert "h and c swapped?" in msg
        assert "first mismatch: step 0" in msg


def test_inference_with_its_own_start_value_is_caught(lstm: Net) -> None:
    msg = caught(lstm.train, plain(lstm, "own_start"), encoder_inputs(lstm), start=START)
    assert "step 0 differs" in msg
    assert "started from 0 instead of -1: the inference uses its own start value" in msg


def test_start_other_than_trainings_is_caught(lstm: Net) -> None:
    d = decoder_inputs(lstm)  # training fed -1 at step 0
    msg = caught(lstm.train, pair(lstm), encoder_inputs(lstm), decoder_inputs=d, start=0.0)
    assert "start: start=0 but decoder_inputs[:, 0] holds -1" in msg
    assert "in 4 of 4 samples" in msg
    # The same inference with training's start passes.
    assert_inference_matches_training(
        lstm.train, pair(lstm), encoder_inputs(lstm), decoder_inputs=d, start=START
    )


@pytest.mark.backends
def test_token_feedback_off_by_one_id_is_caught(lstm_tokens: Net) -> None:
    net = lstm_tokens
    msg = caught(net.train, unrolled(net, "id_off_by_one"), encoder_inputs(net), **kwargs(net))
    assert "step 1 is the first that differs" in msg
    assert "feedback argmax" in msg


def test_token_feedback_one_step_late_is_caught_and_recognised(lstm_tokens: Net) -> None:
    net = lstm_tokens
    msg = caught(net.train, plain(net, "lag", teacher=False), encoder_inputs(net), **kwargs(net))
    assert "step 1 is the first that differs" in msg
    assert "fed its outputs two steps late" in msg


def test_tutorial_decoder_on_a_new_rnn_is_caught_in_both_checks(
    nets: dict[tuple[str, bool], Net],
) -> None:
    for cell in ("lstm", "gru"):
        net = nets[(cell, False)]
        msg = caught(
            net.train, pair(net, "new_rnn"), encoder_inputs(net), decoder_inputs=decoder_inputs(net)
        )
        assert "(2 checks fail)" in msg
        assert "free-running:" in msg and "teacher-forced replay:" in msg
        assert "step 0 differs" in msg
        assert "whose weights are none of train_model's" in msg
        assert "not used by the inference: train_model's 'decoder_rnn'" in msg


@pytest.mark.backends
def test_seed_answers_fix_feeding_the_lstm_output_is_caught(lstm: Net) -> None:
    msg = caught(lstm.train, unrolled(lstm, "feed_rnn_output"), encoder_inputs(lstm), start=START)
    assert "step 1 is the first that differs" in msg
    assert "the LSTM output instead of the Dense output" in msg


def test_step_model_not_carrying_state_fails_teacher_forced_replay(lstm: Net) -> None:
    msg = caught(
        lstm.train,
        pair(lstm, "keep_states"),
        encoder_inputs(lstm),
        decoder_inputs=decoder_inputs(lstm),
    )
    assert "teacher-forced replay: the inference stepped with decoder_inputs" in msg
    replay = msg.split("teacher-forced replay:")[1]
    assert (
        "the inputs are the same ground truth, so the state carried between steps differs" in replay
    )
    assert "first mismatch: step 1" in replay


def test_message_names_models_shapes_and_comparison(lstm: Net) -> None:
    msg = caught(lstm.train, unrolled(lstm, "reinit"), encoder_inputs(lstm), start=START)
    first, context = msg.splitlines()[:2]
    assert first == "The inference does not reproduce the training model (1 check fails)."
    assert "train_model 'train_lstm' (LSTM(8) -> LSTM(8) -> Dense(8))" in context
    assert "inference: unrolled model 'inference_reinit'" in context
    assert (
        "batch 4, 6 encoder steps, 5 decoder steps; start -1 (start); feedback identity" in context
    )
    assert "inference" in msg and "training" in msg and "abs diff" in msg
    assert "mismatched:" in msg and "allowed 1e-05 + 1.3e-06*|training|" in msg


def test_all_problems_reported_in_one_error(lstm: Net) -> None:
    msg = caught(
        lstm.train,
        pair(lstm, "new_rnn"),
        encoder_inputs(lstm),
        decoder_inputs=decoder_inputs(lstm),
        start=0.5,
    )
    assert "(3 checks fail)" in msg
    assert (
        msg.index("free-running:")
        < msg.index("teacher-forced replay:")
        < msg.index("start: start=0.5")
    )


def test_looser_tolerance_is_respected(lstm: Net) -> None:
    x, inference = encoder_inputs(lstm), unrolled(lstm, "reinit")
    caught(lstm.train, inference, x, start=START, rtol=0.0, atol=1e-3)
    assert_inference_matches_training(lstm.train, inference, x, start=START, rtol=0.0, atol=10.0)


def test_step_hint_is_pure_and_names_the_cause() -> None:
    assert "encoder states" in step_hint(0, teacher_forced=False)
    assert "start value" in step_hint(0, teacher_forced=True)
    assert step_hint(3, teacher_forced=False).startswith("steps 0-2 agree, step 3 is the first")
    assert "what is fed back" in step_hint(1, teacher_forced=False)
    assert "what is fed back" not in step_hint(1, teacher_forced=True)


# --------------------------------------------------------------------------- bad calls


@pytest.fixture(scope="module")
def bad(lstm: Net, lstm_tokens: Net) -> SimpleNamespace:
    """What the table of bad calls calls with: a net, its inputs, and wrong things."""
    y_prev, h = keras.Input((1, FEATURES)), keras.Input((LATENT,))
    return SimpleNamespace(
        a=assert_inference_matches_training,
        gap=teacher_forcing_gap,
        train=lstm.train,
        inf=unrolled(lstm),
        x=encoder_inputs(lstm),
        d=decoder_inputs(lstm),
        tok=lstm_tokens,
        one_input=keras.Model(lstm.enc_in, lstm.enc_states[0]),
        step=pair(lstm)[1],
        gru_step=keras.Model([y_prev, h], L.GRU(LATENT)(y_prev, initial_state=h)),
    )


# (case, call, exception, fragment of the message naming the argument)
# fmt: off
BAD_CALLS: list[tuple[str, Callable[[Any], Any], type[Exception], str]] = [
    ("train not a model", lambda b: b.a("model", b.inf, b.x), TypeError, "train_model"),
    ("train one input", lambda b: b.a(b.one_input, b.inf, b.x), ValueError, "train_model"),
    ("inference unknown kind", lambda b: b.a(b.train, 3, b.x), TypeError, "inference"),
    ("inference triple", lambda b: b.a(b.train, (b.step, b.step, b.step), b.x), TypeError, "inference"),
    ("inference one-input model", lambda b: b.a(b.train, b.one_input, b.x), ValueError, "inference"),
    ("step model alone", lambda b: b.a(b.train, b.gru_step, b.x), ValueError, "decoder step model alone"),
    ("pair with mismatched states", lambda b: b.a(b.train, (b.one_input, b.step), b.x, decoder_inputs=b.d), ValueError, "inference"),
    ("feedback unknown string", lambda b: b.a(b.train, b.inf, b.x, feedback="softmax"), ValueError, "feedback"),
    ("feedback wrong type", lambda b: b.a(b.train, b.inf, b.x, feedback=3), TypeError, "feedback"),
    ("identity feedback for tokens", lambda b: b.a(b.tok.train, unrolled(b.tok), encoder_inputs(b.tok)), ValueError, "feedback='argmax'"),
    ("encoder_inputs a string", lambda b: b.a(b.train, b.inf, "x"), TypeError, "encoder_inputs"),
    ("encoder_inputs rank", lambda b: b.a(b.train, b.inf, b.x[..., 0]), ValueError, "encoder_inputs"),
    ("batch sizes differ", lambda b: b.a(b.train, b.inf, b.x, decoder_inputs=b.d[:2]), ValueError, "decoder_inputs"),
    ("decoder steps differ", lambda b: b.a(b.train, b.inf, b.x, decoder_inputs=b.d[:, :3]), ValueError, "decoder_inputs"),
    ("decoder features differ", lambda b: b.a(b.train, b.inf, b.x, decoder_inputs=b.d[..., :2]), ValueError, "decoder_inputs"),
    ("start wrong shape", lambda b: b.a(b.train, b.inf, b.x, start=np.zeros((3, 2))), ValueError, "start"),
    ("start a string", lambda b: b.a(b.train, b.inf, b.x, start="go"), TypeError, "start"),
    ("rtol without atol", lambda b: b.a(b.train, b.inf, b.x, rtol=1e-3), ValueError, "rtol"),
    ("unrolled steps differ", lambda b: b.a(b.train, keras.Model(b.inf.inputs, b.inf.outputs[:3]), b.x), ValueError, "inference"),
    ("callable steps differ", lambda b: b.a(b.train, lambda e, s: [np.zeros((BATCH, FEATURES))] * 2, b.x), ValueError, "inference"),
    ("callable batch differs", lambda b: b.a(b.train, lambda e, s: np.zeros((2, DEC_STEPS, FEATURES)), b.x), ValueError, "inference"),
    ("targets wrong shape", lambda b: b.gap(b.train, b.inf, b.x, b.d[..., :2]), ValueError, "targets"),
    ("targets wrong batch", lambda b: b.gap(b.train, b.inf, b.x, b.d[:2]), ValueError, "targets"),
    ("targets wrong steps", lambda b: b.gap(b.train, b.inf, b.x, b.d[:, :3]), ValueError, "targets"),
    ("targets not an array", lambda b: b.gap(b.train, b.inf, b.x, None), TypeError, "targets"),
    ("loss unknown", lambda b: b.gap(b.train, b.inf, b.x, b.d, loss="huber"), ValueError, "loss"),
    ("loss wrong type", lambda b: b.gap(b.train, b.inf, b.x, b.d, loss=2), TypeError, "loss"),
]
# fmt: on


@pytest.mark.parametrize(
    ("call", "exc", "arg"), [row[1:] for row in BAD_CALLS], ids=[row[0] for row in BAD_CALLS]
)
def test_bad_calls_name_the_argument(
    bad: SimpleNamespace, call: Callable[[Any], Any], exc: type[Exception], arg: str
) -> None:
    with pytest.raises(exc, match=re.escape(arg)):
        call(bad)


def test_pair_needs_a_step_count(lstm: Net) -> None:
    open_train = keras.Model(
        [lstm.enc_in, (d := keras.Input((None, FEATURES)))],
        lstm.dense(lstm.decoder_rnn(d, initial_state=lstm.enc_states)[0]),
    )
    with pytest.raises(ValueError, match="pass decoder_inputs"):
        assert_inference_matches_training(open_train, pair(lstm), encoder_inputs(lstm), start=START)
    # With decoder_inputs the open-length training model works.
    assert_inference_matches_training(
        open_train, pair(lstm), encoder_inputs(lstm), decoder_inputs=decoder_inputs(lstm)
    )


# --------------------------------------------------------------------------- untouched


def _weights(models: list[Any]) -> list[np.ndarray]:
    return [np.array(w.numpy()) for m in models for w in m.weights]


@pytest.mark.parametrize("bug", [None, "reinit"], ids=["passing", "failing"])
@pytest.mark.backends
def test_models_and_global_rng_untouched(lstm: Net, bug: str | None) -> None:
    inference = unrolled(lstm, bug)
    enc_model, step_model = pair(lstm)
    models = [lstm.train, inference, enc_model, step_model]
    before = _weights(models)
    random.seed(3)
    np.random.seed(3)
    py_state, np_state = random.getstate(), np.random.get_state()
    compiled_before = [m.compiled for m in models]
    for call in (
        lambda: assert_inference_matches_training(
            lstm.train, inference, encoder_inputs(lstm), start=START
        ),
        lambda: teacher_forcing_gap(
            lstm.train, (enc_model, step_model), encoder_inputs(lstm), decoder_inputs(lstm)
        ),
    ):
        try:
            call()
        except RNNAssertionError:
            assert bug is not None
    assert random.getstate() == py_state
    np_after: Any = np.random.get_state()
    expected: Any = np_state
    assert np_after[0] == expected[0] and np.array_equal(np_after[1], expected[1])
    for a, b in zip(before, _weights(models)):
        np.testing.assert_array_equal(a, b)
    assert [m.compiled for m in models] == compiled_before


@pytest.mark.parametrize("bug", [None, "reinit"], ids=["passing", "failing"])
@pytest.mark.backends
def test_stateful_rnn_states_restored(bug: str | None) -> None:
    with kept():
        net = build_net("lstm", False, batch=BATCH, stateful=True)
        inference = unrolled(net, bug, batch=BATCH)
    x = encoder_inputs(net)
    net.train([x, decoder_inputs(net)])  # creates the states
    g = np.random.default_rng(5)
    for _, layer in _keras.stateful_layers(net.train):
        for s in layer.states:
            s.assign(g.normal(size=s.shape).astype("float32"))
    before = _keras.get_states(net.train)
    try:
        assert_inference_matches_training(net.train, inference, x, start=START)
        assert bug is None
    except RNNAssertionError as exc:
        assert bug is not None and "step 1 is the first that differs" in str(exc)
    after = _keras.get_states(net.train)
    assert before.keys() == after.keys()
    for key in before:
        for a, b in zip(before[key], after[key]):
            np.testing.assert_array_equal(a, b)


# --------------------------------------------------------------------------- teacher_forcing_gap


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean((a.astype(np.float64) - b) ** 2))


@pytest.mark.backends
def test_gap_losses_are_the_training_and_inference_losses(lstm: Net) -> None:
    x, targets = (
        encoder_inputs(lstm),
        np.random.default_rng(9).normal(size=(BATCH, DEC_STEPS, FEATURES)),
    )
    inference = unrolled(lstm)
    gap = teacher_forcing_gap(lstm.train, inference, x, targets, start=START)
    shifted = np.concatenate([np.full((BATCH, 1, FEATURES), START), targets[:, :-1]], axis=1)
    teacher_out = keras.ops.convert_to_numpy(lstm.train([x, shifted.astype("float32")]))
    free_out = np.stack(
        [
            keras.ops.convert_to_numpy(o)
            for o in inference([x, np.full((BATCH, 1, FEATURES), START, "float32")])
        ],
        1,
    )
    assert gap.teacher_forced_loss == pytest.approx(_mse(teacher_out, targets), rel=1e-5)
    assert gap.free_running_loss == pytest.approx(_mse(free_out, targets), rel=1e-5)
    assert gap.steps == DEC_STEPS and gap.loss == "mse"
    assert gap.teacher_forced_per_step.shape == gap.free_running_per_step.shape == (DEC_STEPS,)
    per_step = ((teacher_out - targets) ** 2).mean(axis=(0, 2))
    np.testing.assert_allclose(gap.teacher_forced_per_step, per_step, rtol=1e-5)
    # Step 0 gets the same input (start) in both runs.
    assert gap.teacher_forced_per_step[0] == pytest.approx(gap.free_running_per_step[0], rel=1e-5)
    assert gap.wiring_consistent is True and gap.first_differing_step is None
    text = str(gap)
    assert "teacher forcing gap: loss 'mse', 5 decoder steps" in text
    assert "teacher-forced" in text and "free-running" in text and "\n     all" in text
    assert text.splitlines()[-1] == gap.verdict


def test_gap_uses_decoder_inputs_when_given(lstm: Net) -> None:
    x, d = encoder_inputs(lstm), decoder_inputs(lstm)
    targets = np.concatenate([d[:, 1:], d[:, -1:]], axis=1)
    by_targets = teacher_forcing_gap(lstm.train, pair(lstm), x, targets, start=START)
    by_inputs = teacher_forcing_gap(lstm.train, pair(lstm), x, targets, decoder_inputs=d)
    assert by_inputs.teacher_forced_loss == pytest.approx(by_targets.teacher_forced_loss, rel=1e-6)
    assert by_inputs.free_running_loss == pytest.approx(by_targets.free_running_loss, rel=1e-6)


def test_gap_reports_a_wiring_bug_instead_of_exposure_bias(lstm: Net) -> None:
    x, targets = encoder_inputs(lstm), decoder_inputs(lstm)
    gap = teacher_forcing_gap(lstm.train, unrolled(lstm, "reinit"), x, targets, start=START)
    assert gap.wiring_consistent is False and gap.first_differing_step == 1
    assert gap.verdict.startswith("Wiring bug, not exposure bias")
    assert "first differs at step 1" in str(gap)


def test_gap_crossentropy_on_ids_and_one_hot_targets(lstm_tokens: Net) -> None:
    net, x = lstm_tokens, encoder_inputs(lstm_tokens)
    target_ids = np.random.default_rng(4).integers(0, VOCAB, size=(BATCH, DEC_STEPS))
    one_hot = np.eye(VOCAB)[target_ids]
    by_ids = teacher_forcing_gap(
        net.train, pair(net), x, target_ids, loss="crossentropy", **kwargs(net)
    )
    by_hot = teacher_forcing_gap(
        net.train, pair(net), x, one_hot, loss="crossentropy", **kwargs(net)
    )
    assert by_ids.wiring_consistent is True
    assert by_ids.teacher_forced_loss == pytest.approx(by_hot.teacher_forced_loss, rel=1e-6)
    assert by_ids.free_running_loss == pytest.approx(by_hot.free_running_loss, rel=1e-6)
    np.testing.assert_allclose(
        by_ids.free_running_per_step, by_hot.free_running_per_step, rtol=1e-6
    )
    # Untrained softmax over 12 tokens: about log(12) per step.
    assert by_ids.teacher_forced_loss == pytest.approx(np.log(VOCAB), rel=0.2)


def test_gap_callable_loss_per_step(lstm: Net) -> None:
    x, targets = encoder_inputs(lstm), decoder_inputs(lstm)

    def seed_loss(y_true: Any, y_pred: Any) -> Any:  # seed 000 style: a Keras-ops loss
        return ops.mean(ops.square(y_true - y_pred))

    mine = teacher_forcing_gap(lstm.train, unrolled(lstm), x, targets, loss=seed_loss, start=START)
    builtin = teacher_forcing_gap(lstm.train, unrolled(lstm), x, targets, loss="mse", start=START)
    assert mine.loss == "seed_loss"
    assert mine.teacher_forced_loss == pytest.approx(builtin.teacher_forced_loss, rel=1e-5)
    np.testing.assert_allclose(mine.free_running_per_step, builtin.free_running_per_step, rtol=1e-5)


def _gap(tf: list[float], fr: list[float], wiring: bool | None = True) -> TeacherForcingGap:
    return TeacherForcingGap(
        teacher_forced_loss=float(np.mean(tf)),
        free_running_loss=float(np.mean(fr)),
        teacher_forced_per_step=np.array(tf),
        free_running_per_step=np.array(fr),
        steps=len(tf),
        wiring_consistent=wiring,
        first_differing_step=None if wiring is not False else 2,
    )


def test_gap_verdicts() -> None:
    bias = _gap([0.04, 0.045, 0.05], [0.04, 0.15, 0.3])
    assert bias.verdict.startswith("Exposure bias, not a bug")
    assert "the wiring check passes" in bias.verdict
    assert "0.04 at step 0 -> 0.3 at step 2" in bias.verdict
    assert bias.ratio == pytest.approx(0.49 / 0.135)
    none = _gap([0.04, 0.05], [0.04, 0.051])
    assert none.verdict.startswith("No exposure-bias gap")
    unchecked = _gap([0.04, 0.05], [0.04, 0.5], wiring=None)
    assert "if assert_inference_matches_training passes" in unchecked.verdict
    bug = _gap([0.04, 0.05, 0.06], [0.04, 0.05, 0.9], wiring=False)
    assert "first differs at step 2" in bug.verdict
    assert _gap([0.0], [0.0]).ratio == 1.0


def test_gap_table_is_capped() -> None:
    curve = list(np.linspace(0.01, 0.5, 40))
    text = _gap(curve, [2 * c for c in curve]).table()
    rows = [line for line in text.splitlines() if line.strip()[:1].isdigit()]
    assert len(rows) == 12
    assert rows[0].split()[0] == "0" and rows[-1].split()[0] == "39"
    assert "(12 of 40 steps shown)" in text


def test_gap_result_is_frozen(lstm: Net) -> None:
    gap = _gap([0.1, 0.2], [0.1, 0.3])
    with pytest.raises(AttributeError):
        gap.steps = 3  # type: ignore[misc]


# --------------------------------------------------------------------------- end to end


def test_pytest_run_shows_the_message(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import keras
        import numpy as np
        import pytest
        from keras import layers as L
        from pytest_rnn._seq2seq import assert_inference_matches_training

        enc_lstm = L.LSTM(4, return_state=True)
        dec_lstm = L.LSTM(4, return_sequences=True, return_state=True)
        dense = L.Dense(1)
        ei = keras.Input((5, 2))
        _, h0, c0 = enc_lstm(ei)
        di = keras.Input((3, 1))
        train = keras.Model([ei, di], dense(dec_lstm(di, initial_state=[h0, c0])[0]))

        def inference(reinit):
            s = keras.Input((1, 1))
            cur, h, c, outs = s, h0, c0, []
            for _ in range(3):
                if reinit:
                    h, c = h0, c0
                out, h, c = dec_lstm(cur, initial_state=[h, c])
                cur = dense(out)
                outs.append(cur)
            return keras.Model([ei, s], outs)

        x = np.random.default_rng(0).normal(size=(2, 5, 2)).astype("float32")

        def test_right():
            assert_inference_matches_training(train, inference(False), x, start=-1)

        def test_wrong():
            assert_inference_matches_training(train, inference(True), x, start=-1)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-o", "addopts=")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*RNNAssertionError: The inference does not reproduce the training model*",
            "*step 0 agrees, step 1 is the first that differs*",
        ]
    )
    folder = "pytest_rnn/_seq2seq/"  # where the assertion's frames live: not a vacuous check
    assert folder in step_hint.__code__.co_filename.replace("\\", "/")
    assert folder not in result.stdout.str()  # __tracebackhide__: the user's line only


# --------------------------------------------------------------------------- one-hot feedback


def onehot_tutorial(
    *, bug: str | None = None
) -> tuple[keras.Model, tuple[keras.Model, keras.Model]]:
    """keras-io's character-level lstm_seq2seq, small: one-hot characters in and fed back.

    ``bug="fresh-states"``: the decoder step model ignores the states it is given.
    """
    v_in, v_out, latent = 5, 6, 8
    enc_in = keras.Input((None, v_in))
    _, h, c = keras.layers.LSTM(latent, return_state=True)(enc_in)
    dec_in = keras.Input((None, v_out))
    dec_lstm = keras.layers.LSTM(latent, return_sequences=True, return_state=True)
    dense = keras.layers.Dense(v_out, activation="softmax")
    seq, _, _ = dec_lstm(dec_in, initial_state=[h, c])
    train = keras.Model([enc_in, dec_in], dense(seq), name="chars")
    encoder = keras.Model(enc_in, [h, c])
    step_in, h_in, c_in = keras.Input((1, v_out)), keras.Input((latent,)), keras.Input((latent,))
    given = [h_in, c_in] if bug is None else None
    out, h2, c2 = dec_lstm(step_in, initial_state=given)
    step = keras.Model([step_in, h_in, c_in], [dense(out), h2, c2])
    return train, (encoder, step)


def onehot_data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    enc = np.eye(5, dtype="float32")[rng.integers(0, 5, (3, 6))]
    dec = np.eye(6, dtype="float32")[rng.integers(0, 6, (3, 4))]
    dec[:, 0] = np.eye(6, dtype="float32")[0]  # the start character, as training was fed
    return enc, dec, dec[:, 0]


def test_onehot_feedback_checks_the_character_level_tutorial() -> None:
    train, pair = onehot_tutorial()
    enc, dec, start = onehot_data()
    assert_inference_matches_training(
        train, pair, enc, decoder_inputs=dec, start=start, feedback="onehot"
    )


def test_onehot_feedback_catches_a_decoder_that_drops_its_states() -> None:
    train, pair = onehot_tutorial(bug="fresh-states")
    enc, dec, start = onehot_data()
    with pytest.raises(
        RNNAssertionError,
        match=r"feedback onehot(.|\n)*step 0 differs: the decoder starts from other states",
    ):
        assert_inference_matches_training(
            train, pair, enc, decoder_inputs=dec, start=start, feedback="onehot"
        )


def test_argmax_feedback_on_a_onehot_decoder_points_at_onehot() -> None:
    train, pair = onehot_tutorial()
    enc, dec, start = onehot_data()
    with pytest.raises(
        ValueError, match="a decoder that takes one-hot vectors needs feedback='onehot'"
    ):
        assert_inference_matches_training(
            train, pair, enc, decoder_inputs=dec, start=start, feedback="argmax"
        )


def test_a_onehot_start_mismatch_shows_the_values_and_tokens() -> None:
    train, pair = onehot_tutorial()
    enc, dec, start = onehot_data()
    other = np.roll(start, 2, axis=-1)  # token 2 instead of the start token 0
    with pytest.raises(RNNAssertionError) as info:
        assert_inference_matches_training(
            train, pair, enc, decoder_inputs=dec, start=other, feedback="onehot"
        )
    assert (
        "    sample 0: start [0., 0., 1., 0., 0., 0.] (one-hot: token 2), "
        "decoder_inputs[:, 0] [1., 0., 0., 0., 0., 0.] (one-hot: token 0)"
    ) in str(info.value)


# --------------------------------------------------------------------------- steps: no labels


@pytest.fixture(scope="module")
def open_train(lstm: Net) -> keras.Model:
    """The tutorial's training model with an open decoder length ``(None, None, features)``."""
    d = keras.Input((None, FEATURES))
    out = lstm.dense(lstm.decoder_rnn(d, initial_state=lstm.enc_states)[0])
    return keras.Model([lstm.enc_in, d], out, name="open_lstm")


@pytest.mark.parametrize("steps", [1, 3, DEC_STEPS, 9])
def test_pair_runs_free_for_steps_without_decoder_inputs(
    lstm: Net, open_train: keras.Model, steps: int
) -> None:
    assert_inference_matches_training(
        open_train, pair(lstm), encoder_inputs(lstm), start=START, steps=steps
    )


def test_steps_agreeing_with_every_source_passes(lstm: Net, open_train: keras.Model) -> None:
    x, d = encoder_inputs(lstm), decoder_inputs(lstm)
    assert_inference_matches_training(open_train, pair(lstm), x, decoder_inputs=d, steps=DEC_STEPS)
    assert_inference_matches_training(lstm.train, unrolled(lstm), x, start=START, steps=DEC_STEPS)
    assert_inference_matches_training(
        open_train, plain(lstm, teacher=False), x, start=START, steps=DEC_STEPS
    )


def test_steps_catches_a_step_model_that_drops_its_states(
    lstm: Net, open_train: keras.Model
) -> None:
    msg = caught(open_train, pair(lstm, "keep_states"), encoder_inputs(lstm), start=START, steps=4)
    assert "batch 4, 6 encoder steps, 4 decoder steps" in msg
    assert "step 0 agrees, step 1 is the first that differs" in msg
    assert "first mismatch: step 1, sample 0" in msg
    # Without decoder_inputs nothing tells the step from the feedback: the message says how.
    assert (
        "to tell the step function from the feedback, pass decoder_inputs: the teacher-forced "
        "replay then steps with the ground truth"
    ) in msg


def test_without_steps_an_open_length_pair_is_told_to_pass_steps(
    lstm: Net, open_train: keras.Model
) -> None:
    with pytest.raises(ValueError) as info:
        assert_inference_matches_training(open_train, pair(lstm), encoder_inputs(lstm), start=START)
    assert str(info.value) == (
        "steps: cannot tell how many decoder steps to run (train_model's decoder input has no "
        "fixed length and the inference does not say): pass steps=N to run N steps free-running "
        "(no labels needed), or pass decoder_inputs"
    )


@pytest.mark.parametrize(
    ("steps", "exc", "message"),
    [
        (0, ValueError, "steps must be >= 1, got 0"),
        (-2, ValueError, "steps must be >= 1, got -2"),
        (True, TypeError, "steps must be an int, got bool"),
        (3.0, TypeError, "steps must be an int, got float"),
        ("5", TypeError, "steps must be an int, got str"),
    ],
    ids=["zero", "negative", "bool", "float", "string"],
)
def test_bad_steps_are_refused(
    lstm: Net, open_train: keras.Model, steps: Any, exc: type[Exception], message: str
) -> None:
    with pytest.raises(exc, match=f"^{re.escape(message)}$"):
        assert_inference_matches_training(
            open_train, pair(lstm), encoder_inputs(lstm), start=START, steps=steps
        )


def test_steps_disagreeing_with_decoder_inputs_or_train_model_are_refused(
    lstm: Net, open_train: keras.Model
) -> None:
    x, d = encoder_inputs(lstm), decoder_inputs(lstm)
    with pytest.raises(
        ValueError,
        match=re.escape(
            "steps=3 but decoder_inputs has 5 decoder steps: leave steps out (decoder_inputs "
            "fixes the number of steps) or pass steps=5"
        ),
    ):
        assert_inference_matches_training(open_train, pair(lstm), x, decoder_inputs=d, steps=3)
    with pytest.raises(
        ValueError, match=re.escape("steps=7 but train_model's decoder input has 5 decoder steps")
    ):
        assert_inference_matches_training(lstm.train, pair(lstm), x, start=START, steps=7)
    with pytest.raises(ValueError, match=re.escape("steps=2 but inference has 5 decoder steps")):
        assert_inference_matches_training(open_train, unrolled(lstm), x, start=START, steps=2)


# --------------------------------------------------------------------------- per-sample loops

CHARS = 6  # onehot_tutorial's decoder characters; character 0 is the start


@pytest.fixture(scope="module")
def chars() -> SimpleNamespace:
    """onehot_tutorial, seeded, and encoder inputs for 6 samples.

    The first seed whose greedy decode is informative: fed back a step late, some
    sample emits other characters (JAX's initial weights for seed 0 emit the start
    character at every step, which no feedback bug can change).
    """
    x = np.eye(5, dtype="float32")[np.random.default_rng(3).integers(0, 5, (6, 6))]
    start = np.eye(CHARS, dtype="float32")[0]
    for seed in range(10):
        with kept():
            keras.utils.set_random_seed(seed)
            train, models = onehot_tutorial()
            _, broken = onehot_tutorial(bug="fresh-states")
        if _lag_shows(models, x):
            return SimpleNamespace(train=train, pair=models, broken=broken, x=x, start=start)
    raise AssertionError("no seed in 0-9 gives onehot_tutorial an informative greedy decode")


def _lag_shows(models: tuple[Any, Any], x: np.ndarray) -> bool:
    """Whether feeding back a step late changes what some sample of ``x`` emits."""

    def emitted(bug: str | None, i: int) -> list[int]:
        outputs = decode_sequence_of(models, bug=bug)(x[i : i + 1])
        return [int(np.argmax(o[0, -1])) for o in outputs]

    return any(emitted(None, i) != emitted("lag", i) for i in range(len(x)))


def decode_sequence_of(
    models: tuple[Any, Any], *, stop: int | None = None, max_steps: int = 6, bug: str | None = None
) -> Callable[[np.ndarray], list[np.ndarray]]:
    """keras-io's ``decode_sequence(input_seq)``: one sample, stopping at ``stop`` or ``max_steps``.

    Returns each step's output ``(1, 1, CHARS)``, the only change from the tutorial.
    ``bug``: ``"encoder_states"`` (the states are never updated) or ``"lag"`` (the
    character fed back is the one before the last).
    """
    encoder_model, decoder_model = models

    def decode_sequence(input_seq: np.ndarray) -> list[np.ndarray]:
        states = [ops.convert_to_numpy(s) for s in encoder_model(input_seq)]
        target_seq = np.eye(CHARS, dtype="float32")[None, None, 0]
        previous, outputs = target_seq, []
        while True:
            output, *new = (ops.convert_to_numpy(o) for o in decoder_model([target_seq, *states]))
            outputs.append(output)
            token = int(np.argmax(output[0, -1]))
            if token == stop or len(outputs) == max_steps:
                return outputs
            sampled = np.eye(CHARS, dtype="float32")[None, None, token]
            target_seq, previous = (previous, sampled) if bug == "lag" else (sampled, sampled)
            if bug != "encoder_states":
                states = new

    return decode_sequence


def stop_character(models: tuple[Any, Any], x: np.ndarray) -> int:
    """A stop character that ends some samples early and not others (the weights decide which)."""
    loop = decode_sequence_of(models)
    emitted = [[int(np.argmax(o[0, -1])) for o in loop(x[i : i + 1])] for i in range(len(x))]
    for c in range(CHARS):
        stops = [c in e for e in emitted]
        if any(stops) and not all(stops):
            return c
    raise AssertionError(f"no character ends some samples early and not others: {emitted}")


def test_per_sample_loop_that_stops_early_passes(chars: SimpleNamespace) -> None:
    stop = stop_character(chars.pair, chars.x)
    loop = decode_sequence_of(chars.pair, stop=stop)
    lengths = [len(loop(chars.x[i : i + 1])) for i in range(len(chars.x))]
    assert min(lengths) < 6 == max(lengths)  # some samples stopped at the stop character
    kw = {"start": chars.start, "feedback": "onehot"}
    assert_inference_matches_training(chars.train, pytest_rnn.per_sample(loop), chars.x, **kw)
    assert_inference_matches_training(
        chars.train, pytest_rnn.per_sample(loop), chars.x, steps=6, **kw
    )
    # Even when every sample stops before the steps given, only what they produced counts.
    assert_inference_matches_training(
        chars.train, pytest_rnn.per_sample(loop), chars.x, steps=9, **kw
    )


@pytest.mark.parametrize(
    "shape",
    [
        lambda outs: outs,  # the step model's (1, 1, chars) per step
        lambda outs: [o[0, 0] for o in outs],  # (chars,) per step, the tutorial's [0, -1, :]
        lambda outs: np.concatenate([o[0] for o in outs]),  # one array (steps, chars)
        lambda outs: np.concatenate(outs, axis=1),  # one array (1, steps, chars)
        lambda outs: np.stack(outs),  # (steps, 1, 1, chars)
    ],
    ids=["steps-1-1-c", "steps-c", "array-t-c", "array-1-t-c", "array-t-1-1-c"],
)
def test_per_sample_outputs_in_any_layout_pass(
    chars: SimpleNamespace, shape: Callable[[list[np.ndarray]], Any]
) -> None:
    loop = decode_sequence_of(chars.pair, max_steps=4)
    assert_inference_matches_training(
        chars.train, pytest_rnn.per_sample(lambda x: shape(loop(x))), chars.x,
        start=chars.start, feedback="onehot",
    )  # fmt: skip


def test_per_sample_loop_with_states_never_updated_is_caught(chars: SimpleNamespace) -> None:
    buggy = decode_sequence_of(chars.pair, bug="encoder_states")
    lengths = iter([2, 6, 4, 6, 6, 3])  # the loop is called once per sample, in order
    msg = caught(
        chars.train, pytest_rnn.per_sample(lambda x: buggy(x)[: next(lengths)]), chars.x,
        start=chars.start, feedback="onehot",
    )  # fmt: skip
    first, context = msg.splitlines()[:2]
    assert first == "The inference does not reproduce the training model (1 check fails)."
    assert "inference: per-sample callable test_per_sample_loop_with_states" in context
    assert "(one sample at a time)" in context
    assert "batch 6, 6 encoder steps, 6 decoder steps" in context
    assert context.endswith(
        "; 3 of 6 samples stopped early (after 2, 4 and 3 steps), compared on the steps they "
        "produced"
    )
    assert "step 0 agrees, step 1 is the first that differs" in msg
    assert "re-initialised from the encoder at every step?" in msg
    assert " / 162 (" in msg  # compared: (2 + 6 + 4 + 6 + 6 + 3) steps * 6 characters


def test_per_sample_loop_feeding_back_late_is_caught(chars: SimpleNamespace) -> None:
    msg = caught(
        chars.train, pytest_rnn.per_sample(decode_sequence_of(chars.pair, bug="lag")), chars.x,
        start=chars.start, feedback="onehot",
    )  # fmt: skip
    assert "step 0 agrees, step 1 is the first that differs" in msg
    assert "fed its outputs two steps late: the feedback is shifted by one step too many" in msg


def test_per_sample_loop_with_fresh_states_is_caught_at_step_0(chars: SimpleNamespace) -> None:
    with pytest.raises(RNNAssertionError, match="step 0 differs: the decoder starts from other"):
        assert_inference_matches_training(
            chars.train, pytest_rnn.per_sample(decode_sequence_of(chars.broken)), chars.x,
            start=chars.start, feedback="onehot",
        )  # fmt: skip


def test_teacher_forcing_gap_of_a_per_sample_loop_counts_the_steps_it_produced(
    chars: SimpleNamespace,
) -> None:
    lengths = [2, 5, 4, 5, 5, 3]
    loop = decode_sequence_of(chars.pair)
    calls = iter(lengths)
    targets = np.eye(CHARS, dtype="float32")[np.random.default_rng(8).integers(0, CHARS, (6, 6))]
    gap = teacher_forcing_gap(
        chars.train, pytest_rnn.per_sample(lambda x: loop(x)[: next(calls)]), chars.x, targets,
        start=chars.start, feedback="onehot",
    )  # fmt: skip
    assert gap.wiring_consistent is True
    assert gap.steps == 5 and gap.free_running_per_step.shape == (5,)
    errors = [
        ((np.concatenate(loop(chars.x[i : i + 1])[:n], axis=1)[0] - targets[i, :n]) ** 2).mean(-1)
        for i, n in enumerate(lengths)
    ]
    assert gap.free_running_loss == pytest.approx(float(np.concatenate(errors).mean()), rel=1e-5)
    step_4 = [e[4] for e in errors if len(e) > 4]
    assert gap.free_running_per_step[4] == pytest.approx(float(np.mean(step_4)), rel=1e-5)
    # Step 0 gets the same input (start) in both runs.
    assert gap.teacher_forced_per_step[0] == pytest.approx(gap.free_running_per_step[0], rel=1e-5)


def test_per_sample_loop_returning_the_decoded_text_is_refused(chars: SimpleNamespace) -> None:
    def decode_sequence(input_seq: np.ndarray) -> str:
        return "ABC\n"

    with pytest.raises(
        TypeError,
        match=re.escape(
            "inference (per-sample callable test_per_sample_loop_returning_the_decoded_text_is_"
            "refused.<locals>.decode_sequence (one sample at a time)) returned str for sample 0: "
            "return the decoder outputs of the steps it ran (e.g. a list of each step's "
            "output_tokens), not the decoded text"
        ),
    ):
        assert_inference_matches_training(
            chars.train, pytest_rnn.per_sample(decode_sequence), chars.x, start=chars.start,
            feedback="onehot",
        )  # fmt: skip


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        (
            lambda loop, x: loop(x) * 2,
            "inference returned 12 decoder steps for sample 0, more than",
        ),
        (lambda loop, x: [], "returned no decoder steps for sample 0"),
        (lambda loop, x: [np.zeros((2, CHARS))], "output step 0 of sample 0 has shape (2, 6)"),
        (lambda loop, x: np.zeros(CHARS), "returned shape (6,) for sample 0"),
        (
            lambda loop, x: [np.zeros(CHARS), np.zeros(CHARS + 1)],
            "output steps of sample 0 differ in shape: (6,), (7,)",
        ),
    ],
    ids=["longer", "empty", "step-rank", "one-step-only", "ragged"],
)
def test_per_sample_outputs_that_do_not_fit_are_refused(
    chars: SimpleNamespace, returned: Callable[..., Any], message: str
) -> None:
    loop = decode_sequence_of(chars.pair)
    with pytest.raises(ValueError, match=re.escape(message)):
        assert_inference_matches_training(
            chars.train, pytest_rnn.per_sample(lambda x: returned(loop, x)), chars.x,
            start=chars.start, feedback="onehot", steps=6,
        )  # fmt: skip


def test_per_sample_needs_a_callable_and_is_idempotent() -> None:
    with pytest.raises(TypeError, match=r"^fn must be a callable .* got int$"):
        pytest_rnn.per_sample(3)  # type: ignore[arg-type]
    marked = pytest_rnn.per_sample(len)
    assert pytest_rnn.per_sample(marked) is marked  # type: ignore[arg-type]


# --------------------------------------------------------------------------- what the replay measured


def test_states_not_carried_and_feedback_late_get_different_hints(
    lstm: Net, lstm_tokens: Net
) -> None:
    # The step model hands back the states it was given: fed the ground truth, it still differs.
    states = caught(
        lstm.train, pair(lstm, "keep_states"), encoder_inputs(lstm),
        decoder_inputs=decoder_inputs(lstm),
    )  # fmt: skip
    free = states.split("teacher-forced replay:")[0]
    assert "(2 checks fail)" in states
    assert (
        "step 0 agrees, step 1 is the first that differs, and the teacher-forced replay fails "
        "too: stepped with the ground-truth decoder_inputs, the step function itself differs "
        "from training, so fix the step before the feedback"
    ) in free
    assert "the state carried between steps (not carried: re-initialised from the encoder" in free
    assert "the feedback is what differs" not in states
    # The loop feeds the token back one step late: fed the ground truth, it agrees.
    net = lstm_tokens
    late = caught(
        net.train, plain(net, "lag"), encoder_inputs(net), decoder_inputs=decoder_inputs(net),
        feedback="argmax",
    )  # fmt: skip
    assert "(1 check fails)" in late and "teacher-forced replay:" not in late
    assert (
        "step 0 agrees, step 1 is the first that differs, but the teacher-forced replay agrees: "
        "stepped with the ground-truth decoder_inputs, the step function and the states it "
        "carries are training's, so the feedback is what differs"
    ) in late
    assert "when (an off-by-one shift: the output fed one step late)" in late
    assert "argmax ids, one-hot vectors or probabilities" in late
    assert "fed its outputs two steps late" in late
    assert "the step function itself differs" not in late


def test_own_start_value_with_a_passing_replay_points_at_the_start(lstm: Net) -> None:
    msg = caught(
        lstm.train, plain(lstm, "own_start"), encoder_inputs(lstm),
        decoder_inputs=decoder_inputs(lstm),
    )  # fmt: skip
    assert "(1 check fails)" in msg
    assert (
        "step 0 differs: the decoder starts from other states or another first input than in "
        "training"
    ) in msg
    assert (
        "the teacher-forced replay, fed decoder_inputs[:, 0] at step 0, agrees: the encoder "
        "states and the step are right, so the free run's first input differs (the loop feeds "
        "its own start value, not start)"
    ) in msg


def test_a_new_decoder_rnn_fails_the_replay_at_step_0_too(lstm: Net) -> None:
    msg = caught(
        lstm.train, pair(lstm, "new_rnn"), encoder_inputs(lstm),
        decoder_inputs=decoder_inputs(lstm),
    )  # fmt: skip
    free = msg.split("teacher-forced replay:")[0]
    assert (
        "the teacher-forced replay fails at step 0 too: the encoder states or the step model "
        "differ, not the start value"
    ) in free


def test_correct_pair_passes_both_checks_with_steps_and_decoder_inputs(
    lstm: Net, open_train: keras.Model
) -> None:
    assert_inference_matches_training(
        open_train, pair(lstm), encoder_inputs(lstm), decoder_inputs=decoder_inputs(lstm),
        steps=DEC_STEPS,
    )  # fmt: skip


def test_step_hint_says_what_the_replay_measured() -> None:
    unknown = step_hint(2, teacher_forced=False)
    assert unknown == step_hint(2, teacher_forced=False, replay=None)
    assert "what is fed back differs" in unknown and "the state carried" in unknown
    feedback = step_hint(2, teacher_forced=False, replay=True)
    assert feedback.startswith(
        "steps 0-1 agree, step 2 is the first that differs, but the teacher-forced replay agrees"
    )
    assert "so the feedback is what differs" in feedback and "state carried" not in feedback
    step = step_hint(2, teacher_forced=False, replay=False)
    assert step.startswith(
        "steps 0-1 agree, step 2 is the first that differs, and the teacher-forced replay fails"
    )
    assert "the step function itself differs" in step and "feedback is what" not in step
    # The replay's own hint does not depend on what it measured.
    assert step_hint(2, teacher_forced=True, replay=False) == step_hint(2, teacher_forced=True)
    assert "its own start value" in step_hint(0, teacher_forced=False, replay=True)
    assert "not the start value" in step_hint(0, teacher_forced=False, replay=False)
