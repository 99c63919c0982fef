"""Where specdyn keeps assembled weights, converted models and fetched benchmark wheels."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from specdyn.errors import SpecdynError

CACHE_ENV = "SPECDYN_CACHE"
DEFAULT_CACHE = "~/.cache/specdyn"


def cache_root() -> Path:
    """``$SPECDYN_CACHE``, or ``~/.cache/specdyn``."""
    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def writable_dir(folder: Path) -> Path:
    """``folder`` (inside the cache), created if needed and checked by writing a temporary file there.

    Call it before heavy work that ends by writing to the cache: a cache that is a file, or that cannot
    be written, is a SpecdynError naming ``SPECDYN_CACHE`` and the path."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise SpecdynError(_unusable(folder, exc)) from None
    return folder


def _unusable(folder: Path, exc: OSError) -> str:
    root = cache_root()
    where = f"{CACHE_ENV}={os.environ[CACHE_ENV]}" if os.environ.get(CACHE_ENV) else \
        f"the cache {root} (the default: {CACHE_ENV} is not set)"
    problem = "is a file, not a folder" if root.exists() and not root.is_dir() else \
        f"cannot be written ({folder}: {exc.strerror or exc})"
    return f"{where} {problem}; set {CACHE_ENV} to a writable folder"
