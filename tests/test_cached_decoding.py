"""assert_cached_decoding_matches_full: KerasHub causal LMs decoding with their cache.

Every architecture here is built offline from constructor arguments (random
weights, 2 layers, hidden 16, vocabulary 50) and passes under a one-token, an
uneven and a right-padded schedule, its own generation loop included. Each
injected bug is a small subclass overriding ``call_with_cache`` (or
``_build_cache``) the way people break them, and must be caught with the words
that name it. GPT-NeoX is the one real KerasHub model here that disagrees with
its own full pass: its attention rotates the query at position 0 in every
cached call.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import pytest

keras_hub = pytest.importorskip("keras_hub")

import keras  # noqa: E402  (after the skip: keras_hub brings keras)
from keras import ops  # noqa: E402

from pytest_rnn._cached import assert_cached_decoding_matches_full  # noqa: E402
from pytest_rnn._errors import RNNAssertionError  # noqa: E402

M = keras_hub.models
V, B, T = 50, 2, 12
UNEVEN = [5, 1, 3, 2, 1]
#: Right padding as generate() lays it out: sample 1 is shorter than the prefill.
RIGHT = np.arange(T)[None, :] < np.array([[T], [4]])
#: Left padding: sample 1 starts at position 3.
LEFT = np.arange(T)[None, :] >= np.array([[0], [3]])


def _tiny(name: str) -> Any:
    """The backbone of architecture ``name``: 2 layers, hidden 16, 2 heads (1 key/value head)."""
    common = {"vocabulary_size": V, "num_layers": 2, "hidden_dim": 16, "intermediate_dim": 32}
    gqa = {"num_query_heads": 2, "num_key_value_heads": 1}
    return {
        "GPT2": lambda: M.GPT2Backbone(num_heads=2, max_sequence_length=32, **common),
        "Llama": lambda: M.LlamaBackbone(**gqa, **common),
        "Gemma": lambda: M.GemmaBackbone(head_dim=8, **gqa, **common),
        "Mistral": lambda: M.MistralBackbone(**gqa, **common),
        "Qwen": lambda: M.QwenBackbone(**gqa, **common),
        "Qwen3": lambda: M.Qwen3Backbone(head_dim=8, **gqa, **common),
        "Phi3": lambda: M.Phi3Backbone(**gqa, **common),
        "Falcon": lambda: M.FalconBackbone(num_attention_heads=2, **common),
        "OPT": lambda: M.OPTBackbone(num_heads=2, max_sequence_length=32, **common),
        "Bloom": lambda: M.BloomBackbone(num_heads=2, **common),
        "GPTNeoX": lambda: M.GPTNeoXBackbone(num_heads=2, max_sequence_length=32, **common),
        "RWKV7": lambda: M.RWKV7Backbone(
            hidden_size=16,
            head_size=8,
            num_layers=2,
            vocabulary_size=V,
            intermediate_dim=32,
            gate_lora=8,
            mv_lora=8,
            aaa_lora=8,
            decay_lora=8,
        ),
    }[name]()


@functools.cache
def causal_lm(name: str, cls: type | None = None) -> Any:
    """``name``'s CausalLM (or the subclass ``cls``) on a fresh tiny backbone; built once."""
    task = cls or getattr(M, f"{name}CausalLM")
    keras.utils.set_random_seed(0)  # the same weights on every run and worker
    return task(backbone=_tiny(name), preprocessor=None)


@pytest.fixture
def tokens() -> np.ndarray:
    return np.random.default_rng(0).integers(1, V, size=(B, T)).astype("int32")


def failure(lm: Any, token_ids: Any, **kw: Any) -> str:
    """The report of a check that must fail."""
    with pytest.raises(RNNAssertionError) as info:
        assert_cached_decoding_matches_full(lm, token_ids, **kw)
    return str(info.value)


# =========================================================================== real models pass

PASSING = ["GPT2", "Llama", "Gemma", "Mistral", "Qwen", "Qwen3", "Phi3", "Falcon", "OPT", "Bloom"]
LAYOUTS: dict[str, dict[str, Any]] = {
    "one_token_calls": {"chunks": 1},
    "uneven": {"chunks": [5, 1, 3, 2, 1]},
    "right_padded": {"chunks": [5, 1, 3, 2, 1], "padding_mask": RIGHT},
}


#: Every layout on the two most copied designs (learned positions, rotary with grouped
#: heads); the others, whose caches work alike, on the layout that exercises the most:
#: a prefill, uneven decode calls and a sample shorter than the prefill.
CASES = [(name, layout) for name in ("GPT2", "Llama") for layout in LAYOUTS] + [
    (name, "right_padded") for name in PASSING[2:]
]
#: The cases that also run on JAX and torch (``-m backends``).
ON_EVERY_BACKEND = {("GPT2", "right_padded")}


@pytest.mark.parametrize(
    "name, layout",
    [
        pytest.param(*case, marks=[pytest.mark.backends] if case in ON_EVERY_BACKEND else [])
        for case in CASES
    ],
    ids=[f"{n}-{lay}" for n, lay in CASES],
)
def test_a_kerashub_causal_lm_matches_its_full_pass(
    name: str, layout: str, tokens: np.ndarray
) -> None:
    assert_cached_decoding_matches_full(causal_lm(name), tokens, **LAYOUTS[layout])


@pytest.mark.parametrize("layout", LAYOUTS, ids=str)
def test_rwkv7_an_index_free_cache_matches_its_full_pass(layout: str, tokens: np.ndarray) -> None:
    assert_cached_decoding_matches_full(
        causal_lm("RWKV7"), tokens, generate=False, **LAYOUTS[layout]
    )


def test_rwkv7_takes_left_padding_because_its_call_with_cache_takes_the_mask(
    tokens: np.ndarray,
) -> None:
    padded = np.where(LEFT, tokens, 0)
    assert_cached_decoding_matches_full(
        causal_lm("RWKV7"), padded, padding_mask=LEFT, chunks=UNEVEN, generate=False
    )


def test_rwkv7_generation_loop_cannot_be_forced_and_says_so(tokens: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"reads inputs\['predict_token_ids'\].*generate=False"):
        assert_cached_decoding_matches_full(causal_lm("RWKV7"), tokens, chunks=UNEVEN)


def half(dtype: str, cls: type = M.GPT2CausalLM) -> Any:
    """A tiny GPT-2 (or subclass ``cls``) computing in ``dtype``, its weights seeded.

    Seeded: random weights give logits near 5e-4, where float16's rounding of
    O(1) terms is about the default atol (1e-5). One CI run drew weights whose
    correct cached pass differed from the full one by 1.19e-5 at one logit of
    1,200 (allowed 1.05e-5); seeds 0-11 pass.
    """
    keras.utils.set_random_seed(0)
    backbone = M.GPT2Backbone(
        vocabulary_size=V, num_layers=2, num_heads=2, hidden_dim=16, intermediate_dim=32,
        max_sequence_length=32, dtype=dtype,
    )  # fmt: skip
    return cls(backbone=backbone, preprocessor=None)


class RoundsInItsDtype(M.GPT2CausalLM):
    """Cached logits two units of its dtype's precision off: rounding that float32 all but removes."""

    def call_with_cache(self, token_ids: Any, cache: Any, cache_update_index: Any) -> Any:
        logits, hidden, cache = super().call_with_cache(token_ids, cache, cache_update_index)
        eps = float(np.finfo(self.compute_dtype).eps)
        return logits * (1 + 2 * eps), hidden, cache


def test_a_float16_models_rounding_is_told_from_logic(tokens: np.ndarray) -> None:
    # generate=False: the generation loop's prefill runs over the whole padded prompt,
    # and in float16 that rounds differently from one-token calls by more than atol
    # 1e-5 on some CPUs (1.2e-4 on logits near 0.008 on an AMD EPYC, Zen 5).
    assert_cached_decoding_matches_full(half("float16"), tokens, generate=False)
    text = failure(half("float16", RoundsInItsDtype), tokens, generate=False)
    assert "(2 decoder layers, float16)" in text
    assert "float32 re-run: agrees" in text
    assert "float16 rounding, not logic: loosen rtol/atol" in text


@pytest.mark.backends  # torch's Tensor.numpy() refuses bfloat16
def test_a_bfloat16_model_passes(tokens: np.ndarray) -> None:
    lm = half("bfloat16")
    assert_cached_decoding_matches_full(lm, tokens, chunks=UNEVEN, generate=False)
    # The generation loop recomputes the prompt's last position in a one-token call
    # on top of its whole-prompt prefill, and bfloat16 rounds the two differently on
    # some CPUs: 7.3e-4 at logits near 0.005 on an AMD EPYC (AVX2, TensorFlow), past
    # the default atol of 1e-5; the float32 re-run calls it rounding. The atol here
    # is one rounding of an O(1) term in bfloat16 (2^-8).
    assert_cached_decoding_matches_full(lm, tokens, chunks=UNEVEN, rtol=1.6e-2, atol=2**-8)


class LoopRoundsInItsDtype(M.GPT2CausalLM):
    """generate_step's prefill cache four units of its dtype's precision off: only the loop rounds."""

    def _build_cache(self, token_ids: Any) -> Any:
        hidden, cache = super()._build_cache(token_ids)
        eps = {"float16": 2**-10, "bfloat16": 2**-7, "float32": 2**-23}[self.compute_dtype]
        return hidden, cache * (1 + 4 * eps)


def test_a_generation_loops_rounding_is_told_from_logic(tokens: np.ndarray) -> None:
    text = failure(half("bfloat16", LoopRoundsInItsDtype), tokens, chunks=UNEVEN)
    assert "call_with_cache chunk by chunk, from an empty cache: agrees with the full pass" in text
    loop = text.index("generation loop (LoopRoundsInItsDtype.generate_step")
    assert "float32 re-run: agrees" in text[loop:]
    assert "bfloat16 rounding, not logic: loosen rtol/atol" in text[loop:]
    text = failure(half("bfloat16", UnseededCache), tokens, chunks=UNEVEN)
    loop = text.index("generation loop (UnseededCache.generate_step")
    assert "float32 re-run: mismatch persists" in text[loop:]
    assert "a logic difference, not bfloat16 rounding" in text[loop:]


# =========================================================================== a real KerasHub bug


def test_gpt_neox_rotates_the_query_at_position_0_in_cached_calls(tokens: np.ndarray) -> None:
    # KerasHub 0.32's GPTNeoXAttention applies its rotary embedding to the query
    # without start_index: a one-token call at cache_update_index=5 rotates its
    # query as position 0. A whole-sequence prefill (start 0) is right.
    text = failure(causal_lm("GPTNeoX"), tokens, chunks=UNEVEN)
    assert "in the decode: position 5 (sample 0) was computed by call 2 of 5" in text
    assert "chunk 1 (position 5, cache_update_index=5)" in text
    assert "single whole-sequence prefill" in text and "agrees with the full pass" in text
    assert "wrote exactly the cache slots of its own positions" in text
    # Where layer 0's output first leaves the tolerance depends on the weights: 5 or later.
    assert re.search(
        r"layer 0 'transformer_layer_0': output differs from position \d+; cache agrees", text
    )
    assert "its cache agrees -> the query side: the position offset or rotary index" in text
    assert "generation loop (GPTNeoXCausalLM.generate_step from a prompt of 5 tokens" in text


# =========================================================================== injected bugs


class IndexShifted(M.GPT2CausalLM):
    """Passes ``cache_update_index + shift`` on (at least 0): an off-by-one index."""

    shift = -1

    def call_with_cache(self, token_ids: Any, cache: Any, cache_update_index: Any) -> Any:
        return super().call_with_cache(token_ids, cache, max(cache_update_index + self.shift, 0))


class IndexAhead(IndexShifted):
    shift = 1


class StaleCache(M.GPT2CausalLM):
    """Hands back the cache it was given: what it wrote is dropped."""

    def call_with_cache(self, token_ids: Any, cache: Any, cache_update_index: Any) -> Any:
        logits, hidden, _ = super().call_with_cache(token_ids, cache, cache_update_index)
        return logits, hidden, cache


class DroppedAfterPrefill(M.GPT2CausalLM):
    """The prefill's cache never reaches the decode."""

    def call_with_cache(self, token_ids: Any, cache: Any, cache_update_index: Any) -> Any:
        logits, hidden, new = super().call_with_cache(token_ids, cache, cache_update_index)
        # keras.ops.where, not Python's `if`: the check's compiled decode loop can hold it
        return logits, hidden, keras.ops.where(cache_update_index == 0, cache, new)


class IndexZero(M.GPT2CausalLM):
    """Never advances the position offset: every call at index 0."""

    def call_with_cache(self, token_ids: Any, cache: Any, cache_update_index: Any) -> Any:
        return super().call_with_cache(token_ids, cache, 0)


class UnseededCache(M.GPT2CausalLM):
    """``_build_cache`` hands back an empty cache: generate_step's prefill is lost."""

    def _build_cache(self, token_ids: Any) -> Any:
        hidden, cache = super()._build_cache(token_ids)
        return hidden, ops.zeros_like(cache)


class MaskedCache(M.GPT2CausalLM):
    """GPT-2 with a padding mask in its cache: ``call_with_cache`` takes ``padding_mask``.

    The cache is ``(keys and values, which slots hold a token)``; every call
    marks its chunk's slots and attends only to marked ones, so left padding
    decodes as the full pass computes it.
    """

    honours_mask = True

    def _build_cache(self, token_ids: Any, padding_mask: Any = None) -> Any:
        b, n = ops.shape(token_ids)
        heads = self.backbone.num_heads
        shape = (b, self.backbone.num_layers, 2, n, heads, self.backbone.hidden_dim // heads)
        cache = (ops.zeros(shape), ops.zeros((b, n), dtype="int32"))
        _, hidden, cache = self.call_with_cache(token_ids, cache, 0, padding_mask)
        return hidden, cache

    def call_with_cache(
        self, token_ids: Any, cache: Any, cache_update_index: Any, padding_mask: Any = None
    ) -> Any:
        kv, marked = cache
        if padding_mask is None:
            padding_mask = ops.ones_like(token_ids, dtype="bool")
        marked = ops.slice_update(marked, [0, cache_update_index], ops.cast(padding_mask, "int32"))
        seen = marked if self.honours_mask else ops.ones_like(marked)
        b, n = ops.shape(token_ids)
        allowed = ops.broadcast_to(seen[:, None, :], (b, n, ops.shape(marked)[1]))
        backbone = self.backbone
        tokens = backbone.token_embedding(token_ids)
        places = backbone.position_embedding(tokens, start_index=cache_update_index)
        x = backbone.embeddings_add((tokens, places))
        caches = []
        for i, layer in enumerate(backbone.transformer_layers):
            x, next_kv = layer(
                x,
                decoder_attention_mask=allowed,
                self_attention_cache=kv[:, i, ...],
                self_attention_cache_update_index=cache_update_index,
            )
            caches.append(next_kv)
        hidden = x = backbone.layer_norm(x)
        logits = backbone.token_embedding(x, reverse=True)
        return logits, hidden, (ops.stack(caches, axis=1), marked)


class MaskIgnored(MaskedCache):
    """Takes the padding mask and ignores it: new tokens attend to padded slots."""

    honours_mask = False


def bugged(cls: type) -> Any:
    return causal_lm("GPT2", cls)


def test_an_index_one_behind_is_caught_where_the_cache_is_written(tokens: np.ndarray) -> None:
    text = failure(bugged(IndexShifted), tokens, chunks=UNEVEN)
    assert text.startswith("Cached decoding differs from the full pass.\n  model IndexShifted")
    assert "batch 2, 12 steps, prefill 5, chunks [5, 1, 3, 2, 1] (5 chunks), no padding" in text
    assert "in the decode: position 5" in text
    assert "wrote cache slot 4, not slot 5: the write is off by -1" in text
    assert "its cache differs -> what is written: the slot (cache_update_index)" in text


def test_an_index_one_ahead_is_caught_in_the_prefill(tokens: np.ndarray) -> None:
    if keras.backend.backend() == "torch":
        # torch's slice_update refuses a write past the cache's end (TensorFlow and JAX
        # clamp the index): the model's own _build_cache raises, before any comparison.
        with pytest.raises(RuntimeError, match="must match the existing size"):
            assert_cached_decoding_matches_full(bugged(IndexAhead), tokens, chunks=UNEVEN)
        return
    text = failure(bugged(IndexAhead), tokens, chunks=UNEVEN)
    assert "in the prefill: position 0 (sample 0) was computed by call 1 of 5" in text
    assert "the prefill from an empty cache already differs" in text
    assert "wrote cache slots 1-5, not slots 0-4: the write is off by +1" in text


def test_a_stale_cache_handed_back_is_named(tokens: np.ndarray) -> None:
    text = failure(bugged(StaleCache), tokens, chunks=UNEVEN)
    assert "in the decode: position 5" in text
    assert "single whole-sequence prefill" in text and "the bug is in the hand-over" in text
    assert "returned the cache it was given, unchanged, in all 5 calls" in text
    assert "a stale cache handed back" in text


def test_the_cache_dropped_after_the_prefill_is_named(tokens: np.ndarray) -> None:
    text = failure(bugged(DroppedAfterPrefill), tokens, chunks=UNEVEN)
    assert "unchanged, in the prefill (chunk 0) only" in text
    assert "the cache is dropped after the prefill" in text


# The backends' failing cached check: one-token chunks, one shape for JAX to compile each
# layer's eager operations for (the uneven schedule of the dropped-cache test took 22 s).
@pytest.mark.backends
def test_a_position_offset_never_advanced_is_named(tokens: np.ndarray) -> None:
    text = failure(bugged(IndexZero), tokens, chunks=1)
    assert "in the decode: position 1 (sample 0) was computed by call 2 of 12" in text
    assert "wrote cache slot 0, not slot 1: it writes at slot 0" in text
    assert "ignores the index it is given, so the position offset is not advanced" in text


def test_a_cache_that_takes_the_padding_mask_decodes_left_padding(tokens: np.ndarray) -> None:
    padded = np.where(LEFT, tokens, 7)
    lm = bugged(MaskedCache)
    assert_cached_decoding_matches_full(
        lm, padded, padding_mask=LEFT, chunks=UNEVEN, generate=False
    )
    assert_cached_decoding_matches_full(lm, tokens, padding_mask=RIGHT, chunks=UNEVEN)


def test_a_padding_mask_ignored_where_it_matters_is_named(tokens: np.ndarray) -> None:
    padded = np.where(LEFT, tokens, 7)
    text = failure(bugged(MaskIgnored), padded, padding_mask=LEFT, chunks=UNEVEN, generate=False)
    assert "left padding (call_with_cache takes the mask): 21 of 24 positions are tokens" in text
    assert "in the prefill: position 3 (sample 1)" in text
    assert "the cached logits at real tokens change when the padded tokens change" in text
    assert "call_with_cache reads padded positions (the padding mask is ignored where it" in text


def test_left_padding_and_the_generation_loop_do_not_mix(tokens: np.ndarray) -> None:
    with pytest.raises(ValueError, match="generate_step reads a prompt padded on the right"):
        assert_cached_decoding_matches_full(bugged(MaskedCache), tokens, padding_mask=LEFT)


def test_a_generation_loop_that_loses_its_prefill_is_caught_alone(tokens: np.ndarray) -> None:
    text = failure(bugged(UnseededCache), tokens, chunks=UNEVEN)
    assert "call_with_cache chunk by chunk, from an empty cache: agrees with the full pass" in text
    assert "generation loop (UnseededCache.generate_step from a prompt of 5 tokens" in text
    assert "position 4 (sample 0) was computed by the loop's iteration at index 5" in text
    assert "so the loop itself differs" in text


def test_a_bfloat16_logic_bug_persists_in_float32(tokens: np.ndarray) -> None:
    text = failure(half("bfloat16", IndexZero), tokens, generate=False)
    assert "(2 decoder layers, bfloat16)" in text
    assert "float32 re-run: mismatch persists" in text
    assert "a logic difference, not bfloat16 rounding" in text


# =========================================================================== the model is untouched


def test_the_model_is_left_as_it_was_on_failure(tokens: np.ndarray) -> None:
    lm = bugged(StaleCache)
    sampler, weights = lm.sampler, [w.copy() for w in lm.get_weights()]
    failure(lm, tokens, chunks=UNEVEN)
    assert lm.sampler is sampler
    assert all(np.array_equal(a, b) for a, b in zip(weights, lm.get_weights()))
    assert all("call" not in vars(layer) for layer in lm.backbone.transformer_layers)


# =========================================================================== bad calls

BAD_CALLS: list[tuple[Callable[[np.ndarray], dict[str, Any]], type, str]] = [
    (lambda t: {"causal_lm": object()}, TypeError, "causal_lm must be a KerasHub CausalLM"),
    (lambda t: {"token_ids": t.astype("float32")}, TypeError, "token_ids must hold integer"),
    (lambda t: {"token_ids": t[0]}, ValueError, r"token_ids has shape \(12,\) \(1 dims\)"),
    (lambda t: {"token_ids": t[:, :0]}, ValueError, "token_ids has 0 steps"),
    (lambda t: {"token_ids": t + V}, ValueError, r"token_ids holds \d+ at \(0, 0\).*\[0, 50\)"),
    (lambda t: {"token_ids": np.tile(t, 3)}, ValueError, "max_sequence_length=32"),
    (lambda t: {"padding_mask": RIGHT[:, :5]}, ValueError, "padding_mask has shape"),
    (lambda t: {"padding_mask": RIGHT * 0.5}, TypeError, "padding_mask must be a boolean"),
    (lambda t: {"padding_mask": RIGHT & False}, ValueError, "False everywhere in sample 0"),
    (lambda t: {"padding_mask": LEFT}, ValueError, "pads sample 1 on the left"),
    (lambda t: {"chunks": [5, 5]}, ValueError, "sum to 10, but x has 12 steps"),
    (lambda t: {"chunks": 0}, ValueError, "chunks must be a positive chunk length"),
    (lambda t: {"chunks": "1"}, TypeError, "chunks must be a chunk length"),
    (lambda t: {"generate": "yes"}, TypeError, "generate must be True or False"),
    (lambda t: {"rtol": 1e-3}, ValueError, "rtol was given without atol"),
]


@pytest.mark.parametrize("call, error, words", BAD_CALLS)
def test_a_bad_call_names_its_argument(
    call: Callable[[np.ndarray], dict[str, Any]], error: type, words: str, tokens: np.ndarray
) -> None:
    kwargs = {"causal_lm": causal_lm("GPT2"), "token_ids": tokens, **call(tokens)}
    with pytest.raises(error, match=words):
        assert_cached_decoding_matches_full(
            kwargs.pop("causal_lm"), kwargs.pop("token_ids"), **kwargs
        )


# =========================================================================== compiled loops


@pytest.mark.backends
def test_the_cached_and_the_generation_loop_run_compiled_and_trace_once(
    tokens: np.ndarray,
) -> None:
    from pytest_rnn import _keras as K
    from pytest_rnn._cached.run import generation, token_batch
    from pytest_rnn._core.stream import ChunkSchedule
    from pytest_rnn._keras.hub import _LOOPS

    lm = causal_lm("GPT2")
    if keras.backend.backend() == "torch":
        # Replays of traces, for chunk lengths repeated 8 times or more: one-token
        # chunks, and the generation loop's 11 iterations after a one-token prompt.
        assert_cached_decoding_matches_full(lm, tokens, chunks=1)
        traces = K.TRACES.count
        assert_cached_decoding_matches_full(lm, tokens, chunks=1)
        loop = generation(K.CachedLM(lm), token_batch(tokens, np.ones_like(tokens, bool)),
                          ChunkSchedule.parse(1, T))  # fmt: skip
        assert _LOOPS.of(lm)[("decode", tokens.shape)] is not None
        assert loop.compiled
        assert K.TRACES.count == traces
        return
    for _ in range(2):  # twice: TensorFlow compiles a loop with XLA at its second run, once
        assert_cached_decoding_matches_full(lm, tokens, chunks=UNEVEN)
    traces = K.TRACES.count
    assert_cached_decoding_matches_full(lm, tokens, chunks=[2, 1, 1, 3, 5])
    loop = generation(K.CachedLM(lm), token_batch(tokens, np.ones_like(tokens, bool)),
                      ChunkSchedule.parse(UNEVEN, T))  # fmt: skip
    assert _LOOPS.of(lm)[("decode", tokens.shape)] is not None
    assert loop.compiled
    # TensorFlow: one trace serves every schedule; JAX: one per new chunk length (2 and 3 here).
    assert K.TRACES.count - traces <= (0 if keras.backend.backend() == "tensorflow" else 2)


def fresh(name: str, cls: type | None = None) -> Any:
    """A model no other test has run: its loops' runs start at 0."""
    keras.utils.set_random_seed(0)
    return (cls or getattr(M, f"{name}CausalLM"))(backbone=_tiny(name), preprocessor=None)


@pytest.mark.tensorflow_only("XLA compiles the cached loops on TensorFlow only")
@pytest.mark.parametrize("name", ["GPT2", "Llama"])
def test_a_float32_models_loops_run_under_xla_from_their_second_check(
    tokens: np.ndarray, name: str
) -> None:
    from pytest_rnn._keras.hub_loops import XLA_RUNS

    lm = fresh(name)
    runs = XLA_RUNS.count
    assert_cached_decoding_matches_full(lm, tokens, chunks=1)
    assert XLA_RUNS.count == runs  # the first run: graphs, as a loop run once pays no compile
    assert_cached_decoding_matches_full(lm, tokens, chunks=1)
    assert XLA_RUNS.count == runs + 2  # the one-token decode and the generation loop
    assert_cached_decoding_matches_full(lm, tokens, chunks=[1] * 8 + [2, 2])
    assert XLA_RUNS.count == runs + 4  # the 8 one-token chunks; the two of 2 in the graph


@pytest.mark.tensorflow_only("XLA compiles the cached loops on TensorFlow only")
def test_a_bug_is_caught_alike_under_xla(tokens: np.ndarray) -> None:
    from pytest_rnn._keras.hub_loops import XLA_RUNS

    lm = fresh("GPT2", DroppedAfterPrefill)
    first = failure(lm, tokens, chunks=1)
    runs = XLA_RUNS.count
    again = failure(lm, tokens, chunks=1)
    assert XLA_RUNS.count == runs + 2
    words = "the cache is dropped after the prefill"
    assert words in first and words in again, again
    assert first.splitlines()[:2] == again.splitlines()[:2]


@pytest.mark.tensorflow_only("XLA compiles the cached loops on TensorFlow only")
def test_a_float16_models_loops_never_run_under_xla(tokens: np.ndarray) -> None:
    from pytest_rnn._keras.hub_loops import XLA_RUNS

    runs = XLA_RUNS.count
    lm = half("float16")
    for _ in range(3):
        assert_cached_decoding_matches_full(lm, tokens, chunks=1, generate=False)
    assert XLA_RUNS.count == runs


class OutsideXla(M.GPT2CausalLM):
    """Its logits pass through a Python function: a graph can run it, XLA cannot compile it."""

    def call_with_cache(self, token_ids: Any, cache: Any, cache_update_index: Any) -> Any:
        import tensorflow as tf

        logits, hidden, cache = super().call_with_cache(token_ids, cache, cache_update_index)
        same = tf.numpy_function(lambda a: a, [logits], logits.dtype, stateful=False)
        return tf.ensure_shape(same, logits.shape), hidden, cache


@pytest.mark.tensorflow_only("XLA compiles the cached loops on TensorFlow only")
def test_a_model_xla_cannot_compile_keeps_its_graphs_and_is_still_judged(
    tokens: np.ndarray,
) -> None:
    from pytest_rnn import _keras as K
    from pytest_rnn._cached.run import generation, token_batch
    from pytest_rnn._core.stream import ChunkSchedule
    from pytest_rnn._keras.hub import _LOOPS
    from pytest_rnn._keras.hub_loops import XLA_RUNS

    lm = fresh("GPT2", OutsideXla)
    runs = XLA_RUNS.count
    for _ in range(2):
        assert_cached_decoding_matches_full(lm, tokens, chunks=1)
    traces = K.TRACES.count
    assert_cached_decoding_matches_full(lm, tokens, chunks=1)
    assert K.TRACES.count == traces  # XLA is not tried again
    assert XLA_RUNS.count == runs
    loop = generation(K.CachedLM(lm), token_batch(tokens, np.ones_like(tokens, bool)),
                      ChunkSchedule.parse(1, T))  # fmt: skip
    assert _LOOPS.of(lm)[("decode", tokens.shape)] is not None  # the graph loop, not eager calls
    assert loop.compiled


class SaysWhereItGenerates(M.GPT2CausalLM):
    """Notes the thread its generate_step runs (or is traced) in."""

    threads: ClassVar[list[str]] = []

    def generate_step(self, inputs: Any, stop_token_ids: Any = None) -> Any:
        import threading

        self.threads.append(threading.current_thread().name)
        return super().generate_step(inputs, stop_token_ids)


@pytest.mark.backends
def test_the_generation_loop_runs_beside_the_cached_loop(tokens: np.ndarray) -> None:
    # torch: from the second check on one shape, where both loops replay traces; the first
    # is Python (tracing, eager calls), which two threads only slow down.
    import threading

    lm = fresh("GPT2")
    seen: list[str] = []
    generate_step = lm.generate_step

    def noted(*args: Any, **kwargs: Any) -> Any:
        seen.append(threading.current_thread().name)
        return generate_step(*args, **kwargs)

    lm.generate_step = noted
    assert_cached_decoding_matches_full(lm, tokens, chunks=1)
    first = set(seen)
    seen.clear()
    assert_cached_decoding_matches_full(lm, tokens, chunks=1)
    if keras.backend.backend() == "torch":  # generate_step runs in Python at every check
        here = threading.current_thread().name
        assert (first, set(seen)) == ({here}, {"pytest-rnn-alongside"})
    else:  # generate_step runs where it is traced
        assert first | set(seen) == {"pytest-rnn-alongside"}
    assert not any(t.name == "pytest-rnn-alongside" for t in threading.enumerate())


@pytest.mark.backends
@pytest.mark.torch_only("elsewhere a class of the user's compiles as KerasHub's do")
def test_a_class_of_the_users_generates_after_the_cached_loop_on_torch(
    tokens: np.ndarray,
) -> None:
    # torch traces Keras's and KerasHub's classes only: a user's runs eagerly, loop after loop
    import threading

    lm = fresh("GPT2", SaysWhereItGenerates)
    SaysWhereItGenerates.threads.clear()
    assert_cached_decoding_matches_full(lm, tokens, chunks=1)
    assert_cached_decoding_matches_full(lm, tokens, chunks=1)
    assert set(lm.threads) == {threading.current_thread().name}


def test_a_call_with_cache_that_cannot_be_compiled_is_run_eagerly_and_still_judged(
    tokens: np.ndarray,
) -> None:
    from pytest_rnn._keras.hub import _LOOPS

    lm = bugged(IndexShifted)  # Python's max() on the index: no graph can hold it
    text = failure(lm, tokens, chunks=UNEVEN, generate=False)
    assert "wrote cache slot 4, not slot 5: the write is off by -1" in text
    assert _LOOPS.of(lm)[("decode", tokens.shape)] is None
