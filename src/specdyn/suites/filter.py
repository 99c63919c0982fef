"""Subsets of a suite: some domains only, or the prompts a distilled draft was not trained on.

A prompt's *source item* is the benchmark item it was made from: its id, except that a default-suite math
id (``math/gsm_symbolic-12-seed0``) drawn with another seed (``...-seed1``) is a new instance of the same
GSM-Symbolic generator (the same template with other names and numbers), so the ``-seed<N>`` suffix is
dropped. Held out from a training means: no shared source item with any of its training prompts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from specdyn.errors import SpecdynError
from specdyn.suites.prompts import Prompt

SEED_SUFFIX = re.compile(r"-seed-?\d+$")


def source_item(prompt_id: str) -> str:
    """The benchmark item behind ``prompt_id`` (see the module docstring)."""
    return SEED_SUFFIX.sub("", prompt_id)


@dataclass
class DomainCount:
    """One domain of a filtered suite: prompts read, dropped as trained on, kept."""

    domain: str
    total: int
    trained: int
    kept: int


@dataclass
class Filtered:
    prompts: list[Prompt]
    counts: list[DomainCount]


def filter_suite(prompts: list[Prompt], domains: list[str] | None = None, trained_ids: set[str] = frozenset()) -> Filtered:
    """The prompts of ``domains`` (all when None) whose source item is not that of a ``trained_ids`` prompt,
    in suite order, with per-domain counts; an error for an unknown domain or when nothing is left."""
    have = list(dict.fromkeys(p.domain for p in prompts))
    unknown = sorted(set(domains or ()) - set(have))
    if unknown:
        raise SpecdynError(f"the suite has no domain {', '.join(map(repr, unknown))}; it has: {', '.join(have)}")
    items = {source_item(i) for i in trained_ids}
    chosen = [p for p in prompts if domains is None or p.domain in domains]
    kept = [p for p in chosen if source_item(p.id) not in items]
    kept_ids = {p.id for p in kept}
    counts = [_count(d, [p for p in chosen if p.domain == d], kept_ids) for d in have if domains is None or d in domains]
    if not kept:
        raise SpecdynError("no prompt is left after filtering")
    return Filtered(kept, counts)


def _count(domain: str, group: list[Prompt], kept_ids: set[str]) -> DomainCount:
    kept = sum(p.id in kept_ids for p in group)
    return DomainCount(domain, len(group), len(group) - kept, kept)
