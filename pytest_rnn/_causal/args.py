"""What every causal check reads from its arguments before it measures anything.

:class:`_Probe` is the argument tail the four public functions share
(``trials, seed, rtol, atol``), checked once by :func:`_probe`; it resolves the
"changed" tolerance per dtype and seeds the replacements. :func:`_check_sequences`
is the family's check of ``x`` (finite, varied), with the family's own
sentence for NaN (:data:`_FINITE`, also used for ``series``). Nothing here
imports the rest of the package.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from pytest_rnn import _keras as K
from pytest_rnn._core import compare as _compare
from pytest_rnn._core import validate as _validate
from pytest_rnn._core.validate import Batch

#: This family's sentence for NaN in ``x`` or ``series``: a :func:`_validate.numeric` template.
_FINITE = (
    "{name} contains NaN or infinity (first at index {index}); dependence is measured "
    "by comparing outputs, which NaN makes meaningless: pass finite values"
)


@dataclass(frozen=True)
class _Probe:
    """How a check measures: replacements per step, their seed, the "changed" tolerance.

    Attributes:
        trials: replacements per input step (or series position), >= 1.
        seed: seed of the replacements, already resolved (``None`` became the session's).
        rtol: the user's relative tolerance, or ``None`` for the default by dtype.
        atol: the user's absolute tolerance (given with ``rtol``, or neither).
    """

    trials: int
    seed: int
    rtol: float | None = None
    atol: float | None = None

    def tolerance(self, dtype: Any) -> _compare.Tolerance:
        """The tolerance for "changed" on data of ``dtype`` (:func:`resolve_tolerance`)."""
        return _compare.resolve_tolerance(self.rtol, self.atol, dtype)

    def output_tolerance(self, dtype: Any) -> _compare.Tolerance:
        """The tolerance for "changed" on outputs a model computed (:func:`K.output_tolerance`)."""
        return K.output_tolerance(self.rtol, self.atol, dtype)

    def rng(self) -> np.random.Generator:
        """A fresh generator of the replacements, from :attr:`seed`."""
        return np.random.default_rng(self.seed)


def _probe(trials: Any, seed: Any, rtol: Any, atol: Any) -> _Probe:
    """The checked argument tail: ``trials >= 1`` and the seed (``None``: the session's).

    ``rtol`` and ``atol`` are checked where they are first resolved, as before.

    Raises:
        TypeError: ``trials`` or ``seed`` is not an int.
        ValueError: ``trials < 1``, or the seed is outside ``[0, 2**32)``.
    """
    return _Probe(_validate.check_int(trials, "trials", 1), _validate.check_seed(seed), rtol, atol)


def _check_sequences(x: Any, arg: str = "x") -> Batch:
    """``x`` as :func:`_validate.sequences` checks it, and varied enough to measure dependence."""
    batch = _validate.sequences(
        x, arg, finite=_FINITE, empty="{arg} has zero {what} (shape {shape}): nothing to measure"
    )
    pools = [leaf.reshape(batch.batch * batch.steps, -1) for leaf in batch.leaves]
    if all((pool == pool[:1]).all() for pool in pools):
        raise ValueError(
            f"{arg} has the same values at every step of every sample, so replacing a step "
            "with another changes nothing and dependence cannot be measured: pass varied "
            "data (real or random inputs)"
        )
    return batch


def _name_of(fn: Any) -> str:
    """How messages name the user's function: its ``__name__``, else its type's."""
    return getattr(fn, "__name__", None) or type(fn).__name__
