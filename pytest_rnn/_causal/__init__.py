"""Causality: does step t of labels, windows or a model use only what it may see?

Dependence is *measured*, never read from code: a step of the input is
replaced with the values of another (sample, step) of the same data, and the
outputs that change are the ones that depend on it. Replacing a whole step with
real data (rather than adding noise) is strong enough to flip thresholded
labels such as seed 001's ``sum > 50`` over 0/1 features, and keeps integer
inputs (token ids) valid. Every perturbed copy is stacked into a few large
calls; an unperturbed copy rides in every call, so a change is always judged
against the same call (the engine is :mod:`pytest_rnn._core.perturb`).

The files, each importing only those above it in this list: :mod:`.args`
(the shared ``trials, seed, rtol, atol`` tail as one ``_Probe``, the check of
``x``); :mod:`.measure` (``DependenceMap``, ``dependence_map``, calling label
functions and models on stacked copies, a model's receptive field);
:mod:`.labels` (``assert_labels_causal``); :mod:`.model`
(``assert_model_causal``, the suffix test and the per-layer search for the
leak); :mod:`.window_reads` (which positions each window reads) and :mod:`.windows`
(``assert_windows_causal``).
"""

from pytest_rnn._causal.labels import assert_labels_causal as assert_labels_causal
from pytest_rnn._causal.measure import DependenceMap as DependenceMap
from pytest_rnn._causal.measure import dependence_map as dependence_map
from pytest_rnn._causal.model import assert_model_causal as assert_model_causal
from pytest_rnn._causal.windows import assert_windows_causal as assert_windows_causal

__all__ = [
    "DependenceMap",
    "assert_labels_causal",
    "assert_model_causal",
    "assert_windows_causal",
    "dependence_map",
]
