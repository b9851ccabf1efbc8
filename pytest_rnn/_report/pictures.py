"""One failure picture payload drawn, or written as a PNG."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_rnn._errors import DependencePicture, LossPicture, Picture, StepPicture
from pytest_rnn._report.canvas import write_png
from pytest_rnn._report.dependence import _dependence
from pytest_rnn._report.losses import _losses
from pytest_rnn._report.steps import _steps

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def save(picture: Picture, path: str) -> None:
    """Render ``picture`` and write it to ``path`` as a PNG.

    Raises:
        ImportError: matplotlib is not installed.
    """
    write_png(render(picture), path)


def render(picture: Picture) -> Figure:
    """The figure for one failure picture payload.

    Raises:
        ImportError: matplotlib is not installed.
        TypeError: ``picture`` is not a picture payload.
    """
    if isinstance(picture, StepPicture):
        return _steps(picture)
    if isinstance(picture, DependencePicture):
        return _dependence(picture)
    if isinstance(picture, LossPicture):
        return _losses(picture)
    raise TypeError(f"not a picture payload: {type(picture).__name__}")
