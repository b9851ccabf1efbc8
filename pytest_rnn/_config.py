"""Session-wide settings: the plugin writes them from options and ini, assertions read them.

Kept free of heavy imports: the plugin imports this module at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Settings", "settings"]

DEFAULT_SEED = 0


@dataclass
class Settings:
    """Values a pytest run sets once (``--rnn-rtol``, ``--rnn-atol``, ``--rnn-seed``...).

    ``rtol``/``atol`` of ``None`` mean "the default for the compared dtype";
    an assertion's own ``rtol=``/``atol=`` arguments always win.
    """

    rtol: float | None = None
    atol: float | None = None
    seed: int = DEFAULT_SEED
    report_dir: str | None = None


settings = Settings()
