"""Token-frequency lists for truncated-vocabulary drafting (FR-Spec, ``--drafter model:vocab=K``).

A draft head over the K most frequent tokens only is much cheaper than one over the whole vocabulary;
verification still uses the target's full vocabulary, so the output is unchanged and only acceptance
moves. Which tokens are "most frequent" is a list made once per tokenizer, offline, from text that has
nothing to do with the evaluation prompts (see ``scripts/token_frequencies.py`` and ``docs/models.md``).

A list is a JSON file::

    {"format": 1, "tokenizer": "<fingerprint>", "tokenizer_size": 151665, "name": "...",
     "source": {... where the counts came from ...}, "tokens": [id, ...], "counts": [n, ...]}

``tokens`` holds ids by descending count (ties: lower id first) after the tokenizer's special tokens,
which always come first (a draft must be able to propose the end of a turn). Lists ship in
``specdyn/data/token_lists/`` and may be added under ``<cache>/token_lists/``; the one whose fingerprint
matches the draft's tokenizer is used. Pure Python (no torch).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from specdyn.cachedir import cache_root
from specdyn.errors import SpecdynError

LIST_DIR = "token_lists"
FORMAT = 1
PACKAGE_DIR = Path(__file__).resolve().parent / "data" / LIST_DIR


@dataclass(frozen=True)
class TokenList:
    """A token-frequency list read from ``path``: ids by descending frequency for one tokenizer."""

    tokenizer: str  # fingerprint of the tokenizer's vocabulary (:func:`fingerprint`)
    name: str
    tokens: tuple[int, ...]
    source: dict
    path: Path

    def top(self, k: int) -> list[int]:
        """The ``k`` most frequent token ids (special tokens included)."""
        if not 1 <= k <= len(self.tokens):
            raise SpecdynError(f"vocab={k}: the token list {self.path.name} holds {len(self.tokens)} tokens "
                               f"(use 1 <= K <= {len(self.tokens)})")
        return list(self.tokens[:k])


def fingerprint(vocab: dict[str, int]) -> str:
    """sha256 of a tokenizer's token -> id mapping (added tokens included), as 16 hex digits."""
    text = json.dumps(sorted(vocab.items(), key=lambda kv: kv[1]), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def list_dirs() -> list[Path]:
    """Where lists are looked for: the package's data, then the cache."""
    return [PACKAGE_DIR, cache_root() / LIST_DIR]


def read_list(path: Path) -> TokenList:
    """A :class:`TokenList` from its JSON file; SpecdynError when it is not one."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if raw.get("format") != FORMAT or not all(type(t) is int for t in raw["tokens"]):
            raise ValueError("not a format-1 token list")
        return TokenList(str(raw["tokenizer"]), str(raw.get("name", path.stem)), tuple(raw["tokens"]),
                         dict(raw.get("source", {})), path)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SpecdynError(f"token list {path} is unreadable ({exc})") from None


@cache
def _lists_in(folder: Path, stamp: tuple) -> tuple[TokenList, ...]:  # stamp: invalidates on change
    return tuple(read_list(p) for p in sorted(folder.glob("*.json")))


def available() -> list[TokenList]:
    """Every list in :func:`list_dirs`."""
    out: list[TokenList] = []
    for folder in list_dirs():
        files = sorted(folder.glob("*.json")) if folder.is_dir() else []
        out += _lists_in(folder, tuple((p.name, p.stat().st_mtime_ns) for p in files))
    return out


def find_list(vocab: dict[str, int], model: str = "the draft") -> TokenList:
    """The list made for this tokenizer vocabulary; SpecdynError saying how to make one otherwise."""
    key = fingerprint(vocab)
    for found in available():
        if found.tokenizer == key:
            return found
    raise SpecdynError(f"no token-frequency list for the tokenizer of {model} (fingerprint {key}) in "
                       f"{' or '.join(map(str, list_dirs()))}; make one with: python scripts/token_frequencies.py "
                       f"--model {model} (or drop vocab= from --drafter)")


def count_tokens(encode, texts: Iterable[str]) -> Counter:
    """How often each token id occurs when ``encode`` (text -> ids) tokenizes ``texts``."""
    counts: Counter = Counter()
    for text in texts:
        counts.update(encode(text))
    return counts


def ranked(counts: Counter, first: Iterable[int]) -> list[int]:
    """``first`` (in order), then every counted id by descending count, ties by id."""
    head = list(dict.fromkeys(first))
    seen = set(head)
    return head + sorted((t for t in counts if t not in seen), key=lambda t: (-counts[t], t))


def list_record(vocab: dict[str, int], name: str, counts: Counter, first: Iterable[int], source: dict,
                limit: int) -> dict:
    """The JSON form of a list over the ``limit`` most frequent tokens."""
    tokens = ranked(counts, first)[:limit]
    return {"format": FORMAT, "tokenizer": fingerprint(vocab), "tokenizer_size": len(vocab), "name": name,
            "source": source, "tokens": tokens, "counts": [counts.get(t, 0) for t in tokens]}
