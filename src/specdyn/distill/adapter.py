"""Distilled adapters for decoding: read and check an adapter folder before any model loads, then merge
the adapter into a loaded draft. The adapter id (a hash of its weights and config) goes into manifests."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

from specdyn.errors import SpecdynError

DISTILL_FILE = "distill.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
CHUNK = 1 << 22


@dataclass(frozen=True)
class AdapterInfo:
    """A finished adapter folder written by `specdyn distill`."""

    path: Path
    adapter_id: str  # sha256 of adapter_config.json + adapter_model.safetensors
    base_name: str  # the draft it was trained on, as named then
    base_weights_id: str  # that draft's weights id (models.LoadedModel.weights_id)
    domain: str


def adapter_id(folder: str | Path) -> str:
    """sha256 over the adapter's config and weights files, in that order."""
    digest = hashlib.sha256()
    for name in ADAPTER_FILES:
        with open(Path(folder) / name, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def _record(folder: Path) -> dict:
    try:
        return json.loads((folder / DISTILL_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise SpecdynError(f"{folder} is not a finished `specdyn distill` folder: cannot read {DISTILL_FILE} ({type(exc).__name__})") from None


def read_adapter(folder: str | Path) -> AdapterInfo:
    """The adapter in ``folder``, checked to be complete (no model is loaded)."""
    path = Path(folder)
    record = _record(path)
    missing = [n for n in ADAPTER_FILES if not (path / n).is_file()]
    if record.get("status") != "complete" or missing:
        raise SpecdynError(f"{path} holds an unfinished distillation (missing {', '.join(missing) or 'the final record'}); "
                           f"rerun the `specdyn distill` command that made it")
    base = record.get("base", {})
    return AdapterInfo(path, adapter_id(path), str(base.get("name")), str(base.get("weights_id")),
                       str(record.get("config", {}).get("domain")))


def check_adapter_base(info: AdapterInfo, draft_name: str, weights_id: str) -> None:
    """One-line error unless the adapter was trained on these very draft weights."""
    if info.base_weights_id != weights_id:
        raise SpecdynError(f"adapter {info.path} was trained on {info.base_name!r} (weights {info.base_weights_id[:16]}), "
                           f"not on the draft {draft_name!r} (weights {weights_id[:16]}); use --draft {info.base_name} or another adapter")


def apply_adapter(draft, info: AdapterInfo):
    """A copy of the LoadedModel ``draft`` whose model has the adapter merged into its weights (plain
    module, no peft wrapper at decode time). ``draft.model`` itself is changed: do not reuse it."""
    from peft import PeftModel

    check_adapter_base(info, draft.name, draft.weights_id)
    dtype = next(draft.model.parameters()).dtype
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers API deprecated for v6
        merged = PeftModel.from_pretrained(draft.model, info.path).merge_and_unload()
    return dataclasses.replace(draft, model=merged.to(dtype).eval())
