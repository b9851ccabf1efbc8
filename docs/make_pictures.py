"""Regenerate the README's failure pictures from the examples.

Runs the example tests that catch each seed's bug with ``--rnn-report-dir``
pointed at a temporary folder, then copies one picture of each kind here, and
draws ``TeacherForcingGap.plot()`` for seed 000's loop (gap.png):

    python docs/make_pictures.py

The same pictures, under their test ids, come from
``pytest examples --rnn-report-dir DIR`` (with ``pytest-rnn[plot]`` installed).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: README picture -> (example test, the assertion whose picture it is).
PICTURES = {
    "stateful.png": (
        "examples/test_stateful_streaming.py::test_a_same_padded_convolution_cannot_stream",
        "assert_stateful_equals_batch",
    ),
    "seq2seq.png": (
        "examples/test_seq2seq_inference.py::test_answers_fix_feeds_the_wrong_tensor_back",
        "assert_inference_matches_training",
    ),
    "causal.png": (
        "examples/test_causal_labels.py::test_seed001_generator_is_caught_with_its_model",
        "assert_labels_causal",
    ),
    "fit.png": (
        "examples/test_training_reproducible.py::test_epoch_indexed_learning_rate_schedule_is_caught",
        "assert_fit_equivalent",
    ),
}


def main() -> int:
    out = HERE / "pictures"
    out.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tests = [test for test, _ in PICTURES.values()]
        args = ["-q", "-p", "no:cacheprovider", "-p", "no:xdist", "--rnn-report-dir", tmp]
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *args, *tests], cwd=ROOT, check=False
        )
        if done.returncode != 0:
            return done.returncode
        for name, (test, assertion) in PICTURES.items():
            stem = test.replace("/", "_").replace("::", "_")
            source = Path(tmp) / f"{stem}-{assertion}.png"
            shutil.copyfile(source, out / name)
            print(f"{out / name}: {source.stat().st_size // 1024} KB")
    gap_picture(out / "gap.png")
    return 0


def gap_picture(path: Path) -> None:
    """Seed 000's model trained as its example trains it, and its gap drawn."""
    sys.path.insert(0, str(ROOT / "examples"))
    import keras
    import test_seq2seq_inference as ex

    from pytest_rnn import teacher_forcing_gap

    keras.utils.set_random_seed(0)
    net = ex.Seq2Seq()
    x, y = ex.series(384, seed=0)
    net.train_model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    net.train_model.fit([x, ex.teacher_forced(y)], y, batch_size=16, epochs=3, verbose=0)
    x_valid, y_valid = ex.series(64, seed=1)
    gap = teacher_forcing_gap(
        net.train_model, net.inference_model(), x_valid, y_valid, start=ex.START
    )
    gap.plot(path)
    print(f"{path}: {path.stat().st_size // 1024} KB")


if __name__ == "__main__":
    raise SystemExit(main())
