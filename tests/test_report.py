"""Failure pictures, pytest-html pictures and the session summary line.

The renderer is tested on payloads built by hand (no Keras). Each assertion
family is then made to fail once on a small real model, in-process, with a
report folder set: the picture is written, readable and not blank, and the
message names it. Two pytester sessions run a user file end to end with
exact summary counts: under ``-n 2`` (a subprocess) with the option,
pytest-html and ``--rnn-seed``, records and pictures shipped to the
controller and the seed to the workers; serial
(in-process: TensorFlow is loaded already) without the option: no picture
line, no folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("matplotlib")

import keras
from matplotlib.figure import Figure
from matplotlib.image import imread
from models import assert_ran_on_workers

import pytest_rnn
from pytest_rnn import _config, _report
from pytest_rnn._core.compare import Tolerance, compare
from pytest_rnn._errors import (
    DependencePicture,
    LossPicture,
    RNNAssertionError,
    StepComparison,
    StepPicture,
)
from pytest_rnn._report import pictures
from pytest_rnn._report import records as records_module
from pytest_rnn._report.dependence import _outline
from pytest_rnn._report.steps import _step_view
from pytest_rnn._seq2seq import TeacherForcingGap

pytest_plugins = ["pytester"]


def check_png(path: str | Path, min_width: int = 500, min_height: int = 300) -> np.ndarray:
    """The PNG exists, is small, has a sane size and is not blank; returns its pixels."""
    path = Path(path)
    assert path.is_file(), path
    assert path.stat().st_size < 200_000, f"{path} is {path.stat().st_size} bytes"
    pixels = imread(path)
    height, width = pixels.shape[:2]
    assert width >= min_width and height >= min_height, (width, height)
    rgb = (pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3)
    colours = np.unique(rgb, axis=0)
    assert len(colours) > 20, f"only {len(colours)} colours"
    assert rgb.std() > 10
    for name in ("red", "green", "blue"):  # the marks are drawn, not only text
        assert has_colour(rgb, name), f"no {name} in {path.name}"
    return pixels


def has_colour(rgb: np.ndarray, name: str) -> bool:
    r, g, b = (rgb[:, i].astype(int) for i in range(3))
    strong = {
        "red": (r > 180) & (g < 90) & (b < 90),
        "green": (g > 130) & (r < 90) & (b < 90),
        "blue": (b > 130) & (r < 90) & (g < 150),
    }[name]
    return int(strong.sum()) > 30


@pytest.fixture
def report_dir(tmp_path: Path) -> Iterator[Path]:
    """``--rnn-report-dir`` set for one test, and a fresh picture count."""
    saved = _config.settings.report_dir, dict(_report.recorder.written)
    _config.settings.report_dir = str(tmp_path)
    _report.recorder.written.clear()
    try:
        yield tmp_path
    finally:
        _config.settings.report_dir = saved[0]
        _report.recorder.written.clear()
        _report.recorder.written.update(saved[1])


def picture_of(error: pytest.ExceptionInfo[RNNAssertionError], folder: Path) -> Path:
    """The last message line names the picture in ``folder``; returns it."""
    last = str(error.value).splitlines()[-1]
    assert last.startswith("picture: "), last
    path = Path(last[len("picture: ") :])
    assert path.parent == folder and path.suffix == ".png"
    assert error.value.picture_path == str(path)
    return path


# --- the renderer on hand-made payloads -----------------------------------------------

RNG = np.random.default_rng(0)
FULL = RNG.normal(size=(3, 12, 2)).astype("float32")
STREAMED = FULL.copy()
STREAMED[1, 5:, 1] += np.linspace(0.3, 0.01, 7).astype("float32")


def stateful_payload(steps: list[int] | None = None) -> StepPicture:
    full, streamed = (FULL, STREAMED) if steps is None else (FULL[:, steps], STREAMED[:, steps])
    return StepPicture(
        "stateful",
        "Streamed output differs from the full-sequence output.",
        (
            StepComparison(
                "streamed vs full", "streamed", "full", streamed, full, 1.3e-6, 1e-5, steps
            ),
        ),
        chunk_ends=(5, 6, 12),
        context="model 'seq' (LSTM(4) -> Dense(2)), batch 3, 12 steps, chunks [5, 1, 6]",
    )


def labels_payload(steps: int = 6) -> DependencePicture:
    counts = np.zeros((steps, steps), dtype=int)
    counts[:, -1] = 16
    rows, cols = np.indices(counts.shape)
    allowed = cols == rows
    return DependencePicture(
        "Labels depend on input steps the model cannot see.", counts, 16, allowed,
        (counts > 0) & ~allowed, "label step", "input step", "the model's receptive field",
    )  # fmt: skip


PAYLOADS = {
    "stateful": stateful_payload(),
    "stateful-last-step": stateful_payload([4, 5, 11]),
    "seq2seq-two-checks": StepPicture(
        "seq2seq",
        "The inference does not reproduce the training model (2 checks fail).",
        (
            StepComparison("free-running", "inference", "training", STREAMED, FULL, 1e-6, 1e-5),
            StepComparison("replay", "inference", "training", STREAMED[::-1], FULL, 1e-6, 1e-5),
        ),
        step_name="decoder step",
    ),
    "labels": labels_payload(),
    "windows": DependencePicture(
        "Windows show their targets to their inputs",
        np.tri(8, 12, 3, dtype=int) - np.tri(8, 12, -1, dtype=int),
        1,
        np.tri(8, 12, 3, dtype=bool),
        np.eye(8, 12, 3, dtype=bool),
        "window",
        "series position",
        "allowed for inputs: before the target",
        marks=np.eye(8, 12, 3, dtype=bool),
        marks_name="target reads it",
    ),
    "fit": LossPicture(
        "One fit(epochs=3) and 3 x fit(epochs=1) train differently.",
        {"fit(epochs=3)": [0.5, 0.4, 0.3], "3 x fit(epochs=1)": [0.5, 0.45, 0.41]},
        first_epoch=1,
        variables=(
            ("layer 'lstm' 'kernel' [seq/lstm/kernel]", 0.02),
            ("optimizer iterations", 1.0),
        ),
        rtol=1.3e-6,
        atol=1e-5,
    ),
}


@pytest.mark.parametrize("kind", list(PAYLOADS))
def test_every_kind_renders_a_readable_picture(kind: str, tmp_path: Path) -> None:
    path = tmp_path / f"{kind}.png"
    _report.save(PAYLOADS[kind], str(path))
    check_png(path)


def test_a_fit_picture_without_history_shows_the_variables(tmp_path: Path) -> None:
    payload = LossPicture(
        "train() does not reproduce", {"run 1": [], "run 2": []}, variables=(("w", 0.5),)
    )
    _report.save(payload, str(tmp_path / "p.png"))
    pixels = imread(tmp_path / "p.png")
    assert pixels.shape[0] >= 150 and has_colour((pixels[..., :3] * 255).reshape(-1, 3), "red")


def test_render_refuses_what_is_not_a_payload() -> None:
    with pytest.raises(TypeError, match="not a picture payload: str"):
        _report.render("stateful")  # type: ignore[arg-type]


def test_step_view_finds_the_worst_element_and_the_per_step_greatest_difference() -> None:
    view = _step_view(PAYLOADS["stateful"].comparisons[0])
    assert (view.sample, view.feature) == (1, (1,))
    np.testing.assert_allclose(view.diff[:5], 0.0)
    np.testing.assert_allclose(view.diff[5], 0.3, rtol=1e-6)
    assert view.bad.tolist() == [False] * 5 + [True] * 7
    np.testing.assert_array_equal(view.actual, STREAMED[1, :, 1])
    np.testing.assert_array_equal(view.x, np.arange(12))


def test_step_view_leaves_masked_steps_out_and_maps_chunk_ends_to_steps() -> None:
    valid = np.ones((3, 3), dtype=bool)
    valid[1, 1:] = False  # the differing sample's late steps are padding
    comparison = StepComparison(
        "", "a", "e", STREAMED[:, [4, 5, 11]], FULL[:, [4, 5, 11]], 1e-6, 1e-5, [4, 5, 11], valid
    )
    view = _step_view(comparison)
    assert not view.bad.any()
    np.testing.assert_array_equal(view.x, [4, 5, 11])


def test_step_view_marks_what_the_message_calls_a_mismatch() -> None:
    # One closeness rule: a matching +inf or NaN agrees (as compare() says), a lone
    # inf or NaN and a plain difference do not.
    actual = np.array([[[np.inf], [np.nan], [1.0], [np.inf], [2.0]]])
    expected = np.array([[[np.inf], [np.nan], [1.0], [1.0], [1.5]]])
    view = _step_view(StepComparison("", "a", "e", actual, expected, 1e-6, 1e-5))
    assert view.bad.tolist() == [False, False, False, True, True]
    tolerance = Tolerance(1e-6, 1e-5)
    steps_compare_flags = [
        compare(actual[:, t], expected[:, t], tolerance) is not None for t in range(5)
    ]
    assert steps_compare_flags == view.bad.tolist()


def test_outline_surrounds_the_region() -> None:
    square = _outline(np.ones((2, 2), dtype=bool))
    assert len(square) == 8  # two unit edges per side
    diagonal = _outline(np.eye(3, dtype=bool))
    assert len(diagonal) == 12  # every cell stands alone


def test_teacher_forcing_gap_plots_itself(tmp_path: Path) -> None:
    gap = TeacherForcingGap(
        teacher_forced_loss=0.045,
        free_running_loss=0.16,
        teacher_forced_per_step=np.full(10, 0.045),
        free_running_per_step=np.linspace(0.02, 0.3, 10),
        steps=10,
        wiring_consistent=True,
    )
    pyplot_before = "matplotlib.pyplot" in sys.modules
    figure = gap.plot(tmp_path / "gap.png")
    assert isinstance(figure, Figure)
    ax = figure.axes[0]
    assert ax.get_xlabel() == "decoder step"
    assert "Exposure bias" in ax.get_title(loc="left")
    assert [len(line.get_xdata()) for line in ax.get_lines()] == [10, 10]
    pixels = imread(tmp_path / "gap.png")
    assert pixels.shape[1] >= 700 and pixels[..., :3].std() > 0.05
    assert isinstance(gap.plot(), Figure)  # no path: nothing written, the figure returned
    assert ("matplotlib.pyplot" in sys.modules) == pyplot_before


# --- the wrapper: records, picture lines, no matplotlib --------------------------------


@_report.recorded
def fails_with(picture: object) -> None:
    raise RNNAssertionError("Something differs.\n  model 'm', batch 2", picture=picture)


@_report.recorded
def outer_assertion() -> None:
    fails_with(None)


@pytest.fixture
def records() -> Iterator[_report.Recorder]:
    """The recorder, emptied; what the test records stays out of the outer session's summary."""
    yield _report.recorder
    _report.recorder.drain()


def test_outcomes_are_recorded_as_the_assertion_saw_them(records: _report.Recorder) -> None:
    records.drain()

    @_report.recorded
    def passes() -> None:
        return None

    @_report.recorded
    def bad_argument() -> None:
        raise TypeError("x must be an array")

    passes()
    with pytest.raises(RNNAssertionError):
        fails_with(None)
    with pytest.raises(TypeError):
        bad_argument()
    with pytest.raises(RNNAssertionError):
        outer_assertion()  # an assertion inside another counts once, as the outer one
    assert [(name, outcome) for name, _, outcome in records.records] == [
        ("passes", "passed"),
        ("fails_with", "failed"),
        ("bad_argument", "error"),
        ("outer_assertion", "failed"),
    ]
    assert all(seconds >= 0 for _, seconds, _ in records.records)


def test_each_raise_writes_its_own_picture(report_dir: Path) -> None:
    paths = []
    for _ in range(2):
        with pytest.raises(RNNAssertionError) as error:
            fails_with(labels_payload())
        paths.append(picture_of(error, report_dir))
        assert str(error.value).startswith("Something differs.\n  model 'm', batch 2\n")
    assert paths[0].name.endswith("test_each_raise_writes_its_own_picture-fails_with.png")
    assert paths[1].name.endswith("test_each_raise_writes_its_own_picture-fails_with-2.png")
    for path in paths:
        check_png(path)


def test_pictures_per_test_are_capped(report_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records_module, "MAX_PICTURES", 1)
    with pytest.raises(RNNAssertionError):
        fails_with(labels_payload(2))
    with pytest.raises(RNNAssertionError, match=r"picture: not written \(1 already written"):
        fails_with(labels_payload(2))
    assert len(list(report_dir.iterdir())) == 1


def test_a_failure_without_data_says_so(report_dir: Path) -> None:
    with pytest.raises(RNNAssertionError, match=r"picture: none \(this failure has no per-step"):
        fails_with(None)
    assert list(report_dir.iterdir()) == []


def test_without_the_option_no_file_and_no_picture_line(tmp_path: Path) -> None:
    assert _config.settings.report_dir is None
    with pytest.raises(RNNAssertionError) as error:
        fails_with(labels_payload())
    assert "picture" not in str(error.value)
    assert error.value.picture is not None and error.value.picture_path is None


def test_without_matplotlib_nothing_fails_and_the_message_says_how(
    report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(RNNAssertionError) as error:
        fails_with(labels_payload())
    assert str(error.value).splitlines()[-1] == (
        'picture: not written (pip install "pytest-rnn[plot]")'
    )
    assert list(report_dir.iterdir()) == []


def test_a_broken_renderer_never_hides_the_failure(
    report_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(picture: object) -> None:
        raise ValueError("cannot draw")

    monkeypatch.setattr(pictures, "render", broken)
    with pytest.raises(
        RNNAssertionError,
        match=r"Something differs(.|\n)*picture: not written \(ValueError: cannot draw\)",
    ):
        fails_with(labels_payload())


def test_the_summary_line_counts_and_names_the_slowest() -> None:
    tally = _report.Tally()
    assert tally.line() is None
    tally.add([["assert_a", 0.5, "passed"], ["assert_b", 2.25, "failed"]], "t.py::test_1", 1)
    tally.add([["assert_a", 0.1, "error"]], "t.py::test_2")
    assert tally.line() == (
        "pytest-rnn: 3 assertions ran: 1 passed, 1 failed, 1 error; slowest assert_b 2.25 s "
        "in t.py::test_1; 1 failure picture written"
    )


# --- every assertion family, failing on a small real model -------------------------------


def conv_model(padding: str) -> keras.Model:
    return keras.Sequential(
        [
            keras.Input((None, 2)),
            keras.layers.Conv1D(3, 3, padding=padding),
            keras.layers.LSTM(4, return_sequences=True),
            keras.layers.Dense(1),
        ]
    )


X = np.random.default_rng(1).normal(size=(2, 8, 2)).astype("float32")


def test_stateful_failure_writes_its_picture(report_dir: Path) -> None:
    with pytest.raises(RNNAssertionError, match="Streamed output differs") as error:
        pytest_rnn.assert_stateful_equals_batch(conv_model("same"), X, chunks=[3, 5])
    check_png(picture_of(error, report_dir))
    comparison = error.value.picture.comparisons[0]
    assert comparison.actual.shape == comparison.expected.shape == (2, 8, 1)
    assert error.value.picture.chunk_ends == (3, 8)


def test_model_causal_failure_writes_its_picture(report_dir: Path) -> None:
    with pytest.raises(RNNAssertionError, match="reads the future") as error:
        pytest_rnn.assert_model_causal(conv_model("same"), X)
    check_png(picture_of(error, report_dir))
    picture = error.value.picture
    assert picture.bad.any() and not (picture.bad & picture.allowed).any()


def test_labels_and_windows_failures_write_their_pictures(report_dir: Path) -> None:
    def from_the_last_step(x: np.ndarray) -> np.ndarray:
        return np.repeat(x[:, -1:, :1] > 0, x.shape[1], axis=1).astype("float32")

    with pytest.raises(RNNAssertionError, match="Labels depend on later") as error:
        pytest_rnn.assert_labels_causal(from_the_last_step, X)
    check_png(picture_of(error, report_dir))
    assert error.value.picture.bad[:-1, -1].all()

    def off_by_one(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = len(s) - 4
        return np.stack([s[i : i + 4] for i in range(n)]), s[3 : 3 + n]

    with pytest.raises(RNNAssertionError, match="Windows show their targets") as error:
        pytest_rnn.assert_windows_causal(off_by_one, np.sin(np.arange(20.0)))
    check_png(picture_of(error, report_dir))
    picture = error.value.picture
    assert picture.bad.sum() == 16 and (picture.bad <= picture.marks).all()


def test_seq2seq_failure_writes_its_picture(report_dir: Path) -> None:
    enc_in, dec_in = keras.Input((5, 2)), keras.Input((4, 1))
    _, h, c = keras.layers.LSTM(4, return_state=True)(enc_in)
    seq = keras.layers.LSTM(4, return_sequences=True)(dec_in, initial_state=[h, c])
    train = keras.Model([enc_in, dec_in], keras.layers.Dense(1)(seq))
    enc = np.random.default_rng(2).normal(size=(3, 5, 2)).astype("float32")

    def start_fed_every_step(e: np.ndarray, start: np.ndarray) -> np.ndarray:
        return keras.ops.convert_to_numpy(train([e, np.repeat(start, 4, axis=1)]))

    with pytest.raises(RNNAssertionError, match="does not reproduce the training") as error:
        pytest_rnn.assert_inference_matches_training(train, start_fed_every_step, enc)
    check_png(picture_of(error, report_dir))
    assert error.value.picture.step_name == "decoder step"


def test_fit_failures_write_their_pictures(report_dir: Path) -> None:
    x = np.random.default_rng(3).normal(size=(8, 3, 1)).astype("float32")
    y = x.sum(axis=1)

    def make_model() -> keras.Model:
        model = keras.Sequential([keras.Input((3, 1)), keras.layers.LSTM(4), keras.layers.Dense(1)])
        model.compile(loss="mse", optimizer="sgd")
        return model

    schedule = keras.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 / (epoch + 1))
    with pytest.raises(RNNAssertionError, match="train differently") as error:
        pytest_rnn.assert_fit_equivalent(
            make_model, x, y, epochs=3, fit_kwargs={"callbacks": [schedule], "shuffle": False}
        )
    check_png(picture_of(error, report_dir))
    picture = error.value.picture
    assert list(picture.losses) == ["fit(epochs=3)", "3 x fit(epochs=1)"]
    # the loop's schedule restarts at 0.1 in epoch 2; one batch an epoch: losses part in epoch 3
    assert picture.first_epoch == 2
    assert "first epoch whose loss differs: epoch 3/3" in str(error.value)

    def unseeded() -> keras.Model:
        model = make_model()
        noise = 0.1 * np.random.default_rng().standard_normal(y.shape).astype(y.dtype)
        model.fit(x, y + noise, epochs=2, batch_size=2, shuffle=False, verbose=0)
        return model

    with pytest.raises(RNNAssertionError, match="does not reproduce") as error:
        pytest_rnn.assert_training_reproducible(unseeded)
    check_png(picture_of(error, report_dir))
    assert list(error.value.picture.losses) == ["run 1", "run 2"]
    assert all(len(v) == 2 for v in error.value.picture.losses.values())


LIGHT = """
import sys
import numpy as np
import pytest_rnn
from pytest_rnn import _config

def labels(x):
    return np.repeat(x[:, -1:, :1] > 0, x.shape[1], axis=1).astype("float32")

x = np.random.default_rng(0).normal(size=(2, 6, 2))
for folder in (None, sys.argv[1]):
    _config.settings.report_dir = folder
    try:
        pytest_rnn.assert_labels_causal(labels, x)
    except pytest_rnn.RNNAssertionError as error:
        last = str(error).splitlines()[-1]
        print(last.startswith("picture: "), "matplotlib" in sys.modules, "keras" in sys.modules)
"""


def test_matplotlib_is_imported_only_to_draw(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LIGHT, str(tmp_path)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False False False", "True True False"]


# --- options and ini (in-process sessions) ------------------------------------------------


@pytest.fixture
def keep_settings() -> Iterator[None]:
    saved = (_config.settings.rtol, _config.settings.atol, _config.settings.seed)
    saved_dir = _config.settings.report_dir
    yield
    _config.settings.rtol, _config.settings.atol, _config.settings.seed = saved
    _config.settings.report_dir = saved_dir


SEEN_DIR = """
from pytest_rnn import _config

def test_report_dir():
    assert _config.settings.report_dir == {expected!r}
"""


@pytest.mark.usefixtures("keep_settings")
@pytest.mark.parametrize("how", ["option", "ini"])
def test_option_and_ini_set_the_folder_and_the_header(pytester: pytest.Pytester, how: str) -> None:
    expected = str(pytester.path / "pics")
    pytester.makepyfile(SEEN_DIR.format(expected=expected))
    if how == "ini":  # relative to the ini file's folder, wherever pytest is started
        pytester.makeini("[pytest]\nrnn_report_dir = pics\n")
        (pytester.path / "sub").mkdir()
        os.chdir(pytester.path / "sub")
        result = pytester.runpytest_inprocess(str(pytester.path))
    else:
        result = pytester.runpytest_inprocess("--rnn-report-dir", "pics")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines([f"pytest-rnn: seed=0 *, failure pictures in {expected}"])
    assert (pytester.path / "pics").is_dir()
    assert _config.settings.report_dir is None  # restored when the session ends


@pytest.mark.usefixtures("keep_settings")
def test_a_file_as_report_dir_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_never_runs():\n    raise AssertionError")
    (pytester.path / "taken").write_text("a file")
    result = pytester.runpytest_inprocess("--rnn-report-dir", "taken")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--rnn-report-dir (ini rnn_report_dir) must be a folder*taken*"])


# --- end to end (subprocess: TensorFlow) -----------------------------------------------------

USER_FILE = """
import os

os.environ["KERAS_BACKEND"] = "tensorflow"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import keras
import numpy as np
import pytest

import pytest_rnn

X = np.random.default_rng(0).normal(size=(2, 6, 2)).astype("float32")


def model(broken):
    front = [keras.layers.Conv1D(2, 3, padding="same", name="conv1d")] if broken else []
    return keras.Sequential(
        [keras.Input((None, 2)), *front, keras.layers.LSTM(4, return_sequences=True)]
    )


def last_step_labels(x):
    return np.repeat(x[:, -1:, :1] > 0, x.shape[1], axis=1).astype("float32")


def test_streams():
    pytest_rnn.assert_stateful_equals_batch(model(False), X)


def test_broken_streams():
    pytest_rnn.assert_stateful_equals_batch(model(True), X, chunks=[2, 4])


def test_expected_failures_pass():
    for _ in range(2):
        with pytest.raises(pytest_rnn.RNNAssertionError) as error:
            pytest_rnn.assert_labels_causal(last_step_labels, X)
    assert ("picture:" in str(error.value)) == PICTURES


def test_labels_fail():
    pytest_rnn.assert_labels_causal(last_step_labels, X)


def test_bad_argument():
    pytest_rnn.assert_labels_causal(last_step_labels, X, horizon=-1)


def test_no_assertion():
    pass
"""

# The seed reaches the workers (and the streaming failure's message survives them).
SEED_FILE = """
import numpy as np


def test_seed_reaches_worker(rnn_seed):
    assert rnn_seed == 7
    assert np.random.rand() == np.random.RandomState(7).rand()
"""

SUMMARY = (
    "pytest-rnn: 6 assertions ran: 1 passed, 4 failed, 1 error; "
    "slowest assert_stateful_equals_batch * s in test_user.py::test_*streams"
)


def test_pictures_html_seed_and_summary_under_xdist(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_FILE.replace("PICTURES", "True"), test_seed=SEED_FILE)
    args = ["-n", "2", "--rnn-seed", "7", "--rnn-report-dir", "pics", "--html", "report.html"]
    result = pytester.runpytest_subprocess(*args, "--self-contained-html")
    assert_ran_on_workers(result)
    result.stdout.fnmatch_lines(["pytest-rnn: seed=7 (--rnn-seed), tolerances by dtype, *"])
    result.assert_outcomes(passed=4, failed=3)
    result.stdout.fnmatch_lines(["FAILED test_user.py::test_broken_streams - *"])
    result.stdout.fnmatch_lines(
        [
            "E * pytest_rnn.RNNAssertionError: Streamed output differs from the full-sequence output.",
            "E *first mismatch: step *, sample *",
            "E *first layer that differs: 'conv1d'*",
        ]
    )
    assert "FAILED test_user.py::test_streams" not in result.stdout.str()
    result.stdout.fnmatch_lines([SUMMARY + "; 4 failure pictures written"])
    pics = pytester.path / "pics"
    names = sorted(p.name for p in pics.iterdir())
    assert names == [
        "test_user.py_test_broken_streams-assert_stateful_equals_batch.png",
        "test_user.py_test_expected_failures_pass-assert_labels_causal-2.png",
        "test_user.py_test_expected_failures_pass-assert_labels_causal.png",
        "test_user.py_test_labels_fail-assert_labels_causal.png",
    ]
    for name in names:
        check_png(pics / name)
    broken = pics / "test_user.py_test_broken_streams-assert_stateful_equals_batch.png"
    result.stdout.fnmatch_lines([f"E * picture: {broken}"])
    html = (pytester.path / "report.html").read_text()
    images = re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]+", html)
    # the failed tests' pictures only: a failure caught by pytest.raises is not the test's failure
    assert len(images) == 2
    assert "test_user.py_test_labels_fail-assert_labels_causal.png" in html
    assert "test_user.py_test_expected_failures_pass-assert_labels_causal.png" not in html


@pytest.mark.usefixtures("keep_settings")
def test_summary_serial_without_pictures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_FILE.replace("PICTURES", "False"))
    result = pytester.runpytest_inprocess()  # TensorFlow is loaded here already
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines([SUMMARY])
    assert "failure picture" not in result.stdout.str()
    assert "picture:" not in result.stdout.str()
    assert not (pytester.path / "pics").exists()


def test_no_summary_when_no_rnn_assertion_ran(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_plain():\n    assert 1")
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=1)
    assert "ran:" not in result.stdout.str()


QUIET_FILE = """
from pytest_rnn import RNNAssertionError, _report


@_report.recorded
def assert_passes():
    return None


@_report.recorded
def assert_fails():
    raise RNNAssertionError("differs")


def test_assertions_ran():
    assert_passes()
    try:
        assert_fails()
    except RNNAssertionError:
        pass
"""


@pytest.mark.parametrize(
    ("args", "printed"),
    [((), True), (("-q",), True), (("-qq",), False), (("-qqq",), False)],
    ids=["default", "q", "qq", "qqq"],
)
def test_summary_line_follows_verbosity(
    pytester: pytest.Pytester, args: tuple[str, ...], printed: bool
) -> None:
    pytester.makepyfile(test_quiet=QUIET_FILE)
    result = pytester.runpytest_inprocess(*args)
    assert result.ret == pytest.ExitCode.OK  # -qq prints no outcome counts to parse
    line = "pytest-rnn: 2 assertions ran: 1 passed, 1 failed; slowest assert_* s in *"
    if printed:
        result.stdout.fnmatch_lines([line])
    else:
        result.stdout.no_fnmatch_line(line)
        assert "assertions ran" not in result.stdout.str()
