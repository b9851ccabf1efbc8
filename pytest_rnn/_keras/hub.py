"""KerasHub causal LMs as the cached-decoding check drives them.

:class:`CachedLM` wraps a KerasHub ``CausalLM`` (anything with
``call_with_cache``) and gives the family plain numpy: its full pass
(:meth:`~CachedLM.full`), an empty cache (:meth:`~CachedLM.empty_cache`: the
model's own ``_build_cache``, zeroed), one cached call (:meth:`~CachedLM.call`),
a whole schedule of cached calls (:meth:`~CachedLM.decode`), the cache's values,
the outputs of its decoder layers as a run computes them
(:meth:`~CachedLM.layer_outputs`), its own generation loop with a sampler forced
to given tokens (:meth:`~CachedLM.generate`) and a float32 copy of a
half-precision model. Caches stay the backend's tensors between calls; logits
come back as numpy. The full pass, :meth:`~CachedLM.decode` and
:meth:`~CachedLM.generate` are compiled where the backend allows
(:mod:`.hub_loops`, :mod:`.hub_generation`), cached per model; single calls run eagerly, so that the
diagnosis can watch them. :func:`check_causal_lm` refuses what is not a causal LM.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator
from typing import Any

import numpy as np

from pytest_rnn._core.tree import flatten
from pytest_rnn._keras.backend import name, to_numpy
from pytest_rnn._keras.calls import ModelCache, compiled
from pytest_rnn._keras.hub_generation import Generation, forced_generation
from pytest_rnn._keras.hub_loops import decode_loop, eager

__all__ = ["CachedLM", "check_causal_lm"]

#: The inputs a KerasHub CausalLM's full pass and ``generate_step`` take.
INPUTS = ("padding_mask", "token_ids")

#: The token a generation prompt is padded with after its last token (KerasHub's pad id).
PAD_ID = 0


def check_causal_lm(obj: Any, arg: str = "causal_lm") -> None:
    """``obj`` can be decoded with a cache; else a TypeError naming ``arg``.

    Raises:
        TypeError: ``obj`` has no callable ``call_with_cache`` or ``_build_cache``,
            or is not a Keras model.
    """
    if not callable(getattr(obj, "call_with_cache", None)):
        raise TypeError(
            f"{arg} must be a KerasHub CausalLM (a model with call_with_cache, e.g. "
            f"keras_hub.models.GPT2CausalLM), got {type(obj).__name__}"
        )
    if not callable(getattr(obj, "_build_cache", None)):
        raise TypeError(
            f"{arg} ({type(obj).__name__}) has call_with_cache but no _build_cache: "
            "pytest-rnn builds the empty cache with the model's own _build_cache"
        )
    import keras

    if not isinstance(obj, keras.Model):
        raise TypeError(
            f"{arg} must be a Keras model (a KerasHub CausalLM), got {type(obj).__name__}"
        )


class CachedLM:
    """A KerasHub ``CausalLM`` as the cached-decoding check calls it.

    Attributes:
        lm: the model.
        indexed: whether ``call_with_cache`` takes ``cache_update_index`` (a key/value
            cache written at positions); ``False`` for an index-free one (RWKV-style).
        takes_mask: whether ``call_with_cache`` takes a ``padding_mask``.
    """

    def __init__(self, lm: Any) -> None:
        self.lm = lm
        params = inspect.signature(lm.call_with_cache).parameters
        self.indexed = "cache_update_index" in params
        self.takes_mask = "padding_mask" in params
        self._build_params = inspect.signature(lm._build_cache).parameters
        self._watched = False  # inside layer_outputs(): every call eager, so the layers are seen

    # ------------------------------------------------------------------ what it is

    @property
    def cls(self) -> str:
        """The model's class name (``GPT2CausalLM``)."""
        return type(self.lm).__name__

    def describe(self) -> str:
        """``GPT2CausalLM 'gpt2_causal_lm' (2 decoder layers, float32)``."""
        layers = self.decoder_layers()
        parts = [f"{len(layers)} decoder layers"] if layers else []
        parts.append(self.dtype)
        return f"{self.cls} {self.lm.name!r} ({', '.join(parts)})"

    @property
    def dtype(self) -> str:
        """The dtype the model computes in (``float32``, ``bfloat16``...)."""
        return str(getattr(self.lm, "compute_dtype", None) or "float32")

    def _backbone_int(self, attr: str) -> int | None:
        value = getattr(getattr(self.lm, "backbone", None), attr, None)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    @property
    def vocabulary_size(self) -> int | None:
        """The backbone's vocabulary size, if it says."""
        return self._backbone_int("vocabulary_size")

    @property
    def max_sequence_length(self) -> int | None:
        """The longest sequence the backbone's position embedding takes, if it has one."""
        return self._backbone_int("max_sequence_length")

    def _vocabulary(self) -> int:
        """The width of the logits: the backbone's vocabulary size, else a full pass's."""
        if self.vocabulary_size is not None:
            return self.vocabulary_size
        one = np.ones((1, 1), np.int32)
        return int(self.full(one, one.astype(bool)).shape[-1])

    def input_names(self) -> list[str] | None:
        """The names of the full pass's inputs (``None`` when the model takes one tensor)."""
        inputs = getattr(self.lm, "input", None)
        return sorted(inputs) if isinstance(inputs, dict) else None

    def missing_build_inputs(self) -> list[str]:
        """Arguments ``_build_cache`` requires besides ``token_ids`` and ``padding_mask``."""
        return [
            n
            for n, p in self._build_params.items()
            if n not in INPUTS
            and p.default is inspect.Parameter.empty
            and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]

    def decoder_layers(self) -> list[Any]:
        """The backbone's decoder layers in order (``transformer_layers``), or ``[]``."""
        layers = getattr(getattr(self.lm, "backbone", None), "transformer_layers", None)
        return list(layers) if isinstance(layers, (list, tuple)) else []

    # ------------------------------------------------------------------ running it

    def full(self, tokens: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The full pass ``lm({"token_ids", "padding_mask"})``: logits ``(batch, steps, vocabulary)``.

        Compiled (one trace per model and input signature); eager where it cannot be.
        """
        inputs = {"token_ids": _ids(tokens), "padding_mask": np.asarray(mask, bool)}
        loops = _LOOPS.of(self.lm)
        if loops.get("full", True) and not self._watched:
            try:
                return _logits(
                    compiled(self.lm, inputs, fixed_batch=False)(inputs), "the full pass"
                )
            except Exception:  # not compilable: the eager call says what is wrong, if anything
                loops["full"] = False
        with eager():
            out = self.lm(inputs, training=False)
        return _logits(out, "the full pass")

    def empty_cache(self, tokens: np.ndarray, mask: np.ndarray) -> Any:
        """The model's cache for ``tokens``'s shape, every value zero (``_build_cache``, zeroed).

        ``_build_cache`` runs once per model and shape; every call returns fresh zeros.
        """
        import keras

        key = ("cache", tuple(tokens.shape))
        templates = _LOOPS.of(self.lm)
        if key not in templates:
            kwargs = {"padding_mask": mask} if "padding_mask" in self._build_params else {}
            with eager():
                _, cache = self.lm._build_cache(_ids(tokens), **kwargs)
            templates[key] = keras.tree.map_structure(keras.ops.zeros_like, cache)
        return keras.tree.map_structure(keras.ops.zeros_like, templates[key])

    def call(
        self, tokens: np.ndarray, mask: np.ndarray, cache: Any, start: int
    ) -> tuple[np.ndarray, Any]:
        """One ``call_with_cache`` on a chunk that begins at position ``start``: its logits and new cache."""
        kwargs: dict[str, Any] = {"padding_mask": mask} if self.takes_mask else {}
        if self.indexed:
            kwargs["cache_update_index"] = start
        with eager():
            returned = self.lm.call_with_cache(_ids(tokens), cache, **kwargs)
        if not (isinstance(returned, (tuple, list)) and len(returned) == 3):
            raise TypeError(
                f"{self.cls}.call_with_cache must return (logits, hidden_states, cache), "
                f"it returned {type(returned).__name__}"
            )
        logits, _, new_cache = returned
        return _logits(logits, "call_with_cache"), new_cache

    def decode(
        self, tokens: np.ndarray, mask: np.ndarray, cache: Any, bounds: list[tuple[int, int]]
    ) -> tuple[np.ndarray, Any] | None:
        """Every chunk ``(a, b)`` of ``bounds`` through :meth:`call` in one compiled loop.

        The joined logits and the last cache, or ``None`` where the backend has no
        such loop or the model's calls do not compile in one (then the caller
        calls chunk by chunk, and the eager calls say what is wrong).
        """
        key = _decode_key(tokens)
        loops = _LOOPS.of(self.lm)
        if key not in loops:
            loops[key] = decode_loop(
                self.lm, indexed=self.indexed, takes_mask=self.takes_mask, cache=cache
            )
        loop = loops[key]
        if loop is None or self._watched:
            return None
        starts, ends = (np.asarray(side, np.int32) for side in zip(*bounds))
        try:
            logits, cache = loop(tokens, mask, cache, starts, ends)
        except Exception:
            loops[key] = None
            return None
        return _logits(logits, "call_with_cache"), cache

    @staticmethod
    def values(cache: Any) -> list[np.ndarray]:
        """A cache's arrays as numpy copies, in flatten order."""
        return [
            np.array(to_numpy(leaf), copy=True) for _, leaf in flatten(cache) if leaf is not None
        ]

    def layer_cache(self, values: list[np.ndarray], layer: int) -> list[np.ndarray]:
        """Decoder layer ``layer``'s part of a cache: axis 1 of the arrays that stack one entry per layer."""
        n = len(self.decoder_layers())
        return [v[:, layer] for v in values if v.ndim >= 2 and v.shape[1] == n]

    def time_axes(self, tokens: np.ndarray, mask: np.ndarray) -> list[int | None]:
        """Per cache array, the axis that grows with the sequence (``None`` where none does)."""
        if tokens.shape[1] < 2:
            return [None] * len(self.values(self.empty_cache(tokens, mask)))
        long = [v.shape for v in self.values(self.empty_cache(tokens, mask))]
        short = [v.shape for v in self.values(self.empty_cache(tokens[:, :-1], mask[:, :-1]))]
        axes: list[int | None] = []
        for a, b in zip(long, short):
            grown = [i for i, (x, y) in enumerate(zip(a, b)) if x != y]
            axes.append(grown[0] if len(grown) == 1 and len(a) == len(b) else None)
        return axes

    @contextlib.contextmanager
    def layer_outputs(self) -> Iterator[list[list[np.ndarray]]]:
        """Inside, every call of a decoder layer appends its output to ``recorded[layer]``.

        The layers' ``call`` is wrapped on the instances and put back on exit; inside,
        the full pass and :meth:`decode` run eagerly, so that every call is seen.
        """
        layers = self.decoder_layers()
        recorded: list[list[np.ndarray]] = [[] for _ in layers]
        own = [vars(layer).get("call") for layer in layers]  # a call set on the instance, if any
        for i, layer in enumerate(layers):
            layer.call = _recording(layer.call, recorded[i])
        self._watched = True
        try:
            yield recorded
        finally:
            self._watched = False
            for layer, call in zip(layers, own):
                if call is not None:
                    layer.call = call
                else:
                    with contextlib.suppress(AttributeError):
                        del layer.call

    def loops_side_by_side(self, tokens: np.ndarray) -> bool:
        """Whether the generation loop may run beside the cached loop (:func:`.threads.alongside`).

        On TensorFlow and JAX always: their compiled loops leave Python's lock
        free. On torch once this model's loops have run on ``tokens``'s shape
        and can replay traces (of Keras's and KerasHub's classes only): side
        by side, each thread with half the cores, a 4-layer GPT2's check at 128
        tokens took 483 ms against 707 ms. The first run is Keras's Python,
        tracing and eager calls, which two threads only slow down (GPT2-tiny's
        first check: 0.78 s side by side, 0.46 s one after the other).
        """
        decode = _LOOPS.of(self.lm).get(_decode_key(tokens))
        return name() != "torch" or decode is not None

    def generate(self, tokens: np.ndarray, prompt: np.ndarray) -> Generation:
        """The model's ``generate_step`` on a prompt, its sampler forced to ``tokens``.

        The prompt is laid out as ``generate()`` builds it: ``tokens`` where
        ``prompt`` is True, :data:`PAD_ID` after, ``padding_mask=prompt``. The
        sampler (a ``keras_hub.samplers.Sampler``) runs the base class's loop,
        records the logits each iteration computes and returns the given token
        at every index, so the loop decodes exactly ``tokens``. The model's
        ``sampler`` is put back on exit.

        Raises:
            ValueError: ``generate_step`` needs other inputs, never called the
                sampler, or did not return the forced tokens: it cannot be forced.
        """
        inputs = {"token_ids": _ids(np.where(prompt, tokens, PAD_ID)), "padding_mask": prompt}
        loops = _LOOPS.of(self.lm)
        if "generate" not in loops:
            loops["generate"] = forced_generation(self.lm, self._vocabulary())
        try:
            forced = loops["generate"](inputs, tokens)
        except KeyError as error:
            raise ValueError(
                f"generate=True: {self.cls}.generate_step reads inputs[{error.args[0]!r}], "
                f"a layout pytest-rnn cannot force (it drives generate_step with "
                f"{{'token_ids', 'padding_mask'}}, as GPT2CausalLM and most KerasHub CausalLMs "
                "take them); pass generate=False to check call_with_cache alone"
            ) from error
        return forced.generation(tokens, prompt, self.cls)

    def float32_copy(self) -> CachedLM:
        """The same model computing in float32: rebuilt from its config, its weights cast."""
        config = self.lm.get_config()
        backbone = config.get("backbone") if isinstance(config, dict) else None
        if not (isinstance(backbone, dict) and isinstance(backbone.get("config"), dict)):
            raise TypeError(f"{self.cls}.get_config() has no backbone config to rebuild from")
        backbone["config"]["dtype"] = "float32"
        copy = type(self.lm).from_config(config)
        copy.set_weights([np.asarray(w, dtype=np.float32) for w in self.lm.get_weights()])
        return CachedLM(copy)


# --------------------------------------------------------------------------- helpers


def _ids(tokens: np.ndarray) -> np.ndarray:
    return np.asarray(tokens, dtype=np.int32)


def _logits(value: Any, where: str) -> np.ndarray:
    arr = np.asarray(to_numpy(value))
    if arr.ndim != 3:
        raise ValueError(
            f"{where} returned logits of shape {arr.shape}; (batch, steps, vocabulary) expected"
        )
    return arr


def _recording(call: Any, into: list[np.ndarray]) -> Any:
    @functools.wraps(call)
    def recorded(*args: Any, **kwargs: Any) -> Any:
        out = call(*args, **kwargs)
        into.append(np.asarray(to_numpy(out[0] if isinstance(out, (tuple, list)) else out)))
        return out

    return recorded


# lm -> {what: compiled loop, or None / False where it cannot be}; weak keys.
_LOOPS = ModelCache()


def _decode_key(tokens: np.ndarray) -> tuple[str, tuple[int, ...]]:
    """The :data:`_LOOPS` key of a model's decode loop for ``tokens``'s shape."""
    return ("decode", tuple(tokens.shape))
