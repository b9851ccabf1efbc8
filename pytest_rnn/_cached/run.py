"""The causal LM as the streaming engine calls it, and the runs a check makes.

:func:`token_batch` holds token ids and padding mask in one
:class:`~pytest_rnn._core.validate.Batch` the engine cuts into chunks.
:func:`cached_step` is ``call_with_cache`` as the engine's
:data:`~pytest_rnn._core.stream.Step` (chunk, cache, start) -> (logits, cache);
:func:`cached_run` feeds a schedule through the engine's
:class:`~pytest_rnn._core.stream.Handover`, from an empty cache.
:func:`generation` drives the model's own loop. :class:`Case` is one check as
the diagnosis needs it; :func:`call_text` names a call in messages.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import tree as _tree
from pytest_rnn._core.compare import Tolerance
from pytest_rnn._core.stream import ChunkSchedule, Handover, Step, stream
from pytest_rnn._core.validate import Batch

__all__ = [
    "Call",
    "Case",
    "cached_run",
    "cached_step",
    "call_text",
    "generation",
    "prompt_mask",
    "token_batch",
]

#: One cached call: ``(token_ids chunk, padding_mask chunk, cache, start) -> (logits, cache)``.
Call = Callable[[np.ndarray, np.ndarray, Any, int], tuple[np.ndarray, Any]]


def token_batch(tokens: np.ndarray, mask: np.ndarray) -> Batch:
    """Token ids and padding mask as one batch of sequences, cut alike."""
    tree = {"padding_mask": mask, "token_ids": tokens}
    flat = _tree.flatten(tree)
    return Batch(tree, [leaf for _, leaf in flat], [p for p, _ in flat], *tokens.shape)


def positions(a: int, b: int) -> str:
    """``position 5`` or ``positions 0-4``: the positions ``a`` to ``b - 1``."""
    return f"position {a}" if b - a == 1 else f"positions {a}-{b - 1}"


def call_text(schedule: ChunkSchedule, k: int, indexed: bool) -> str:
    """``chunk 1 (position 5, cache_update_index=5)``: call ``k`` of ``schedule`` as messages name it."""
    a, b = schedule.bounds()[k]
    index = f", cache_update_index={a}" if indexed else ""
    name = "chunk 0, the prefill" if k == 0 and len(schedule.lengths) > 1 else f"chunk {k}"
    return f"{name} ({positions(a, b)}{index})"


def cached_step(model: K.CachedLM, call: Call | None = None) -> Step:
    """``call_with_cache`` (or ``call``, a wrapper of it) as the engine calls it: logits out, flat.

    Raises (from the returned function):
        ValueError: the logits are not ``(batch, chunk steps, vocabulary)``.
    """
    run = call or model.call

    def step(chunk: Batch, cache: Any, start: int) -> tuple[list[np.ndarray], Any]:
        logits, cache = run(chunk.tree["token_ids"], chunk.tree["padding_mask"], cache, start)
        if logits.shape[:2] != (chunk.batch, chunk.steps):
            raise ValueError(
                f"{model.cls}.call_with_cache returned logits of shape {logits.shape} for "
                f"{chunk.steps} tokens at positions {start}-{start + chunk.steps - 1}: "
                f"({chunk.batch}, {chunk.steps}, vocabulary) expected"
            )
        return [logits], cache

    return step


def cached_run(
    model: K.CachedLM,
    inputs: Batch,
    schedule: ChunkSchedule,
    step: Step | None = None,
    *,
    compiled: bool = False,
) -> tuple[np.ndarray, Any]:
    """``inputs`` decoded chunk by chunk from an empty cache: the joined logits and the last cache.

    With ``compiled`` (and no ``step`` of the caller's), the whole schedule runs
    in one compiled loop where the backend and the model allow
    (:meth:`~pytest_rnn._keras.hub.CachedLM.decode`); otherwise, and for the
    diagnosis's runs that watch each call, one eager call per chunk.
    """
    tokens, mask = inputs.tree["token_ids"], inputs.tree["padding_mask"]
    handover = Handover(step or cached_step(model), lambda: model.empty_cache(tokens, mask))

    def whole(part: Batch) -> list[np.ndarray] | None:
        out = model.decode(tokens, mask, model.empty_cache(tokens, mask), schedule.bounds())
        if out is None:
            return None
        logits, handover.state = out
        return [logits]

    use = whole if compiled and step is None else None
    logits = stream(handover.feed, handover.reset, inputs, schedule, [True], whole=use)[0]
    return logits, handover.state


def prompt_mask(valid: np.ndarray, schedule: ChunkSchedule) -> np.ndarray:
    """The prompt the generation loop starts from: each sample's real tokens in the prefill.

    The prefill is the schedule's first chunk; a schedule of one chunk leaves
    the loop the last step to compute.
    """
    steps = valid.shape[1]
    prefill = schedule.lengths[0] if len(schedule.lengths) > 1 else max(1, steps - 1)
    return valid & (np.arange(steps)[None, :] < prefill)


def generation(model: K.CachedLM, inputs: Batch, schedule: ChunkSchedule) -> K.Generation:
    """The model's own ``generate_step`` from the prefill's prompt, forced to the given tokens."""
    tokens, valid = inputs.tree["token_ids"], inputs.tree["padding_mask"]
    return model.generate(tokens, prompt_mask(valid, schedule))


@dataclass(frozen=True)
class Case:
    """One check, as the diagnosis needs it: what ran, on what, and how it compared.

    Attributes:
        model: the causal LM.
        inputs: token ids and padding mask.
        schedule: where the chunks are cut (the first is the prefill).
        reference: the full pass's logits.
        cached: the chunk-by-chunk run's logits.
        tolerance: by the logits' dtype (or the user's).
        valid: ``(batch, steps)``: the real tokens, where logits are compared.
    """

    model: K.CachedLM
    inputs: Batch
    schedule: ChunkSchedule
    reference: np.ndarray
    cached: np.ndarray
    tolerance: Tolerance
    valid: np.ndarray

    @property
    def tokens(self) -> np.ndarray:
        """The token ids, ``(batch, steps)``."""
        return np.asarray(self.inputs.tree["token_ids"])

    @property
    def mask(self) -> np.ndarray:
        """The padding mask, ``(batch, steps)``."""
        return np.asarray(self.inputs.tree["padding_mask"])

    def call_text(self, k: int) -> str:
        """Call ``k`` of the schedule as messages name it."""
        return call_text(self.schedule, k, self.model.indexed)
