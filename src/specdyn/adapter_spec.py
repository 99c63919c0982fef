"""Draft adapters (``--draft-adapter DIR``), parsed at the boundary: a finished `specdyn distill` folder is
read and hashed once into a typed :class:`AdapterInfo` that configs, manifests and analyses pass around.
Torch-free; merging an adapter into a loaded draft is :func:`specdyn.distill.adapter.apply_adapter`.

The adapter id (sha256 of the adapter's config and weights) is what makes two adapters the same adapter:
run manifests record it, resuming a run refuses another one, and analyses label runs by it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, fields
from pathlib import Path

from specdyn.errors import SpecdynError

DISTILL_FILE = "distill.json"
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")
CHUNK = 1 << 22
SHORT_ID = 12  # characters of the adapter id in labels


@dataclass(frozen=True)
class AdapterInfo:
    """A finished adapter folder written by `specdyn distill`."""

    path: Path
    adapter_id: str  # sha256 of adapter_config.json + adapter_model.safetensors
    base_name: str  # the draft it was trained on, as named then
    base_weights_id: str  # that draft's weights id (models.LoadedModel.weights_id)
    domain: str  # the domain it was trained on

    @property
    def text(self) -> str:
        """The canonical text of the setting (a config's ``draft_adapter``): the folder's absolute path."""
        return str(self.path)

    @property
    def label(self) -> str:
        """How analyses name a draft with this adapter: its training domain and a short id."""
        return f"distilled:{self.domain}@{self.adapter_id[:SHORT_ID]}"

    def record(self) -> dict:
        """The adapter as a run manifest records it (read back by :meth:`from_record`, no folder needed)."""
        return {f.name: str(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_record(cls, record: object, origin: str) -> AdapterInfo:
        names = [f.name for f in fields(cls)]
        if not isinstance(record, dict) or not all(isinstance(record.get(n), str) for n in names):
            raise SpecdynError(f"{origin}: expected an object with string fields {', '.join(names)}, got {record!r}")
        return cls(Path(record["path"]), *(record[n] for n in names[1:]))


def adapter_id(folder: str | Path) -> str:
    """sha256 over the adapter's config and weights files, in that order."""
    digest = hashlib.sha256()
    for name in ADAPTER_FILES:
        with open(Path(folder) / name, "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def distill_record(folder: Path) -> dict:
    """``FOLDER/distill.json``; a one-line error for a folder that is not a `specdyn distill` output."""
    try:
        record = json.loads((folder / DISTILL_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise SpecdynError(f"{folder} is not a finished `specdyn distill` folder: cannot read {DISTILL_FILE} ({type(exc).__name__})") from None
    if not isinstance(record, dict):
        raise SpecdynError(f"{folder / DISTILL_FILE} is not a `specdyn distill` record")
    return record


def read_adapter(folder: str | Path) -> AdapterInfo:
    """The adapter in ``folder``, checked to be complete (no model is loaded)."""
    path = Path(folder)
    record = distill_record(path)
    missing = [n for n in ADAPTER_FILES if not (path / n).is_file()]
    if record.get("status") != "complete" or missing:
        raise SpecdynError(f"{path} holds an unfinished distillation (missing {', '.join(missing) or 'the final record'}); "
                           f"rerun the `specdyn distill` command that made it")
    base = record.get("base", {})
    return AdapterInfo(path, adapter_id(path), str(base.get("name")), str(base.get("weights_id")),
                       str(record.get("config", {}).get("domain")))


def training_prompt_ids(folder: str | Path) -> list[str]:
    """Ids of the prompts the adapter in ``folder`` was trained on (its validation prompts are not)."""
    ids = distill_record(Path(folder)).get("data", {}).get("train_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise SpecdynError(f"{Path(folder) / DISTILL_FILE} lists no training prompt ids (data.train_ids)")
    return ids


def check_adapter_base(info: AdapterInfo, draft_name: str, weights_id: str) -> None:
    """One-line error unless the adapter was trained on these very draft weights."""
    if info.base_weights_id != weights_id:
        raise SpecdynError(f"adapter {info.path} was trained on {info.base_name!r} (weights {info.base_weights_id[:16]}), "
                           f"not on the draft {draft_name!r} (weights {weights_id[:16]}); use --draft {info.base_name} or another adapter")


def parse_adapter(text: str) -> AdapterInfo | None:
    """``""`` (no adapter) or the folder of a finished `specdyn distill` training, read and hashed now."""
    if not text:
        return None
    path = Path(text).expanduser().resolve()
    if not path.is_dir():
        raise SpecdynError(f"--draft-adapter {text}: no such folder (give the --out folder of `specdyn distill`)")
    return read_adapter(path)


def check_drafter_adapter(drafter, adapter: AdapterInfo | None) -> None:
    """Refuse an adapter for a drafter that runs no draft model (``drafter``: a :class:`~specdyn.specs.DrafterSpec`)."""
    if adapter is not None and not drafter.uses_draft_model:
        raise SpecdynError(f"--draft-adapter applies to the draft model, but the {drafter.KIND} drafter uses none "
                           f"(use --drafter model, or leave out --draft-adapter)")
