"""The draft x domain matrix of `specdyn compare --matrix`: one row per run, labelled by the draft it decoded
with (``base``, ``distilled:DOMAIN@ID`` for a merged `specdyn distill` adapter, or another drafter's spec),
one column per evaluation domain. Each cell holds per-level acceptance α, accepted tokens per step and
tokens/s with 95% prompt-bootstrap intervals, and each row's paired change from the base row.

α is the report's per-level acceptance (:mod:`specdyn.report.levels`): a trial is a tree position the
greedy walk reached that has drafted children, a success when one of them was accepted; pooled over the
trials of the cell's prompts (and per depth). Intervals resample prompts: a cell's prompt sums are
resampled together (:class:`~specdyn.report.stats.Resampled`), and a change from the base row draws the
same resample of the prompts both runs decoded (paired). Pure: from the run-folder reader's records.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np

from specdyn.budget.drafters import RunDrafter
from specdyn.report.levels import LevelTrials, add_level_sums, alpha, alpha_by_depth, level_trials, trial_table
from specdyn.report.stats import Resampled, SumsLayout, ratio
from specdyn.rundir.reader import RunData
from specdyn.safetext import markdown
from specdyn.stats import DEFAULT_RESAMPLES, LEVEL, Estimate, Sampled, resample_counts

ACCEPTED, STEPS, TOKENS, SECONDS = "matrix:accepted", "matrix:steps", "matrix:tokens", "matrix:seconds"


class Metric(Enum):
    """What a cell measures (the JSON keys)."""

    ALPHA = "alpha"  # per-level acceptance, pooled over depths
    ACCEPTED = "accepted_per_step"  # drafted tokens accepted per step, bonus not counted
    SPEED = "tokens_per_second"  # generated tokens / prompt wall seconds (ratio of sums)


TITLES = {
    Metric.ALPHA: "α: per-level acceptance (reached positions with children; success: a child accepted)",
    Metric.ACCEPTED: "accepted tokens per step (drafted tokens; bonus not counted)",
    Metric.SPEED: "tokens/s (generated tokens / prompt wall seconds)",
}
FORMATS = {Metric.ALPHA: "+.3f", Metric.ACCEPTED: "+.2f", Metric.SPEED: "+.1%"}  # of the changes


@dataclass
class RunSums:
    """One run's per-prompt sufficient sums (rows: ``run.prompts``) for the prompt bootstrap."""

    run: RunData
    layout: SumsLayout
    sums: np.ndarray  # [prompts, columns]
    levels: LevelTrials

    @classmethod
    def of(cls, run: RunData) -> RunSums:
        n = len(run.prompts.ids)
        levels = level_trials(trial_table(run.nodes, run.nodes.parent_reached), n)
        layout = SumsLayout(n)
        add_level_sums(layout, levels)
        layout.add(ACCEPTED, np.bincount(run.steps.prompt, weights=run.steps.accepted, minlength=n))
        for name, values in ((STEPS, run.prompts.steps), (TOKENS, run.prompts.output_tokens), (SECONDS, run.prompts.seconds)):
            layout.add(name, values)
        return cls(run, layout, layout.matrix(), levels)

    def rows_of(self, domain: str) -> dict[str, int]:
        """prompt id -> row, for the prompts of ``domain``."""
        d = self.run.domains.index(domain)
        return {self.run.prompts.ids[i]: int(i) for i in np.flatnonzero(self.run.prompts.domain == d)}

    def group(self, rows: list[int], weights: np.ndarray) -> Resampled:
        """The sums of ``rows`` on the data and under ``weights`` (resamples x rows multiplicities)."""
        sub = self.sums[rows]
        return Resampled(self.layout, sub.sum(axis=0), weights @ sub)


def metrics(group: Resampled) -> dict[Metric, Sampled]:
    """α, accepted tokens per step and tokens/s of a group of prompts, on the data and every resample."""
    per_step = lambda g: ratio(g(ACCEPTED).sum(axis=-1), g(STEPS).sum(axis=-1))  # noqa: E731
    speed = lambda g: ratio(g(TOKENS).sum(axis=-1), g(SECONDS).sum(axis=-1))  # noqa: E731
    return {Metric.ALPHA: alpha(group), Metric.ACCEPTED: group.sample(per_step), Metric.SPEED: group.sample(speed)}


def change(a: dict[Metric, Sampled], b: dict[Metric, Sampled]) -> dict[Metric, Sampled]:
    """``a`` minus ``b`` for α and accepted tokens per step; ``a / b - 1`` (relative) for tokens/s."""
    out = {m: Sampled(a[m].point - b[m].point, a[m].boot - b[m].boot) for m in (Metric.ALPHA, Metric.ACCEPTED)}
    s = Metric.SPEED
    out[s] = Sampled(float(ratio(a[s].point, b[s].point)) - 1, ratio(a[s].boot, b[s].boot) - 1)
    return out


@dataclass
class Cell:
    """One run on one domain. ``change``: the run minus the base row (see :func:`change`) over ``shared``
    prompts both decoded, ``paired`` when there were at least two (else independent resamples)."""

    prompts: int
    values: dict[Metric, Estimate]
    alpha_by_depth: dict[int, Estimate]
    change: dict[Metric, Estimate] | None = None
    shared: int = 0
    paired: bool = False


@dataclass
class Row:
    """One run: its label (the draft), its folder as given, its drafter, and its cells by domain."""

    label: str
    run: str
    drafter: RunDrafter
    cells: dict[str, Cell]

    def trained_on(self, domain: str) -> bool:
        return self.drafter.adapter is not None and self.drafter.adapter.domain == domain


@dataclass
class Matrix:
    domains: list[str]
    rows: list[Row]
    base: str | None  # label of the base row (the first run with the base draft and the model drafter)
    resamples: int


def _estimates(sampled: dict) -> dict:
    return {k: s.estimate() for k, s in sampled.items()}


def _cell(sums: RunSums, domain: str, rng: np.random.Generator, resamples: int) -> Cell:
    rows = list(sums.rows_of(domain).values())
    group = sums.group(rows, resample_counts(len(rows), resamples, rng))
    return Cell(len(rows), _estimates(metrics(group)), _estimates(alpha_by_depth(group, sums.levels)))


def _add_change(cell: Cell, a: RunSums, b: RunSums, domain: str, rng: np.random.Generator, resamples: int) -> None:
    """Set ``cell.change`` to run ``a`` against run ``b`` on ``domain``, paired over their shared prompts."""
    ia, ib = a.rows_of(domain), b.rows_of(domain)
    common = sorted(ia.keys() & ib.keys())
    cell.shared, cell.paired = len(common), len(common) >= 2
    rows_a, rows_b = ([ia[i] for i in common], [ib[i] for i in common]) if cell.paired else (list(ia.values()), list(ib.values()))
    wa = resample_counts(len(rows_a), resamples, rng)
    wb = wa if cell.paired else resample_counts(len(rows_b), resamples, rng)
    cell.change = _estimates(change(metrics(a.group(rows_a, wa)), metrics(b.group(rows_b, wb))))


def _cells(sums: RunSums, domains: list[str], base: RunSums | None, rng, resamples: int) -> dict[str, Cell]:
    cells = {}
    for domain in (d for d in domains if d in sums.run.domains):
        cells[domain] = _cell(sums, domain, rng, resamples)
        if base is not None and domain in base.run.domains:
            _add_change(cells[domain], sums, base, domain, rng, resamples)
    return cells


def _row_labels(drafters: list[RunDrafter], labels: list[str]) -> list[str]:
    names = [d.label for d in drafters]
    return [f"{n} ({lab})" if names.count(n) > 1 else n for n, lab in zip(names, labels)]


def build_matrix(runs: list[RunData], labels: list[str], resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Matrix:
    """The matrix of ``runs`` (rows, in the order given) over every domain any of them decoded (sorted)."""
    sums = [RunSums.of(r) for r in runs]
    drafters = [RunDrafter.of(r.manifest.require_config(lab)) for r, lab in zip(runs, labels)]
    names = _row_labels(drafters, labels)
    base = next((k for k, d in enumerate(drafters) if d.is_base), None)
    domains = sorted({d for r in runs for d in r.domains})
    rng = np.random.default_rng(seed)
    rows = [Row(names[k], labels[k], drafters[k], _cells(s, domains, sums[base] if base not in (None, k) else None, rng, resamples))
            for k, s in enumerate(sums)]
    return Matrix(domains, rows, None if base is None else names[base], resamples)


# --------------------------------------------------------------------------------------------------
# Output


def _interval(e: Estimate, fmt: str) -> str:
    return f"{format(e.value, fmt)} [{format(e.ci_low, fmt)}, {format(e.ci_high, fmt)}]"


def _table(matrix: Matrix, title: str, text) -> list[str]:
    """A markdown table: rows = runs, columns = domains, cells ``text(row, domain, cell)``; * marks an
    adapter on its training domain."""
    lines = [f"### {title}", "", "| draft | run | " + " | ".join(markdown(d) for d in matrix.domains) + " |",
             "|" + "---|" * (len(matrix.domains) + 2)]
    for row in matrix.rows:
        cells = [text(row, d, row.cells[d]) + (" \\*" if row.trained_on(d) else "") if d in row.cells else "–"
                 for d in matrix.domains]
        lines.append(f"| {markdown(row.label)} | {markdown(row.run)} | " + " | ".join(cells) + " |")
    return lines + [""]


def _value_tables(matrix: Matrix) -> list[str]:
    fmts = {Metric.ALPHA: ".3f", Metric.ACCEPTED: ".2f", Metric.SPEED: ".2f"}
    lines = []
    for m in Metric:
        lines += _table(matrix, TITLES[m], lambda r, d, c, m=m: f"{_interval(c.values[m], fmts[m])} ({c.prompts})")
    depth = lambda r, d, c: " · ".join(f"d{k} {e.value:.2f}" for k, e in sorted(c.alpha_by_depth.items()))  # noqa: E731
    return lines + _table(matrix, "α by depth of the tested children (d1 = children of the committed token)", depth)


def _change_tables(matrix: Matrix) -> list[str]:
    lines = []
    for m in Metric:
        text = lambda r, d, c, m=m: "–" if c.change is None else _interval(c.change[m], FORMATS[m])  # noqa: E731
        lines += _table(matrix, f"change from {markdown(matrix.base)}: {TITLES[m].split(' (')[0]}", text)
    return lines


def finding(row: Row, domain: str, cell: Cell) -> str:
    """One sentence: did this draft raise α on ``domain`` compared with the base row (interval above 0)?"""
    a, s = cell.change[Metric.ALPHA], cell.change[Metric.SPEED]
    word = "raised" if a.ci_low > 0 else "lowered" if a.ci_high < 0 else "did not clearly change"
    own = " (its training domain)" if row.trained_on(domain) else ""
    how = f"paired bootstrap over {cell.shared} shared prompts" if cell.paired else "unpaired bootstrap"
    return (f"{row.label} on {domain}{own}: {word} α ({a.value:+.3f}, 95% interval {a.ci_low:+.3f} to {a.ci_high:+.3f}); "
            f"tokens/s {s.value:+.1%} ({s.ci_low:+.1%} to {s.ci_high:+.1%}); {how}.")


def to_markdown(matrix: Matrix) -> str:
    """The matrix section of `specdyn compare --matrix`."""
    intro = (f"Rows: the draft each run decoded with (`base`: no adapter; `distilled:D@ID`: the adapter trained on "
             f"domain D merged in). Columns: evaluation domain. Cells: value [{LEVEL:.0%} interval, {matrix.resamples} "
             "prompt-bootstrap resamples] (prompts); \\* an adapter on its own training domain. Intervals are per cell, "
             "not adjusted for the number of cells.")
    lines = ["## Draft × domain matrix", "", intro, ""] + _value_tables(matrix)
    if matrix.base is None:
        return "\n".join(lines + ["No run decoded with the base draft and the model drafter: no changes computed.", ""])
    lines += _change_tables(matrix)
    found = [markdown(finding(r, d, c)) for r in matrix.rows for d, c in r.cells.items() if c.change is not None]
    return "\n".join(lines + [f"- {f}" for f in found] + [""])


def _cell_json(c: Cell) -> dict:
    out = {m.value: e.to_dict() for m, e in c.values.items()}
    return out | {"prompts": c.prompts, "alpha_by_depth": {str(k): e.to_dict() for k, e in c.alpha_by_depth.items()},
                  "change": None if c.change is None else {m.value: e.to_dict() for m, e in c.change.items()},
                  "shared_prompts": c.shared, "paired": c.paired}


def to_json(matrix: Matrix) -> dict:
    rows = [{"label": r.label, "run": r.run, "drafter": r.drafter.to_json(), "cells": {d: _cell_json(c) for d, c in r.cells.items()}}
            for r in matrix.rows]
    return {"domains": matrix.domains, "base": matrix.base, "resamples": matrix.resamples, "level": LEVEL, "rows": rows}
