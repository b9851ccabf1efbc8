"""The messages assert_inference_matches_training builds from what it measured.

:func:`step_hint` says what a first differing step usually means, and, for
the free-running check, what the teacher-forced replay measured (the step
function or the feedback); :func:`_section` lays out one failing check;
:func:`_hypotheses` names the wiring bugs whose replay reproduces the
inference; :func:`_weight_hints` names layers whose weights are not
train_model's; :func:`_start_problem` a start value training did not use;
:func:`_context` what was compared.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.compare import Mismatch, Tolerance, compare, format_mismatch
from pytest_rnn._core.text import describe_values
from pytest_rnn._seq2seq.case import _Case
from pytest_rnn._seq2seq.forms import _Inference
from pytest_rnn._seq2seq.prepare import _first_step, _Run, _train

_INDENT = "    "


def step_hint(step: int, *, teacher_forced: bool, replay: bool | None = None) -> str:
    """What a first differing ``step`` usually means (pure; used in messages).

    ``teacher_forced``: the hint of the teacher-forced replay itself. For the
    free-running check, ``replay`` is what the replay measured: ``False`` it
    fails too (the step function differs from training), ``True`` it agrees
    (the step function is right, so the feedback is the suspect), ``None`` it
    did not run.
    """
    if step == 0:
        text = (
            "step 0 differs: the decoder starts from other states or another first input "
            "than in training: the encoder states (h and c swapped? another encoder output?), "
            "the start value, or a layer that is not the trained one"
        )
        if teacher_forced or replay is None:
            return text
        if replay:
            return (
                f"{text}; the teacher-forced replay, fed decoder_inputs[:, 0] at step 0, agrees: "
                "the encoder states and the step are right, so the free run's first input differs "
                "(the loop feeds its own start value, not start)"
            )
        return (
            f"{text}; the teacher-forced replay fails at step 0 too: the encoder states or the "
            "step model differ, not the start value"
        )
    agree = "step 0 agrees" if step == 1 else f"steps 0-{step - 1} agree"
    if teacher_forced:
        return (
            f"{agree}, step {step} is the first that differs: the inputs are the same ground "
            "truth, so the state carried between steps differs (re-initialised from the "
            "encoder at every step? states returned in another order?)"
        )
    if replay is None:
        return (
            f"{agree}, step {step} is the first that differs: what is fed back differs (another "
            "tensor than the output, e.g. the LSTM output instead of the Dense output; the start "
            "value again; an off-by-one shift; token ids off by one) or the state carried "
            "between steps (re-initialised from the encoder at every step?)"
        )
    if replay:
        return (
            f"{agree}, step {step} is the first that differs, but the teacher-forced replay "
            "agrees: stepped with the ground-truth decoder_inputs, the step function and the "
            "states it carries are training's, so the feedback is what differs: what is fed "
            "back (another tensor than the output, e.g. the LSTM output instead of the Dense "
            "output; the start value again), when (an off-by-one shift: the output fed one "
            "step late) or as what (argmax ids, one-hot vectors or probabilities; token ids "
            "off by one); or the feedback= passed here is not what the loop feeds back"
        )
    return (
        f"{agree}, step {step} is the first that differs, and the teacher-forced replay fails "
        "too: stepped with the ground-truth decoder_inputs, the step function itself differs "
        "from training, so fix the step before the feedback: the state carried between steps "
        "(not carried: re-initialised from the encoder at every step, or the states it was "
        "given handed back? states returned in another order?) or weights that are not "
        "train_model's"
    )


def _section(
    title: str,
    m: Mismatch,
    *,
    teacher_forced: bool,
    extra: list[str],
    replay: bool | None = None,
) -> list[str]:
    """One failing check's lines: its title, the step hint, the comparison and ``extra``."""
    lines = [f"  {title}"]
    if m.shape_error is None:
        hint = step_hint(_first_step(m), teacher_forced=teacher_forced, replay=replay)
        lines.append(_INDENT + hint)
    lines.extend(
        format_mismatch(m, actual_name="inference", expected_name="training", indent=_INDENT)
    )
    lines.extend(_INDENT + e for e in extra)
    return lines


def _hypotheses(case: _Case, run: _Run, m: Mismatch, tol: Tolerance) -> list[str]:
    """Named wiring bugs whose training-side replay reproduces the inference exactly."""
    step = _first_step(m)
    candidates: list[tuple[str, np.ndarray]] = []
    if step >= 1:
        candidates.append((
            "the inference's outputs match train_model fed with the start value at every "
            "step: the loop feeds the start value to every step instead of the previous output",
            np.repeat(case.start[:, None], case.steps, axis=1),
        ))  # fmt: skip
        if case.steps >= 2:
            candidates.append((
                "the inference's outputs match train_model fed its outputs two steps late: "
                "the feedback is shifted by one step too many",
                case.shifted(run.fed),
            ))  # fmt: skip
    elif np.any(case.start != 0):
        zero = np.concatenate([np.zeros_like(case.start[:, None]), run.fed[:, 1:]], axis=1)
        candidates.append((
            f"the inference's outputs match train_model started from 0 instead of "
            f"{describe_values(case.start)}: the inference uses its own start value",
            zero,
        ))  # fmt: skip
    if not candidates:
        return []
    outs = _train(case, [c[1] for c in candidates])
    return [
        text
        for (text, _), out in zip(candidates, outs)
        if compare(run.free, out, tol, valid=run.valid) is None
    ]


def _weight_hints(train_model: Any, models: list[Any]) -> list[str]:
    """Layers the inference uses that hold none of train_model's weights, and the reverse."""
    if not models:
        return []

    def owners(model: Any) -> dict[int, tuple[Any, Any]]:
        found: dict[int, tuple[Any, Any]] = {}
        for _, layer in K.iter_layers(model):
            for w in layer.weights:
                found.setdefault(id(w), (w, layer))
        for w in model.weights:
            found.setdefault(id(w), (w, None))
        return found

    train_w = owners(train_model)
    inf_w: dict[int, tuple[Any, Any]] = {}
    for m in models:
        inf_w.update(owners(m))

    def unmatched(
        mine: dict[int, tuple[Any, Any]], theirs: dict[int, tuple[Any, Any]]
    ) -> list[tuple[Any, Any]]:
        values = [K.to_numpy(w) for w, _ in theirs.values()]
        out = []
        for key, (w, layer) in mine.items():
            if key in theirs:
                continue
            v = K.to_numpy(w)
            if not any(o.shape == v.shape and np.array_equal(o, v) for o in values):
                out.append((w, layer))
        return out

    def layer_names(found: list[tuple[Any, Any]]) -> list[str]:
        names: list[str] = []
        for w, layer in found:
            text = (
                f"'{layer.name}' ({K.describe_layer(layer)})"
                if layer is not None
                else f"'{w.path}'"
            )
            if text not in names:
                names.append(text)
        return names

    lines = []
    foreign = layer_names(unmatched(inf_w, train_w))
    if foreign:
        lines.append(
            f"weights: the inference uses {', '.join(foreign)}, whose weights are none of "
            "train_model's: a fresh (untrained) layer in the inference path?"
        )
    unused = layer_names(unmatched(train_w, inf_w))
    if unused:
        lines.append(f"weights: not used by the inference: train_model's {', '.join(unused)}")
    return lines


def _start_problem(case: _Case, tol: Tolerance) -> list[str]:
    """A line if ``start`` is not what ``decoder_inputs`` fed train_model at step 0."""
    if case.decoder_inputs is None or case.start_source != "start":
        return []
    first = case.decoder_inputs[:, 0]
    a, e = case.start.astype(np.float64), first.astype(np.float64)
    bad = tol.exceeded(a, e)
    per_sample = bad.reshape(case.batch, -1).any(axis=1)
    if not per_sample.any():
        return []
    n = int(np.argmax(per_sample))
    return [
        f"  start: start={describe_values(case.start)} but decoder_inputs[:, 0] holds "
        f"{describe_values(first)} (what train_model is fed at step 0) in "
        f"{int(per_sample.sum())} of {case.batch} samples: the inference starts from another "
        "value than training used (leave start=None to take decoder_inputs[:, 0])",
        f"    sample {n}: start {_values(case.start[n])}, decoder_inputs[:, 0] {_values(first[n])}",
    ]


def _values(step: np.ndarray) -> str:
    """One sample's decoder input step, short: its values, and the token of a one-hot vector."""
    flat = np.asarray(step).reshape(-1)
    text = np.array2string(flat, precision=4, threshold=12, separator=", ")
    if flat.size > 1 and np.isin(flat, (0, 1)).all() and flat.sum() == 1:
        text += f" (one-hot: token {int(np.argmax(flat))})"
    return text


def _context(case: _Case, form: _Inference) -> str:
    """What was compared: the models, batch, steps, start, feedback and early stops."""
    enc_steps = case.enc.shape[1]
    text = (
        f"  train_model {K.describe_model(case.train)}; inference: {form.describe()}; "
        f"batch {case.batch}, {enc_steps} encoder steps, {case.steps} decoder steps; "
        f"start {describe_values(case.start)} ({case.start_source}); "
        f"feedback {case.feedback.describe()}"
    )
    if form.lengths is not None and (form.lengths < case.steps).any():
        early = form.lengths < case.steps
        text += (
            f"; {int(early.sum())} of {case.batch} samples stopped early (after "
            f"{_steps_list(form.lengths[early])} steps), compared on the steps they produced"
        )
    return text


def _steps_list(lengths: np.ndarray) -> str:
    """Step counts, short: ``2, 3 and 3`` (at most 6 shown)."""
    shown = [str(int(n)) for n in lengths[:6]]
    if len(lengths) > 6:
        return ", ".join(shown) + ", ..."
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]
