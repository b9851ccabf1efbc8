"""Python's and numpy's global random state, kept across a block.

The one home of that rule: the seeding fixture, the adapter's guards and the
model strategies all use :func:`kept`. Stdlib only at import time (numpy is
imported when the block starts), so the plugin and the strategies stay light.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

__all__ = ["kept"]


@contextlib.contextmanager
def kept() -> Iterator[None]:
    """Put Python's and numpy's global random state back on exit, on failure too.

    Building a Keras layer draws seeds from Python's ``random``; users who
    seeded their test must not see that.
    """
    import numpy as np

    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
