"""``manifest.json``, typed: parsed once from its bytes (every problem is a one-line error) and written
from the same dataclass.

The manifest records the run's settings twice over: ``config`` holds the canonical text of every setting,
``trees`` the trees those texts resolved to (spec text and rank paths, for ``tree`` and for each file of
``domain_trees``), so readers never open a ``paths:`` file that may have changed or vanished since; and
``draft_adapter`` the adapter merged into the draft (path, id, training domain, base weights id) or null.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from specdyn.config import RunConfig
from specdyn.errors import SpecdynError
from specdyn.execution import Session, parse_session


class RunStatus(Enum):
    """Where the run stands: the writer sets ``running`` before the first record, ``complete`` after the last."""

    RUNNING = "running"
    COMPLETE = "complete"


@dataclass(frozen=True)
class Counts:
    """Rows the run wrote, per table (recorded when it completes)."""

    prompts: int
    steps: int
    nodes: int


@dataclass(frozen=True)
class ModelRecord:
    """A loaded model: its name as configured and an id of its weights (see ``docs/models.md``)."""

    name: str
    weights_id: str


@dataclass(frozen=True)
class RunManifest:
    """Everything ``manifest.json`` says. Only ``status`` is required of a hand-made manifest; readers that
    need more (budget needs ``config``) say so."""

    status: RunStatus
    config: RunConfig | None = None
    suite_sha256: str | None = None
    models: dict[str, ModelRecord] = field(default_factory=dict)
    started: str | None = None
    finished: str | None = None
    counts: Counts | None = None
    machine: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    sessions: list[Session] = field(default_factory=list)  # one per start or resume; not part of identity

    @property
    def in_progress(self) -> bool:
        return self.status is not RunStatus.COMPLETE

    def identity(self) -> dict:
        """What makes two runs the same run: the settings, the resolved trees and the suite's content."""
        if self.config is None:
            return {"config": None, "trees": None, "draft_adapter": None, "suite_sha256": self.suite_sha256}
        return {"config": self.config.to_json(), "trees": self.config.trees_record(),
                "draft_adapter": self.config.adapter_record(), "suite_sha256": self.suite_sha256}

    def require_config(self, where: str) -> RunConfig:
        if self.config is None:
            raise SpecdynError(f"{where}: manifest.json records no config (not written by `specdyn run`)")
        return self.config

    def to_json(self) -> dict:
        return {
            **self.identity(),
            "models": {role: vars(m) for role, m in self.models.items()},
            "machine": self.machine, "versions": self.versions, "started": self.started,
            "finished": self.finished, "status": self.status.value,
            "counts": None if self.counts is None else vars(self.counts),
            "sessions": [s.to_json() for s in self.sessions],
        }


def parse_manifest(data: bytes, where: Path) -> RunManifest:
    """A :class:`RunManifest` from the bytes of ``where``; SpecdynError (one line) on anything malformed."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise SpecdynError(f"{where} is not UTF-8 text (a hand-edited or damaged manifest)") from None
    except json.JSONDecodeError as exc:
        raise SpecdynError(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise SpecdynError(f"{where} must hold a JSON object")
    get = _Fields(raw, where)
    return RunManifest(
        status=_status(raw.get("status"), where),
        config=_config(raw, where),
        suite_sha256=get.optional("suite_sha256", str),
        models={role: _model(m, f"{where} models.{role}") for role, m in get.mapping("models").items()},
        started=get.optional("started", str),
        finished=get.optional("finished", str),
        counts=_counts(raw.get("counts"), where),
        machine=get.mapping("machine"),
        versions=get.mapping("versions"),
        sessions=[parse_session(s, f"{where} sessions[{i}]") for i, s in enumerate(get.optional("sessions", list) or [])],
    )


@dataclass
class _Fields:
    raw: dict
    where: Path

    def optional(self, key: str, kind: type):
        value = self.raw.get(key)
        if value is not None and type(value) is not kind:
            raise SpecdynError(f"{self.where}: {key} must be {kind.__name__} or null, got {value!r}")
        return value

    def mapping(self, key: str) -> dict:
        value = self.optional(key, dict)
        return value or {}


def _status(value, where: Path) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError:
        known = ", ".join(s.value for s in RunStatus)
        raise SpecdynError(f"{where}: status must be one of {known} (got {value!r})") from None


def _config(raw: dict, where: Path) -> RunConfig | None:
    config = raw.get("config")
    if config is None:
        return None
    if not isinstance(config, dict):
        raise SpecdynError(f"{where}: config must be a JSON object, got {type(config).__name__}")
    return RunConfig.from_record(config, raw.get("trees"), f"{where} config", raw.get("draft_adapter"))


def _model(value, where: str) -> ModelRecord:
    if not isinstance(value, dict) or not all(isinstance(value.get(k), str) for k in ("name", "weights_id")):
        raise SpecdynError(f"{where}: expected {{\"name\": ..., \"weights_id\": ...}}, got {value!r}")
    return ModelRecord(value["name"], value["weights_id"])


def _counts(value, where: Path) -> Counts | None:
    if value is None:
        return None
    keys = ("prompts", "steps", "nodes")
    if not isinstance(value, dict) or not all(type(value.get(k)) is int for k in keys):
        raise SpecdynError(f"{where}: counts must hold integer prompts, steps and nodes, got {value!r}")
    return Counts(*(value[k] for k in keys))
