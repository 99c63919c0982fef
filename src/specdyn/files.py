"""Small files, read and written safely: crash-safe writes shared by every writer (run folders, budget
advice, cost models, reports) and UTF-8 reads whose failures are one-line errors."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from specdyn.errors import SpecdynError


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write through ``write(tmp_path)``, flush it to disk, then rename into place (same folder, so the
    rename is atomic) and flush the folder entry: after a crash the file is either whole or absent.
    An unwritable destination is a :class:`SpecdynError` naming the file; no temporary file is left."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _sync_folder(path.parent)
    except OSError as exc:
        _discard(tmp)
        raise SpecdynError(f"cannot write {path}: {exc.strerror or exc}") from None


def read_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of ``path``; SpecdynError naming ``what`` (e.g. "config") when it cannot be read."""
    try:
        return Path(path).read_bytes().decode("utf-8")
    except OSError as exc:
        raise SpecdynError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpecdynError(f"{what} {path} is not UTF-8 text") from None


def write_text_atomic(path: Path, text: str) -> None:
    """:func:`write_atomic` of UTF-8 text."""
    write_atomic(path, lambda p: p.write_text(text, encoding="utf-8"))


def _discard(tmp: Path) -> None:
    try:
        tmp.unlink(missing_ok=True)
    except OSError:
        pass


def _sync_folder(folder: Path) -> None:
    handle = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)
