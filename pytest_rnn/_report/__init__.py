"""Failure pictures and assertion records.

- :func:`recorded` wraps every public assertion: it times the call, records
  ``(name, seconds, outcome)`` for the session summary, and, with
  ``--rnn-report-dir``, turns the failure's :attr:`RNNAssertionError.picture`
  into a PNG whose path becomes the message's last line.
- :func:`render` draws a picture payload (:mod:`pytest_rnn._errors`) on a
  ``matplotlib.figure.Figure`` with the Agg canvas: no pyplot, no global
  state, no GUI backend. matplotlib is imported only here, only when a
  picture is drawn; it is the optional extra ``pytest-rnn[plot]``.

numpy and matplotlib are imported inside the functions that draw: assertion
modules import this module, and the plugin imports it at start-up.
"""

from __future__ import annotations

from pytest_rnn._report.canvas import write_figure as write_figure
from pytest_rnn._report.losses import gap_figure as gap_figure
from pytest_rnn._report.pictures import render as render
from pytest_rnn._report.pictures import save as save
from pytest_rnn._report.records import INSTALL_HINT as INSTALL_HINT
from pytest_rnn._report.records import MAX_PICTURES as MAX_PICTURES
from pytest_rnn._report.records import Recorder as Recorder
from pytest_rnn._report.records import Tally as Tally
from pytest_rnn._report.records import recorded as recorded
from pytest_rnn._report.records import recorder as recorder

__all__ = [
    "INSTALL_HINT",
    "MAX_PICTURES",
    "Recorder",
    "Tally",
    "gap_figure",
    "recorded",
    "recorder",
    "render",
    "save",
    "write_figure",
]
