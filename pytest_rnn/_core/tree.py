"""Nested inputs and outputs: lists, tuples and dicts of arrays.

One key order for every walk: dict keys are visited sorted by ``str(key)``,
so two structures with the same keys flatten alike, and :func:`rebuild`
puts leaves back where :func:`flatten` found them. Paths read like indexing
code: ``[1]['h']``; a single leaf has the empty path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["as_list", "flatten", "map_structure", "rebuild"]


def _keys(tree: Mapping[Any, Any]) -> list[Any]:
    return sorted(tree, key=str)


def flatten(tree: Any, path: str = "") -> list[tuple[str, Any]]:
    """``[(path, leaf)]`` for nested lists, tuples and dicts: ``[1]['h']`` paths."""
    if isinstance(tree, Mapping):
        out: list[tuple[str, Any]] = []
        for key in _keys(tree):
            out.extend(flatten(tree[key], f"{path}[{key!r}]"))
        return out
    if isinstance(tree, Sequence) and not isinstance(tree, (str, bytes)):
        out = []
        for i, item in enumerate(tree):
            out.extend(flatten(item, f"{path}[{i}]"))
        return out
    return [(path, tree)]


def map_structure(fn: Callable[[Any], Any], tree: Any) -> Any:
    """Apply ``fn`` to every leaf, in :func:`flatten` order; the same structure out.

    A dict keeps its own key order in the result.
    """
    if isinstance(tree, dict):
        done = {k: map_structure(fn, tree[k]) for k in _keys(tree)}
        return {k: done[k] for k in tree}
    if isinstance(tree, (list, tuple)):
        return type(tree)(map_structure(fn, v) for v in tree)
    return fn(tree)


def rebuild(tree: Any, leaves: Sequence[Any]) -> Any:
    """``tree`` with its leaves (in :func:`flatten` order) replaced by ``leaves``."""
    it = iter(leaves)
    return map_structure(lambda _: next(it), tree)


def as_list(out: Any) -> list[Any]:
    """A model's outputs as a list: a list or tuple as it is, one output alone in a list."""
    return list(out) if isinstance(out, (list, tuple)) else [out]
