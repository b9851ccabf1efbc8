"""What the cached-decoding check reads from its arguments before it runs the model.

:func:`check_tokens` reads ``token_ids`` (``(batch, steps)`` integers inside the
vocabulary), :func:`check_mask` reads ``padding_mask`` and :func:`check_layout`
refuses a padding layout the model's cache cannot express (left padding, or
padding between tokens, where ``call_with_cache`` takes no mask).
:func:`check_model` checks what the model itself must offer. Errors name the
argument.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core.text import plural

__all__ = ["check_generate", "check_layout", "check_mask", "check_model", "check_tokens"]


def _array(value: Any, arg: str) -> np.ndarray:
    try:
        return np.asarray(K.to_numpy(value))
    except Exception as exc:  # ragged lists, objects no library reads as an array
        raise TypeError(f"{arg} cannot be read as an array: {exc}") from exc


def check_model(lm: Any) -> K.CachedLM:
    """``lm`` as the check drives it: a CausalLM whose full pass takes ``token_ids`` and ``padding_mask``.

    Raises:
        TypeError: ``lm`` is not a KerasHub CausalLM.
        ValueError: its full pass or ``_build_cache`` needs inputs besides token ids
            and a padding mask (images, say).
    """
    K.check_causal_lm(lm, "causal_lm")
    model = K.CachedLM(lm)
    names = model.input_names()
    if names is not None and names != ["padding_mask", "token_ids"]:
        raise ValueError(
            f"causal_lm ({model.cls}) takes inputs {names}; pytest-rnn feeds a CausalLM "
            "token_ids and padding_mask only"
        )
    missing = model.missing_build_inputs()
    if missing:
        raise ValueError(
            f"causal_lm ({model.cls})._build_cache needs {', '.join(missing)}: pytest-rnn builds "
            "the empty cache from token_ids and padding_mask only"
        )
    return model


def check_tokens(token_ids: Any, model: K.CachedLM) -> np.ndarray:
    """``token_ids`` as ``(batch, steps)`` integers the model's vocabulary and positions hold.

    Raises:
        TypeError: not an array of integers.
        ValueError: not 2-D, empty, an id outside ``[0, vocabulary_size)``, or more
            steps than the backbone's ``max_sequence_length``.
    """
    if callable(token_ids) and not isinstance(token_ids, np.ndarray):
        raise TypeError("token_ids must be an array (batch, steps) of token ids, got a function")
    if token_ids is None or isinstance(token_ids, (str, bytes)):
        raise TypeError(
            f"token_ids must be an array (batch, steps) of token ids, got {type(token_ids).__name__}"
        )
    tokens = _array(token_ids, "token_ids")
    if tokens.dtype.kind not in "iu":
        hint = " (pass token_ids.astype('int32'))" if tokens.dtype.kind == "f" else ""
        raise TypeError(f"token_ids must hold integer token ids, got dtype {tokens.dtype}{hint}")
    if tokens.ndim != 2:
        raise ValueError(
            f"token_ids has shape {tokens.shape} ({tokens.ndim} dims): it must be (batch, steps)"
        )
    if tokens.shape[0] == 0 or tokens.shape[1] == 0:
        what = "samples" if tokens.shape[0] == 0 else "steps"
        raise ValueError(
            f"token_ids has 0 {what} (shape {tokens.shape}): there is nothing to decode"
        )
    vocabulary = model.vocabulary_size
    bad = (tokens < 0) | (tokens >= vocabulary if vocabulary is not None else False)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])
        limit = f"[0, {vocabulary})" if vocabulary is not None else "non-negative"
        raise ValueError(
            f"token_ids holds {int(tokens[at])} at {at}: token ids must be {limit}, the "
            f"vocabulary of {model.cls}"
        )
    longest = model.max_sequence_length
    if longest is not None and tokens.shape[1] > longest:
        raise ValueError(
            f"token_ids has {tokens.shape[1]} steps, but {model.cls} takes at most "
            f"max_sequence_length={longest}"
        )
    return tokens.astype(np.int32)


def check_mask(padding_mask: Any, tokens: np.ndarray) -> np.ndarray:
    """The ``(batch, steps)`` boolean padding mask (all True for ``None``).

    Booleans or 0/1 integers, as KerasHub preprocessors make them.

    Raises:
        TypeError: not an array of booleans or 0/1 integers.
        ValueError: another shape than ``token_ids``, or a sample without a token.
    """
    if padding_mask is None:
        return np.ones(tokens.shape, dtype=bool)
    mask = _array(padding_mask, "padding_mask")
    if mask.dtype.kind in "iu" and np.isin(mask, (0, 1)).all():
        mask = mask.astype(bool)
    if mask.dtype != np.bool_:
        raise TypeError(
            "padding_mask must be a boolean (batch, steps) mask, True at real tokens "
            f"(or 0/1 integers), got dtype {mask.dtype}"
        )
    if mask.shape != tokens.shape:
        raise ValueError(
            f"padding_mask has shape {mask.shape}, but it must be token_ids's shape {tokens.shape}"
        )
    empty = np.flatnonzero(~mask.any(axis=1))
    if empty.size:
        raise ValueError(
            f"padding_mask is False everywhere in sample {int(empty[0])}: every sample needs "
            "at least one real token"
        )
    return mask


def _not_right_padded(mask: np.ndarray) -> np.ndarray:
    """The samples whose mask is not its real tokens first, then padding only."""
    right = np.arange(mask.shape[1])[None, :] < mask.sum(axis=1)[:, None]
    return np.flatnonzero((mask != right).any(axis=1))


def check_layout(mask: np.ndarray, model: K.CachedLM, generate: bool) -> None:
    """Right padding only, unless ``call_with_cache`` takes a padding mask of its own.

    A cache written without a mask holds every position, so a valid token after
    a padded one would attend to (or carry state from) the padding, which the
    full pass leaves out.

    Raises:
        ValueError: a sample is padded on the left or between tokens and
            ``call_with_cache`` takes no ``padding_mask``, or ``generate`` is set
            (``generate_step`` reads right-padded prompts only).
    """
    wrong = _not_right_padded(mask)
    if not wrong.size:
        return
    if model.takes_mask:
        if generate:
            raise ValueError(
                f"padding_mask pads sample {int(wrong[0])} elsewhere than on the right: "
                "generate_step reads a prompt padded on the right (its loop starts after the "
                "shortest prompt), so the generation loop cannot be forced; pass generate=False"
            )
        return
    b = int(wrong[0])
    first = int(np.argmax(mask[b]))
    where = (
        f"on the left (its first real token is at position {first})"
        if first > 0
        else "between tokens (a padded position comes before a real one)"
    )
    raise ValueError(
        f"padding_mask pads sample {b} {where}: {model.cls}.call_with_cache takes no padding "
        "mask, so its cache cannot leave padded positions out and the full pass's answer at "
        f"later tokens cannot be reproduced ({plural(len(wrong), 'sample')} padded so); pad on "
        "the right, as generate() does"
    )


def check_generate(generate: Any) -> bool:
    """``generate`` as a bool.

    Raises:
        TypeError: not a bool.
    """
    if not isinstance(generate, (bool, np.bool_)):
        raise TypeError(f"generate must be True or False, got {type(generate).__name__}")
    return bool(generate)
