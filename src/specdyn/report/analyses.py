"""Acceptance against three quantities a reviewer asks about, each in bins with prompt-bootstrap CIs:

- *draft calibration*: the share of nodes accepted (``accepted_local``) within bins of the draft's
  probability of the token (``draft_prob``, temperature 1); a calibrated greedy draft sits near the
  diagonal;
- *position in the output*: α among the trials of steps whose ``output_pos`` (tokens generated before
  the step) falls in each bin;
- *draft-target distance*: α among trials whose position has a total variation distance
  ``draft_target_tv`` in each bin; 1 − TV is the chance standard speculative sampling accepts a token
  drawn from the draft there (the continuous counterpart of α).

Runs recorded before a field existed, and drafters without a distribution (``draft_prob`` 1.0,
``draft_target_tv`` NaN), get an "unavailable" entry saying why.
"""

from __future__ import annotations

import numpy as np

from specdyn.report.binned import BinnedRows, add_binned, read_binned, unavailable
from specdyn.report.notions import Measure
from specdyn.report.prepare import Bins, Prepared
from specdyn.report.schema import Analyses, Binned
from specdyn.report.stats import Group, SumsLayout

UNIT_EDGES = np.linspace(0.0, 1.0, 11)  # probability and TV bins of width 0.1
POSITION_BINS = 8


def _calibration(prep: Prepared) -> BinnedRows | str:
    nodes = prep.run.nodes
    if nodes.draft_prob is None:
        return "draft_prob"
    if np.all(nodes.draft_prob == 1.0):
        return "unavailable for this run (no draft distribution: the drafter records draft_prob = 1)"
    return BinnedRows("calib", nodes.prompt, Bins.fixed(nodes.draft_prob, UNIT_EDGES), nodes.draft_prob,
                      {Measure.LOCAL: nodes.accepted_local.astype(float)})


def _position(prep: Prepared) -> BinnedRows | str:
    pos = prep.run.steps.output_pos
    if pos is None:
        return "output_pos"
    x = pos[prep.trial_step].astype(float)
    top = max(float(pos.max()) + 1.0, POSITION_BINS)
    edges = np.round(np.linspace(0.0, top, POSITION_BINS + 1))
    return BinnedRows("pos", prep.trials.prompt, Bins.fixed(x, edges), x,
                      {Measure.LEVEL: prep.trials.success.astype(float)})


def _distance(prep: Prepared) -> BinnedRows | str:
    tv = prep.run.nodes.draft_target_tv
    if tv is None:
        return "draft_target_tv"
    x = prep.trial_x(tv)
    if not np.isfinite(x).any():
        return "unavailable for this run (no draft distribution: draft_target_tv is NaN for this drafter)"
    return BinnedRows("tv", prep.trials.prompt, Bins.fixed(x, UNIT_EDGES), x,
                      {Measure.LEVEL: prep.trials.success.astype(float)})


ANALYSES = {  # field of Analyses: (rows, binned quantity, unit of the counts)
    "calibration": (_calibration, "draft_prob", "nodes"),
    "output_position": (_position, "output_pos", "trials"),
    "draft_target_tv": (_distance, "draft_target_tv", "trials"),
}


AnalysisRows = dict  # field of Analyses -> its BinnedRows, or the missing field / why it does not apply


def binned_rows(prep: Prepared) -> AnalysisRows:
    """Every analysis's rows (or why there are none), computed once for all groups."""
    return {name: rows_of(prep) for name, (rows_of, _, _) in ANALYSES.items()}


def add_sums(layout: SumsLayout, rows: AnalysisRows) -> None:
    for found in rows.values():
        if isinstance(found, BinnedRows):
            add_binned(layout, found)


def _one(group: Group, found: BinnedRows | str, x: str, unit: str) -> Binned:
    if isinstance(found, str):  # the missing field, or why the analysis does not apply
        return unavailable(x, unit, found, None if found == x else found)
    return read_binned(group, found, x, unit)


def analyses(group: Group, rows: AnalysisRows) -> Analyses:
    return Analyses(**{name: _one(group, rows[name], x, unit) for name, (_, x, unit) in ANALYSES.items()})
