"""Where specdyn keeps assembled weights, converted models and fetched benchmark wheels."""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "SPECDYN_CACHE"
DEFAULT_CACHE = "~/.cache/specdyn"


def cache_root() -> Path:
    """``$SPECDYN_CACHE``, or ``~/.cache/specdyn``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()
