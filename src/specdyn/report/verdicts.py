"""Verdicts of the reference study's claims, and the rules that turn bootstrap evidence into one verdict.

Conventions (docs/report.md, "Verdicts"):

- Every statement is tested in both directions against the prompt-bootstrap resamples, consistently
  with the report's 95% percentile intervals. For "θ > t" the p-value *for* the statement is
  p = min(1, 2 #{θ* ≤ t} / B) over the B defined resamples: p < 0.05 exactly when the 95% percentile
  interval lies above t (up to the interpolation between two adjacent resamples). The p-value
  *against* it is the same with the inequality reversed. "θ inside (lo, hi)" needs both ends (two
  one-sided tests: p_for is the larger of the two); it is contradicted when the
  interval lies entirely below lo or entirely above hi (p_against is the smaller of the two).
- A claim made of several statements (every domain; two contrasts) HOLDS when every statement is
  supported at 5%. No multiplicity correction is needed for that: all must reject, so the chance of a
  false "holds" is at most that of the weakest single test (an intersection–union test, Berger 1982);
  correcting would only cost power. It DOES NOT HOLD as soon as one statement is contradicted: that
  is K chances to err, so the p-values against are Holm-adjusted across the statements (statsmodels'
  ``multipletests``) before comparing with 0.05. Otherwise the claim is INCONCLUSIVE.
- Literal claims that quote numbers measured on the study's model pair (TinyLlama-1.1B drafting for
  Llama-2-7B-Chat) are NOT_COMPARABLE on any other pair: their numbers are still computed and shown,
  and a pair-independent form of the claim is tested instead.
- Each claim has exactly one *primary* result, declared in docs/report.md before any data is seen (the
  per-level acceptance α for acceptance claims); the others are sensitivity analyses.
"""

from __future__ import annotations

import gc
import re
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import Enum

import numpy as np
from statsmodels.stats.multitest import multipletests

from specdyn.stats import Estimate, Sampled

LEVEL = 0.05
WEAK = 0.3  # |r| below this is a weak correlation (Cohen's "medium" starts at 0.3)
STUDY_PAIR = ("TinyLlama-1.1B", "Llama-2-7B-Chat")  # the reference study's draft and target


class Verdict(Enum):
    """Outcome of checking one claim on one run."""

    HOLDS = "holds"
    DOES_NOT_HOLD = "does not hold"
    INCONCLUSIVE = "inconclusive at 95%"
    NOT_COMPARABLE = "not comparable"  # literal numbers of another model pair
    NOT_APPLICABLE = "not applicable"  # the run lacks what the claim needs (a chat domain, 2 depths, ...)


class Side(Enum):
    ABOVE = "above"
    BELOW = "below"


def bootstrap_p(boot: np.ndarray, threshold: float, side: Side) -> float:
    """Two-sided-consistent bootstrap p-value for "the statistic is ``side`` ``threshold``" (module
    docstring); NaN when under half of the resamples are defined (as for the percentile interval)."""
    boot = np.asarray(boot, dtype=float)
    ok = boot[np.isfinite(boot)]
    if ok.size == 0 or ok.size < boot.size / 2:
        return float("nan")
    wrong = np.sum(ok <= threshold) if side is Side.ABOVE else np.sum(ok >= threshold)
    return float(min(1.0, 2 * wrong / ok.size))


@dataclass
class Evidence:
    """One statement about one statistic, with p-values for and against it."""

    label: str
    estimate: Estimate
    p_for: float
    p_against: float

    def to_dict(self) -> dict:
        return {"label": self.label, **self.estimate.to_dict(), "p_for": _num(self.p_for),
                "p_against": _num(self.p_against)}


def _num(x: float):
    return None if x is None or not np.isfinite(x) else float(x)


def above(label: str, s: Sampled, threshold: float) -> Evidence:
    """Statement: the statistic is above ``threshold``."""
    return Evidence(label, s.estimate(), bootstrap_p(s.boot, threshold, Side.ABOVE),
                    bootstrap_p(s.boot, threshold, Side.BELOW))


def below(label: str, s: Sampled, threshold: float) -> Evidence:
    """Statement: the statistic is below ``threshold``."""
    return Evidence(label, s.estimate(), bootstrap_p(s.boot, threshold, Side.BELOW),
                    bootstrap_p(s.boot, threshold, Side.ABOVE))


def inside(label: str, s: Sampled, low: float, high: float) -> Evidence:
    """Statement: the statistic lies strictly between ``low`` and ``high``."""
    up, down = above(label, s, low), below(label, s, high)
    return Evidence(label, s.estimate(), max(up.p_for, down.p_for), min(up.p_against, down.p_against))


@dataclass
class Combined:
    """Several statements combined into one verdict (module docstring)."""

    verdict: Verdict
    evidence: list[Evidence]
    p_against_holm: list[float]

    def to_dict(self) -> dict:
        return {"verdict": self.verdict.value,
                "evidence": [dict(e.to_dict(), p_against_holm=_num(p))
                             for e, p in zip(self.evidence, self.p_against_holm)]}


@contextmanager
def _frozen_heap():
    """statsmodels' Holm correction calls gc.collect(), a full collection of the process's heap (about
    0.2 s in a report process, on every call); frozen objects are skipped, so only new ones are scanned."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def holm(p_values: np.ndarray, level: float = LEVEL) -> np.ndarray:
    """Holm-adjusted p-values (statsmodels' ``multipletests``)."""
    if not len(p_values):
        return p_values
    with _frozen_heap():
        return multipletests(p_values, alpha=level, method="holm")[1]


def all_of(evidence: list[Evidence], level: float = LEVEL) -> Combined:
    """HOLDS if every statement is supported; DOES_NOT_HOLD if one is contradicted after Holm's
    correction across the statements; INCONCLUSIVE otherwise (and with undefined p-values)."""
    p_for = np.array([e.p_for for e in evidence], dtype=float)
    p_against = np.nan_to_num(np.array([e.p_against for e in evidence], dtype=float), nan=1.0)
    holm_against = holm(p_against, level)
    if len(evidence) and np.all(p_for < level):  # NaN compares False: undefined never supports
        verdict = Verdict.HOLDS
    elif np.any(holm_against < level):
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    return Combined(verdict, evidence, holm_against.tolist())


@dataclass
class Lead:
    """Target's value minus the best other domain's, on the data and per resample (the runner-up is
    taken per resample, so the interval accounts for which domain is second)."""

    difference: Sampled
    runner_up: str


def lead(values: dict[str, Sampled], target: str) -> Lead:
    others = [d for d in values if d != target]
    runner_up = max(others, key=lambda d: values[d].point)
    with np.errstate(all="ignore"):
        best = np.nanmax(np.stack([values[d].boot for d in others]), axis=0)
    point = values[target].point - values[runner_up].point
    return Lead(Sampled(point, values[target].boot - best), runner_up)


# ----------------------------------------------------------------------------------------------------
# Claim results


@dataclass
class ClaimResult:
    """One check of one claim: the primary one, or a sensitivity analysis."""

    claim: str  # "a" .. "d"
    text: str  # the statement checked, in words
    measure: str  # what the numbers are (a metrics.json key or a short description)
    primary: bool
    verdict: Verdict
    rule: str  # the decision rule applied, in words
    summary: str = ""  # this run's numbers, one line
    values: dict = field(default_factory=dict)  # the numbers behind the verdict (JSON-ready)

    def to_json(self) -> dict:
        return {"id": self.claim, "text": self.text, "measure": self.measure, "primary": self.primary,
                "verdict": self.verdict.value, "rule": self.rule, "summary": self.summary,
                "values": self.values}


def check_one_primary(results: list[ClaimResult]) -> None:
    """Raise ValueError unless every claim id has exactly one primary result."""
    for claim in sorted({r.claim for r in results}):
        count = sum(r.primary for r in results if r.claim == claim)
        if count != 1:
            raise ValueError(f"claim ({claim}) has {count} primary results; exactly one is required")


def not_comparable(result: ClaimResult, pair: tuple[str, str]) -> ClaimResult:
    """The same result, its numbers kept, with the verdict NOT_COMPARABLE (another model pair)."""
    why = (f"this run's pair ({pair[0]} -> {pair[1]}) is not the study's "
           f"({STUDY_PAIR[0]} -> {STUDY_PAIR[1]}); the literal numbers do not transfer")
    return replace(result, verdict=Verdict.NOT_COMPARABLE, summary=f"{why}. {result.summary}",
                   values={**result.values, "computed_verdict": result.verdict.value})


def not_applicable(claim: str, text: str, measure: str, primary: bool, rule: str, why: str) -> ClaimResult:
    return ClaimResult(claim, text, measure, primary, Verdict.NOT_APPLICABLE, rule, f"not applicable: {why}")


def _normal(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower().rsplit("/", 1)[-1])


def same_pair_as_study(draft: str, target: str) -> bool:
    """True for the reference study's pair, TinyLlama-1.1B drafting for Llama-2-7B-Chat, under any
    spelling of the usual model ids (organisation prefix, case, separators, suffixes like -v1.0/-hf)."""
    d, t = _normal(draft), _normal(target)
    return d.startswith("tinyllama") and "11b" in d and t.startswith("llama27b") and "chat" in t


def fmt(est: Estimate, digits: int = 3) -> str:
    """``value [ci_low, ci_high]`` (``n/a`` / ``no CI`` when undefined)."""
    if not np.isfinite(est.value):
        return "n/a"
    ci = "no CI" if not np.isfinite(est.ci_low) else f"[{est.ci_low:.{digits}f}, {est.ci_high:.{digits}f}]"
    return f"{est.value:.{digits}f} {ci}"


# ----------------------------------------------------------------------------------------------------
# The claim forms the report checks (docs/report.md lists which one is primary for each claim)


def _result(claim: str, text: str, measure: str, primary: bool, rule: str, combined: Combined) -> ClaimResult:
    summary = "; ".join(f"{e.label}: {fmt(e.estimate)}" for e in combined.evidence)
    return ClaimResult(claim, text, measure, primary, combined.verdict, rule, summary, combined.to_dict())


def claim_highest(claim: str, text: str, measure: str, values: dict[str, Sampled], target: str | None,
                  primary: bool) -> ClaimResult:
    """"``target`` has the highest value": target minus the best other domain, above 0."""
    rule = ("Target minus the best other domain (the best taken on each resample): holds if its 95% CI "
            "is above 0, does not hold if below 0, else inconclusive.")
    if target is None or len(values) < 2:
        why = "no such domain in this run" if target is None else "needs another domain to compare with"
        return not_applicable(claim, text, measure, primary, rule, why)
    ld = lead(values, target)
    evidence = above(f"{target} minus best other ({ld.runner_up})", ld.difference, 0.0)
    return _result(claim, text, measure, primary, rule, all_of([evidence]))


def claim_highest_in_all(claim: str, text: str, measures: dict[str, dict[str, Sampled]],
                         target: str | None, primary: bool) -> ClaimResult:
    """"``target`` has the highest value of every measure" (e.g. claim (d): entropy and acceptance)."""
    rule = ("For each measure, target minus the best other domain: holds if every 95% CI is above 0; "
            "does not hold if one lies below 0 after Holm's correction across the measures.")
    first = next(iter(measures.values()), {})
    if target is None or len(first) < 2:
        why = "no such domain in this run" if target is None else "needs another domain to compare with"
        return not_applicable(claim, text, ", ".join(measures), primary, rule, why)
    evidence = []
    for name, values in measures.items():
        ld = lead(values, target)
        evidence.append(above(f"{name}: {target} minus best other ({ld.runner_up})", ld.difference, 0.0))
    return _result(claim, text, ", ".join(measures), primary, rule, all_of(evidence))


def claim_every_domain_inside(claim: str, text: str, measure: str, values: dict[str, Sampled], low: float,
                              high: float, primary: bool) -> ClaimResult:
    """"In every domain the statistic lies in (low, high)"."""
    rule = (f"Holds if every domain's 95% CI lies inside ({low:g}, {high:g}); does not hold if some "
            "domain's CI lies entirely outside it after Holm's correction across domains; else "
            "inconclusive.")
    evidence = [inside(d, s, low, high) for d, s in values.items()]
    return _result(claim, text, measure, primary, rule, all_of(evidence))


def claim_only_target_above(claim: str, text: str, measure: str, values: dict[str, Sampled],
                            target: str | None, threshold: float, primary: bool) -> ClaimResult:
    """"Only ``target`` is above ``threshold``": target above, every other domain below."""
    rule = (f"Holds if the target's 95% CI is above {threshold:g} and every other domain's CI is below "
            f"it; does not hold if one of these is contradicted after Holm's correction; else "
            "inconclusive.")
    if target is None or len(values) < 2:
        why = "no such domain in this run" if target is None else "needs another domain to compare with"
        return not_applicable(claim, text, measure, primary, rule, why)
    evidence = [above(target, values[target], threshold)]
    evidence += [below(d, s, threshold) for d, s in values.items() if d != target]
    return _result(claim, text, measure, primary, rule, all_of(evidence))
