"""Prompts and suite files: the data model, JSONL reading/writing and validation.

A suite file is JSONL, one prompt per line::

    {"id": "code/HumanEval-12", "domain": "code", "source": "HumanEval",
     "messages": [{"role": "user", "content": "..."}], "metadata": {...}}

``id``, ``domain``, ``source`` and ``messages`` are required, ``metadata`` (an object) is optional.
Domains are free-form strings. ``messages`` are chat messages before the model's chat template.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from specdyn.errors import SpecdynError

REQUIRED_FIELDS = ("id", "domain", "source", "messages")
OPTIONAL_FIELDS = ("metadata",)
MESSAGE_KEYS = frozenset({"role", "content"})


class Role(StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


@dataclass
class Prompt:
    """One prompt of a suite. ``messages`` is a list of ``{"role": ..., "content": ...}`` dicts."""

    id: str
    domain: str
    source: str
    messages: list[dict[str, str]]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_record(self) -> dict[str, Any]:
        return {
            "id": self.id, "domain": self.domain, "source": self.source,
            "messages": self.messages, "metadata": self.metadata,
        }  # fmt: skip

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Prompt:
        """Build a prompt from a parsed JSON object; raises SpecdynError on missing/unknown fields."""
        missing = [name for name in REQUIRED_FIELDS if name not in record]
        if missing:
            raise SpecdynError(f"missing field {', '.join(map(repr, missing))}")
        unknown = sorted(set(record) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
        if unknown:
            raise SpecdynError(f"unknown field {', '.join(map(repr, unknown))}")
        return cls(**{"metadata": {}, **record})

    @property
    def text(self) -> str:
        """All message contents joined by blank lines (for character/word counts)."""
        return "\n\n".join(m["content"] for m in self.messages)


def _require_text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise SpecdynError(f"{name} must be a non-empty string, got {value!r:.60}")


def _check_message(n: int, message: Any) -> None:
    if not isinstance(message, dict) or set(message) != MESSAGE_KEYS:
        raise SpecdynError(f"message {n} must be an object with exactly the keys 'role' and 'content'")
    if message["role"] not in [role.value for role in Role]:
        allowed = ", ".join(role.value for role in Role)
        raise SpecdynError(f"message {n} has unknown role {message['role']!r} (allowed: {allowed})")
    if not isinstance(message["content"], str) or not message["content"].strip():
        raise SpecdynError(f"message {n} ({message['role']}) has empty content")


def check_prompt(prompt: Prompt) -> None:
    """Raise SpecdynError (without location) if one prompt is malformed."""
    for name in REQUIRED_FIELDS[:3]:
        _require_text(name, getattr(prompt, name))
    if not isinstance(prompt.messages, list) or not prompt.messages:
        raise SpecdynError("empty prompt: 'messages' must be a non-empty list")
    for n, message in enumerate(prompt.messages, 1):
        _check_message(n, message)
    if prompt.messages[-1]["role"] != Role.USER:
        raise SpecdynError(f"last message must be from the user, not {prompt.messages[-1]['role']!r}")
    if not isinstance(prompt.metadata, dict):
        raise SpecdynError("metadata must be a JSON object")


def _check_at(where: str, prompt: Prompt, seen: dict[str, str]) -> None:
    """Check one prompt and its id's uniqueness; errors name ``where`` (a line or position)."""
    try:
        check_prompt(prompt)
    except SpecdynError as exc:
        raise SpecdynError(f"{where}: {exc}") from None
    if prompt.id in seen:
        raise SpecdynError(f"{where}: duplicate id {prompt.id!r} (first at {seen[prompt.id]})")
    seen[prompt.id] = where


def validate(prompts: Iterable[Prompt]) -> None:
    """Raise SpecdynError on the first malformed prompt, duplicate id, or an empty suite."""
    seen: dict[str, str] = {}
    for n, prompt in enumerate(prompts, 1):
        _check_at(f"prompt {n}", prompt, seen)
    if not seen:
        raise SpecdynError("suite has no prompts")


def _parse_line(line: str, where: str) -> Prompt:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise SpecdynError(f"{where}: malformed JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(record, dict):
        raise SpecdynError(f"{where}: expected a JSON object, got {type(record).__name__}")
    try:
        return Prompt.from_record(record)
    except SpecdynError as exc:
        raise SpecdynError(f"{where}: {exc}") from None


def load_suite(path: str | os.PathLike) -> list[Prompt]:
    """Read and validate a JSONL suite file; errors name the file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecdynError(f"cannot read suite {path}: {exc}") from None
    prompts: list[Prompt] = []
    seen: dict[str, str] = {}
    for n, line in enumerate(text.split("\n"), 1):  # not splitlines(): JSON may hold U+2028
        if line.strip():
            where = f"{path} line {n}"
            prompts.append(_parse_line(line, where))
            _check_at(where, prompts[-1], seen)
    if not prompts:
        raise SpecdynError(f"{path}: suite has no prompts")
    return prompts


def dumps_suite(prompts: list[Prompt]) -> str:
    """Validate and serialise prompts as JSONL text."""
    validate(prompts)
    try:
        return "".join(json.dumps(p.to_record(), ensure_ascii=False) + "\n" for p in prompts)
    except (TypeError, ValueError) as exc:
        raise SpecdynError(f"suite metadata is not JSON-serialisable: {exc}") from None


def write_suite(prompts: list[Prompt], path: str | os.PathLike) -> None:
    """Validate, then write atomically (temporary file + rename): never a half-written suite."""
    path = Path(path)
    text = dumps_suite(prompts)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SpecdynError(f"cannot write suite {path}: {exc}") from None
