"""Prompts and suite files: the data model, JSONL reading/writing and validation.

A suite file is JSONL, one prompt per line::

    {"id": "code/HumanEval-12", "domain": "code", "source": "HumanEval",
     "messages": [{"role": "user", "content": "..."}], "metadata": {...}}

``id``, ``domain``, ``source`` and ``messages`` are required, ``metadata`` (an object) is optional.
Domains are free-form strings. ``messages`` are chat messages before the model's chat template.
Every string must be encodable as UTF-8 (no lone surrogates such as a JSON ``"\\ud800"``).
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
MAX_METADATA_DEPTH = 100  # nesting levels of lists and objects inside metadata


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


def _describe(value: Any) -> str:
    """A short description of a bad value: strings quoted (cut at 60 characters), else the type."""
    return f"{value[:60]!r}" if isinstance(value, str) else f"a {type(value).__name__}"


def _check_encodable(name: str, text: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecdynError(f"{name} holds {text[exc.start]!r} at character {exc.start + 1}, a lone surrogate "
                           "that cannot be encoded as UTF-8; fix the text (e.g. a broken \\u escape)") from None


def _require_text(name: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        raise SpecdynError(f"{name} must be a non-empty string, got {_describe(value)}")
    _check_encodable(name, value)


def _check_message(n: int, message: Any) -> None:
    if not isinstance(message, dict) or set(message) != MESSAGE_KEYS:
        raise SpecdynError(f"message {n} must be an object with exactly the keys 'role' and 'content'")
    if message["role"] not in [role.value for role in Role]:
        allowed = ", ".join(role.value for role in Role)
        raise SpecdynError(f"message {n} has unknown role {_describe(message['role'])} (allowed: {allowed})")
    if not isinstance(message["content"], str) or not message["content"].strip():
        raise SpecdynError(f"message {n} ({message['role']}) has empty content")
    _check_encodable(f"message {n} content", message["content"])


def _check_metadata(value: Any, name: str = "metadata", depth: int = 0) -> None:
    """Every key and string inside metadata is encodable as UTF-8, and nesting is bounded."""
    if depth > MAX_METADATA_DEPTH:
        raise SpecdynError(f"metadata is nested more than {MAX_METADATA_DEPTH} levels deep")
    if isinstance(value, str):
        _check_encodable(name, value)
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str):
                _check_encodable(f"a key of {name}", key)
            _check_metadata(item, f"{name}[{key!r}]", depth + 1)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _check_metadata(item, f"{name}[{i}]", depth + 1)


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
    _check_metadata(prompt.metadata)


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
    except RecursionError:
        raise SpecdynError(f"{where}: JSON nested too deeply (metadata may nest {MAX_METADATA_DEPTH} levels)") from None
    except ValueError as exc:  # an integer longer than sys.get_int_max_str_digits()
        raise SpecdynError(f"{where}: number too long ({str(exc).split(';')[0]})") from None
    if not isinstance(record, dict):
        raise SpecdynError(f"{where}: expected a JSON object, got {type(record).__name__}")
    try:
        return Prompt.from_record(record)
    except SpecdynError as exc:
        raise SpecdynError(f"{where}: {exc}") from None


def _read_text(path: Path) -> str:
    """The file's text (a leading byte-order mark dropped); an error names the line of a non-UTF-8 byte."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SpecdynError(f"cannot read suite {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise SpecdynError(f"{path} line {line}: byte 0x{data[exc.start]:02x} is not valid UTF-8; "
                           "save the suite as UTF-8") from None


def load_suite(path: str | os.PathLike) -> list[Prompt]:
    """Read and validate a JSONL suite file; errors name the file and line."""
    path = Path(path)
    text = _read_text(path)
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


def check_suite_path(path: str | os.PathLike) -> Path:
    """``path`` as a Path, or SpecdynError if it cannot name a new suite file (empty, a folder, or in a
    missing or read-only folder). Call it before building a suite, so nothing is built in vain."""
    if not str(path).strip():
        raise SpecdynError("the suite file name is empty; give a file name such as suite.jsonl")
    target = Path(path)
    if str(path).endswith(("/", os.sep)) or target.is_dir():
        raise SpecdynError(f"{path} names a folder; give a file name such as {target / 'suite.jsonl'}")
    if not target.parent.is_dir():
        raise SpecdynError(f"cannot write suite {path}: no such folder {target.parent}")
    if not os.access(target.parent, os.W_OK):
        raise SpecdynError(f"cannot write suite {path}: folder {target.parent} is not writable")
    return target


def write_suite(prompts: list[Prompt], path: str | os.PathLike) -> None:
    """Validate, then write atomically (temporary file + rename): never a half-written suite."""
    path = check_suite_path(path)
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
