"""Acceptance per prompt source (the suite's ``source`` field, e.g. HumanEval) and per category (the
suite's ``metadata.category``, e.g. MT-Bench's writing / roleplay / ...).

Each group's prompts are resampled on their own (the group is its own stratum), with the same per-prompt
sums as the domains, so its intervals are prompt-bootstrap intervals like every other.
"""

from __future__ import annotations

import numpy as np

from specdyn.report.acceptance import counts, level, per_step, rate
from specdyn.report.notions import Notion
from specdyn.report.prepare import Prepared
from specdyn.report.schema import Breakdown, BreakdownRow, Breakdowns
from specdyn.report.stats import Group, Resampler
from specdyn.rundir.reader import RunData
from specdyn.suites.prompts import Prompt


def categories(run: RunData, suite: list[Prompt] | None) -> list[str] | str:
    """Each finished prompt's category ('' when it has none), or why there are none."""
    if suite is None:
        return "unavailable for this run (no readable suite.jsonl in the run folder)"
    by_id = {p.id: p.metadata.get("category") for p in suite}
    found = [c if isinstance(c, str) else "" for c in (by_id.get(pid) for pid in run.prompts.ids)]
    return found if any(found) else "unavailable for this run (the suite gives no prompt a category)"


def _row(prep: Prepared, group: Group) -> BreakdownRow:
    domains = sorted(set(prep.run.prompts.domain[group.members].tolist()))
    n = counts(group)
    return BreakdownRow(
        domains=[prep.run.domains[d] for d in domains], prompts=len(group.members), nodes=n.nodes, trials=n.trials,
        acceptance_level=level(group).estimate(), acceptance_local=rate(group, Notion.LOCAL).estimate(),
        accept_prob=rate(group, Notion.PROB).estimate(), accepted_per_step=per_step(group).estimate())


def breakdown(prep: Prepared, resampler: Resampler, labels: list[str] | str,
              rng: np.random.Generator) -> Breakdown:
    """One row per non-empty label (prompts labelled '' are left out)."""
    if isinstance(labels, str):
        return Breakdown(labels)
    if not any(labels):
        return Breakdown("unavailable for this run (no prompt records one)")
    names = np.array(labels, dtype=object)
    return Breakdown(None, {name: _row(prep, resampler.group(np.flatnonzero(names == name), rng))
                            for name in sorted(set(labels) - {""})})


def breakdowns(prep: Prepared, resampler: Resampler, cats: list[str] | str, seed: int) -> Breakdowns:
    """Per source and per category; each uses its own seeded stream."""
    source_rng, category_rng = (np.random.default_rng(s) for s in np.random.SeedSequence([seed, 1]).spawn(2))
    return Breakdowns(breakdown(prep, resampler, list(prep.run.prompts.source), source_rng),
                      breakdown(prep, resampler, cats, category_rng))
