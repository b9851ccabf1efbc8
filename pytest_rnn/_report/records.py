"""Assertion records: the wrapper every public assertion wears, and the session's tally."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

from pytest_rnn import _config
from pytest_rnn._core.text import plural
from pytest_rnn._errors import RNNAssertionError
from pytest_rnn._report import pictures

#: What a message says when matplotlib is missing.
INSTALL_HINT = 'pip install "pytest-rnn[plot]"'

#: Pictures written per test and assertion; later failures of the same pair
#: (a Hypothesis search can raise hundreds of times) only name the cap.
MAX_PICTURES = 10

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class Recorder:
    """What the assertions of the running test did: records and pictures since the last drain.

    The plugin sets :attr:`enabled` and :attr:`test_id` and drains it once per
    test phase; outside pytest nothing is kept.
    """

    enabled: bool = False
    test_id: str | None = None
    records: list[tuple[str, float, str]] = field(default_factory=list)
    pictures: list[str] = field(default_factory=list)
    depth: int = 0
    written: dict[str, int] = field(default_factory=dict)

    def drain(self) -> tuple[list[tuple[str, float, str]], list[str]]:
        """The records and pictures since the last drain; both lists start empty again."""
        out = (self.records, self.pictures)
        self.records, self.pictures = [], []
        return out


recorder = Recorder()


def recorded(fn: F) -> F:
    """Wrap a public assertion: time it, record its outcome, write its failure picture.

    Outcomes are the assertion's own: ``"passed"``, ``"failed"`` (it raised
    :class:`RNNAssertionError`, even inside ``pytest.raises``) or ``"error"``
    (it raised anything else: a bad argument, a crash in the user's code).
    An assertion called by another is recorded once, as the outer one.
    """
    name = fn.__name__

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        if recorder.depth:
            return fn(*args, **kwargs)
        recorder.depth += 1
        start = time.perf_counter()
        outcome = "error"
        try:
            result = fn(*args, **kwargs)
            outcome = "passed"
            return result
        except RNNAssertionError as error:
            outcome = "failed"
            if _config.settings.report_dir is not None:
                _attach_picture(error, name, _config.settings.report_dir)
            raise
        finally:
            recorder.depth -= 1
            if recorder.enabled:
                recorder.records.append((name, time.perf_counter() - start, outcome))

    return cast(F, wrapper)


def _file_stem(test_id: str | None, name: str) -> str:
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", test_id or "session").strip("_.") or "session"
    if len(base) > 120:  # keep names short and still unique
        base = f"{base[:100]}_{zlib.crc32(base.encode()):08x}"
    return f"{base}-{name}"


def _attach_picture(error: RNNAssertionError, name: str, folder: str) -> None:
    """Write the picture and name it in the message (or say why it was not written)."""
    if error.picture is None:
        _append(error, "picture: none (this failure has no per-step data to draw)")
        return
    stem = _file_stem(recorder.test_id, name)
    n = recorder.written.get(stem, 0) + 1
    if n > MAX_PICTURES:
        line = f"picture: not written ({MAX_PICTURES} already written for this test and assertion)"
    else:
        path = os.path.join(folder, f"{stem}.png" if n == 1 else f"{stem}-{n}.png")
        picture = error.picture
        lines = str(error.args[0]).splitlines() if error.args else []
        if not picture.context and len(lines) > 1:
            picture = dataclasses.replace(picture, context=lines[1].strip())
        try:
            pictures.save(picture, path)
        except ImportError:
            line = f"picture: not written ({INSTALL_HINT})"
        except Exception as exc:  # a picture must never hide the failure itself
            line = f"picture: not written ({type(exc).__name__}: {exc})"
        else:
            recorder.written[stem] = n
            error.picture_path = path
            recorder.pictures.append(path)
            line = f"picture: {path}"
    _append(error, line)


def _append(error: RNNAssertionError, line: str) -> None:
    message = str(error.args[0]) if error.args else ""
    error.args = (f"{message}\n{line}", *error.args[1:])


@dataclass
class Tally:
    """The session's assertion records, summed for the terminal summary line."""

    counts: dict[str, int] = field(default_factory=dict)
    slowest: tuple[float, str, str] | None = None
    pictures: int = 0

    def add(self, records: Sequence[Sequence[Any]], test_id: str, pictures: int = 0) -> None:
        """Count ``(name, seconds, outcome)`` records of one test phase."""
        self.pictures += pictures
        for name, seconds, outcome in records:
            self.counts[outcome] = self.counts.get(outcome, 0) + 1
            if self.slowest is None or float(seconds) > self.slowest[0]:
                self.slowest = (float(seconds), str(name), test_id)

    def line(self) -> str | None:
        """``pytest-rnn: 7 assertions ran: 5 passed, 2 failed; slowest ...``; ``None`` if none ran."""
        total = sum(self.counts.values())
        if not total or self.slowest is None:
            return None
        parts = [f"{self.counts.get('passed', 0)} passed", f"{self.counts.get('failed', 0)} failed"]
        if self.counts.get("error"):
            parts.append(plural(self.counts["error"], "error"))
        seconds, name, test_id = self.slowest
        text = (
            f"pytest-rnn: {plural(total, 'assertion')} ran: {', '.join(parts)}; "
            f"slowest {name} {seconds:.2f} s in {test_id}"
        )
        if self.pictures:
            text += f"; {plural(self.pictures, 'failure picture')} written"
        return text
