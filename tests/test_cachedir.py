"""An unusable SPECDYN_CACHE (a file, under a file, read-only) is one line naming the variable and the path,
raised before any heavy work: assembling or converting weights, downloading benchmark wheels."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from specdyn import models
from specdyn.cachedir import CACHE_ENV, writable_dir
from specdyn.cli import main
from specdyn.defaults import DEFAULT_DRAFT, DEFAULT_TARGET
from specdyn.errors import SpecdynError
from specdyn.suites import sources


def _file_cache(tmp_path: Path) -> Path:
    path = tmp_path / "cache-file"
    path.write_text("not a folder")
    return path


def _read_only_cache(tmp_path: Path) -> Path:
    """A read-only folder; skips when permission bits do not stop writes (running as root)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    pytest.skip("permission bits do not stop this user's writes (root); the file-based cases still run")


CACHES = {
    "a file": (_file_cache, "is a file, not a folder"),
    "under a file": (lambda tmp: _file_cache(tmp) / "sub", "cannot be written .*Not a directory"),
    "read-only": (_read_only_cache, "cannot be written .*Permission denied"),
}


@pytest.fixture(params=list(CACHES))
def bad_cache(request, tmp_path, monkeypatch):
    make, message = CACHES[request.param]
    root = make(tmp_path)
    monkeypatch.setenv(CACHE_ENV, str(root))
    before = sorted(tmp_path.rglob("*"))
    yield root, message
    assert sorted(tmp_path.rglob("*")) == before  # nothing left behind


def _one_line(capsys, root: Path, message: str) -> None:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"specdyn: error: {CACHE_ENV}={root} ")
    assert f"set {CACHE_ENV} to a writable folder" in err
    assert re.search(message, err), err


def test_suite_export_stops_before_downloading(bad_cache, capsys, monkeypatch):
    root, message = bad_cache
    monkeypatch.setattr(subprocess, "run", lambda *a, **k: pytest.fail("pip ran"))
    assert main(["suite", "export", "--per-domain", "1"]) == 2
    _one_line(capsys, root, message)


def test_model_loading_stops_before_assembly_or_any_load(bad_cache, capsys, monkeypatch):
    root, message = bad_cache
    monkeypatch.setattr(models, "load_model", lambda *a, **k: pytest.fail("a model loaded"))
    monkeypatch.setattr(models, "locate_parts", lambda *a, **k: pytest.fail("parts were assembled"))
    assert main(["decode", "hello", "--draft", DEFAULT_DRAFT, "--target", DEFAULT_TARGET, "--device", "cpu"]) == 2
    _one_line(capsys, root, message)
    with pytest.raises(SpecdynError, match=CACHE_ENV):
        models.prepare_registry_model(models.REGISTRY[DEFAULT_DRAFT])


def test_default_cache_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(_file_cache(tmp_path)))
    with pytest.raises(SpecdynError, match=rf"the cache .*cache-file/\.cache/specdyn \(the default: {CACHE_ENV} is not set\)"):
        writable_dir(sources.sources_dir())


def test_a_converted_model_needs_no_writable_cache(monkeypatch, tmp_path):
    """Only work that writes checks the cache: a read-only cache holding converted models still loads."""
    entry = models.REGISTRY[DEFAULT_DRAFT]
    hf = tmp_path / "models" / entry.name / models.HF_DIR
    hf.mkdir(parents=True)
    (hf / models.STAMP_NAME).write_text(f'{{"sha256": "{entry.sha256}", "size": {entry.size}}}')
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    monkeypatch.setattr(models, "writable_dir", lambda folder: pytest.fail(f"{folder} was checked"))
    models.check_cache([DEFAULT_DRAFT, "some/hub-id", str(tmp_path)])
    assert models.prepare_registry_model(entry) == hf
