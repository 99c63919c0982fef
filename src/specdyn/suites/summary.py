"""Summaries of a suite: prompts per domain and their lengths (characters, words, chat tokens)."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass

from specdyn.errors import SpecdynError
from specdyn.safetext import visible
from specdyn.suites.prompts import Prompt

TokenCounter = Callable[[list[dict[str, str]]], int]


@dataclass
class Stats:
    min: float
    median: float
    max: float

    @classmethod
    def of(cls, values: list[int]) -> Stats:
        return cls(min(values), statistics.median(values), max(values))

    def __str__(self) -> str:
        return f"{self.min:g}/{self.median:g}/{self.max:g}"


@dataclass
class DomainSummary:
    domain: str
    count: int
    sources: list[str]
    chars: Stats
    words: Stats
    tokens: Stats | None = None  # with a tokenizer: chat-templated prompt length


def _summary(domain: str, prompts: list[Prompt], count_tokens: TokenCounter | None) -> DomainSummary:
    sources = sorted({p.source for p in prompts})
    chars = Stats.of([len(p.text) for p in prompts])
    words = Stats.of([len(p.text.split()) for p in prompts])
    tokens = Stats.of([count_tokens(p.messages) for p in prompts]) if count_tokens else None
    return DomainSummary(domain, len(prompts), sources, chars, words, tokens)


def summarize(prompts: list[Prompt], count_tokens: TokenCounter | None = None) -> list[DomainSummary]:
    """One summary per domain, in order of first appearance."""
    groups: dict[str, list[Prompt]] = {}
    for prompt in prompts:
        groups.setdefault(prompt.domain, []).append(prompt)
    return [_summary(domain, group, count_tokens) for domain, group in groups.items()]


def format_table(summaries: list[DomainSummary]) -> str:
    """A plain-text table, lengths as min/median/max, with a total row; names shown with :func:`visible`."""
    header = ["domain", "prompts", "sources", "chars", "words"] + (["tokens"] if summaries[0].tokens else [])
    rows = [header]
    for s in summaries:
        rows.append([visible(s.domain), str(s.count), visible(",".join(s.sources)), str(s.chars), str(s.words)])
        rows[-1] += [str(s.tokens)] if s.tokens else []
    rows.append(["total", str(sum(s.count for s in summaries))])
    widths = [max(len(row[i]) for row in rows if i < len(row)) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines) + "\n(lengths: min/median/max)"


def chat_token_counter(name_or_path: str) -> TokenCounter:
    """Count tokens as the engine will: ``apply_chat_template(messages, add_generation_prompt=True)``."""
    from transformers import AutoTokenizer  # heavy import, only when asked for

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    except Exception as exc:  # noqa: BLE001 (transformers raises OSError, ValueError, HTTP errors...)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SpecdynError(f"cannot load tokenizer {name_or_path!r}: {first}") from None
    if not getattr(tokenizer, "chat_template", None):
        raise SpecdynError(f"tokenizer {name_or_path!r} has no chat template")

    def count(messages: list[dict[str, str]]) -> int:
        ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True, return_dict=False)
        return len(ids["input_ids"] if isinstance(ids, dict) else ids)

    return count
