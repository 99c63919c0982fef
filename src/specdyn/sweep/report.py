"""The sweep report: the finished cells side by side on every domain — accepted length, node-local
acceptance, measured tokens/s — from :func:`specdyn.budget.measured.domain_stats` (the same numbers
``specdyn compare`` shows), as ``report.html`` (text escaped by :mod:`specdyn.safetext`) and
``report.json``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from specdyn.budget.measured import DomainStats, domain_stats
from specdyn.files import write_text_atomic
from specdyn.report.render import Heading, Paragraph, Table, to_html
from specdyn.rundir.reader import load_run
from specdyn.sweep.runner import CellState, CellStatus

REPORT_HTML = "report.html"
REPORT_JSON = "report.json"
METRICS = ("acc/step: drafted tokens accepted per step, bonus not counted; +bonus adds the target's bonus token "
           "(tau). local: share of nodes whose token is the target's choice at its parent (node-local). "
           "tokens/s: generated tokens over the prompts' summed wall seconds (per-prompt throughput; batched "
           "prompts overlap, and cells decoded at the same time on one machine slow each other down).")


@dataclass
class Measured:
    """A complete cell's measurements on each of its domains."""

    state: CellState
    domains: dict[str, DomainStats]


@dataclass
class SweepReport:
    html: Path
    json: Path


def measure(root: Path, states: list[CellState]) -> list[Measured]:
    """Every complete cell's per-domain measurements, read through the run-folder reader."""
    out = []
    for state in states:
        if state.status is CellStatus.COMPLETE:
            run = load_run(root / state.folder)
            out.append(Measured(state, {d: domain_stats(run, d) for d in run.domains}))
    return out


def write_report(root: Path, dimensions: list[str], states: list[CellState]) -> SweepReport:
    measured = measure(root, states)
    domains = sorted({d for m in measured for d in m.domains})
    files = SweepReport(root / REPORT_HTML, root / REPORT_JSON)
    write_text_atomic(files.html, to_html(_blocks(dimensions, states, measured, domains), title="specdyn sweep"))
    write_text_atomic(files.json, json.dumps(_document(dimensions, states, measured, domains), indent=2) + "\n")
    return files


def _blocks(dimensions: list[str], states: list[CellState], measured: list[Measured], domains: list[str]) -> list:
    done = sum(s.status is CellStatus.COMPLETE for s in states)
    blocks = [Heading(1, "specdyn sweep"), Paragraph(f"{done} of {len(states)} cells complete. {METRICS}")]
    for domain in domains:
        rows = [_row(m.state, m.domains[domain]) for m in measured if domain in m.domains]
        blocks += [Heading(2, domain), Table([*dimensions, *_COLUMNS], rows)]
    blocks += [Heading(2, "cells"), Table(["cell", *dimensions, "status", "folder", "error"],
                                          [_cell_row(s) for s in states])]
    return blocks


_COLUMNS = ("prompts", "nodes/step", "acc/step", "acc/step +bonus", "local", "tokens/s")


def _row(state: CellState, s: DomainStats) -> list[str]:
    return [*state.cell.values.values(), str(s.prompts), f"{s.nodes_per_step:.1f}", f"{s.accepted_per_step:.3f}",
            f"{s.accepted_per_step + 1:.3f}", f"{s.local_acceptance:.3f}", f"{s.tokens_per_second:.2f}"]


def _cell_row(state: CellState) -> list[str]:
    return [str(state.cell.index), *state.cell.values.values(), state.status.value, state.folder, state.error or ""]


def _document(dimensions: list[str], states: list[CellState], measured: list[Measured], domains: list[str]) -> dict:
    def entry(m: Measured, d: str) -> dict:
        s = m.domains[d]
        return {"cell": m.state.cell.index, "values": m.state.cell.values, "folder": m.state.folder,
                **asdict(s), "accepted_per_step_with_bonus": s.accepted_per_step + 1}

    return {"dimensions": dimensions, "metrics": METRICS,
            "cells": [{k: v for k, v in s.to_json().items() if k != "config"} for s in states],
            "domains": {d: [entry(m, d) for m in measured if d in m.domains] for d in domains}}
