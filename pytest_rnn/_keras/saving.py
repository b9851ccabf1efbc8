"""Checkpoints: the default save and load of a training run and of a stream, and what they lose.

The defaults of ``assert_resume_equivalent`` are Keras's own whole-model
round trip (``model.save`` to ``model.keras``, ``keras.models.load_model``),
which restores the weights, the compile arguments and the whole optimizer.
It does not keep RNN states (zeros after the load) nor the state of the
``SeedGenerator``s that Dropout layers and RNN cells hold: those live in
``model.variables`` but not in ``model.weights``, and a loaded model starts
them again from their seed. :func:`is_rng_state` tells those variables
apart, so a comparison can leave out what training never draws from.
:func:`save_stream`/:func:`load_stream` are the defaults of
``assert_stream_resumable``: the model file plus the RNN states beside it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pytest_rnn._keras.backend import to_numpy
from pytest_rnn._keras.layers import check_model, keras_module
from pytest_rnn._keras.states import get_states, set_states

__all__ = [
    "MODEL_FILE",
    "STATES_FILE",
    "epoch_end_hook",
    "is_rng_state",
    "load_model",
    "load_stream",
    "rounded_to",
    "save_model",
    "save_stream",
    "weight_values",
]

#: The file the default saves write and the default loads read, in the checkpoint's folder.
MODEL_FILE = "model.keras"
#: Beside it, a stream's RNN states (:func:`save_stream`).
STATES_FILE = "states.npz"


def save_model(model: Any, folder: Path) -> None:
    """Keras's whole-model save: ``model.save(folder / "model.keras")``."""
    model.save(Path(folder) / MODEL_FILE)


def load_model(folder: Path) -> Any:
    """Keras's whole-model load: ``keras.models.load_model(folder / "model.keras")``."""
    return keras_module().models.load_model(Path(folder) / MODEL_FILE)


def is_rng_state(variable: Any) -> bool:
    """Whether ``variable`` is the state of a ``keras.random.SeedGenerator`` (not a weight)."""
    return str(getattr(variable, "name", "")) == "seed_generator_state"


def save_stream(model: Any, folder: Path) -> None:
    """Save ``model`` and its RNN states into ``folder``: all a stream needs to continue.

    ``model.save`` keeps the weights and the configuration (``stateful=True``
    included) but not the RNN states: a loaded model starts from zeros. The
    states of :func:`~.states.get_states` go beside it, in ``states.npz``, one
    array per layer path and state index (``"lstm:0"``, ``"lstm:1"``).
    """
    check_model(model, "model")
    save_model(model, folder)
    arrays = {
        f"{path}:{n}": value
        for path, values in get_states(model).items()
        for n, value in enumerate(values)
    }
    np.savez(Path(folder) / STATES_FILE, **arrays)  # type: ignore[arg-type]


def load_stream(folder: Path) -> Any:
    """The model :func:`save_stream` wrote into ``folder``, its RNN states set back.

    ``keras.models.load_model`` (not compiled: a stream needs inference only),
    then :func:`~.states.set_states` with ``states.npz`` where the folder has one.
    """
    folder = Path(folder)
    model = keras_module().models.load_model(folder / MODEL_FILE, compile=False)
    if (folder / STATES_FILE).exists():
        with np.load(folder / STATES_FILE) as saved:
            keys = [key.rpartition(":") for key in saved.files]
            states: dict[str, list[np.ndarray]] = {}
            for path, _, n in sorted(keys, key=lambda k: (k[0], int(k[2]))):
                states.setdefault(path, []).append(np.array(saved[f"{path}:{n}"]))
        set_states(model, states)
    return model


def weight_values(model: Any) -> list[tuple[str, np.ndarray]]:
    """``(path, value)`` of every weight of ``model``, in order."""
    return [(w.path, np.array(to_numpy(w))) for w in model.weights]


def rounded_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to ``dtype`` (``"float16"``, ``"bfloat16"``), as float64.

    bfloat16 is ``ml_dtypes``'s, the type Keras and every backend use.
    """
    import ml_dtypes

    target = ml_dtypes.bfloat16 if dtype == "bfloat16" else np.dtype(dtype)
    return np.asarray(values).astype(target).astype(np.float64)


def epoch_end_hook(epoch: int, hook: Callable[[Any, int], None]) -> Any:
    """A Keras callback calling ``hook(model, epoch)`` at the end of (1-based) ``epoch``.

    Where ``ModelCheckpoint`` writes: after the epoch's training and validation,
    with the model's variables up to date on every backend (the JAX trainer
    syncs them before ``on_epoch_end``).
    """
    keras = keras_module()

    class _AtEpochEnd(keras.callbacks.Callback):  # type: ignore[name-defined]
        def on_epoch_end(self, index: int, logs: Any = None) -> None:
            if index + 1 == epoch:
                hook(self.model, epoch)

    return _AtEpochEnd()
