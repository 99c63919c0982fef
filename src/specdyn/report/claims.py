"""The reference study's claims, checked on one run with 95% prompt-level bootstrap intervals.

Each claim is a small function returning a :class:`Claim`; its decision rule is in its docstring and in
the claim's ``rule`` text (shown in the report). A claim that needs a "chat" domain (matched by name,
case-insensitively) or at least two domains is INCONCLUSIVE with ``applicable = False`` when the run
lacks them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from specdyn.report.metrics import Computed
from specdyn.report.notions import Entropy, Notion
from specdyn.stats import Estimate, Sampled

CHAT = "chat"
RHO_INTERVAL = (-0.20, -0.15)
LENGTH_THRESHOLD = 1.0  # tokens per step, bonus token not counted


class Verdict(Enum):
    HOLDS = "holds"
    DOES_NOT_HOLD = "does not hold"
    INCONCLUSIVE = "inconclusive at 95%"


@dataclass
class Claim:
    """One claim checked on this run, under one acceptance notion (and entropy source, if any)."""

    id: str
    text: str
    notion: str
    entropy: str | None
    verdict: Verdict
    summary: str  # this run's numbers, one line
    rule: str  # the decision rule applied
    values: dict = field(default_factory=dict)  # the numbers behind the verdict (JSON-ready)
    applicable: bool = True

    def to_dict(self) -> dict:
        return {"id": self.id, "text": self.text, "notion": self.notion, "entropy": self.entropy,
                "verdict": self.verdict.value, "applicable": self.applicable, "summary": self.summary,
                "rule": self.rule, "values": self.values}


def _fmt(est: Estimate, digits: int = 3) -> str:
    if not np.isfinite(est.value):
        return "n/a"
    ci = "no CI" if not np.isfinite(est.ci_low) else f"[{est.ci_low:.{digits}f}, {est.ci_high:.{digits}f}]"
    return f"{est.value:.{digits}f} {ci}"


def _finite(*values: float) -> bool:
    return all(np.isfinite(v) for v in values)


def find_chat(domains: list[str]) -> str | None:
    """The domain called "chat" (exact name first, then case-insensitive), or None."""
    if CHAT in domains:
        return CHAT
    return next((d for d in domains if d.strip().lower() == CHAT), None)


def _not_applicable(claim_id: str, text: str, notion: str, entropy: str | None, rule: str, why: str) -> Claim:
    return Claim(claim_id, text, notion, entropy, Verdict.INCONCLUSIVE, f"not applicable: {why}", rule,
                 applicable=False)


def claim_a(r2: dict[str, Sampled], notion: Notion, n_domains: int, n_depths: int) -> Claim:
    """(a) Task type predicts acceptance more strongly than depth.

    Statistic: McFadden R² of a logistic model with domain alone minus that of depth alone (both
    categorical, fitted in closed form), bootstrap CI over prompts (stratified by domain). Holds if the
    CI of the difference lies above 0; does not hold if it lies below 0; otherwise inconclusive.
    """
    text = "Task type predicts acceptance more strongly than tree depth."
    rule = ("McFadden R² (domain alone) minus McFadden R² (depth alone): holds if its 95% CI is above 0, "
            "does not hold if below 0, else inconclusive.")
    if n_domains < 2 or n_depths < 2:
        return _not_applicable("a", text, notion.value, None, rule,
                               "needs at least two domains and two depth levels")
    est = {k: v.estimate() for k, v in r2.items()}
    diff = est["difference"]
    verdict = Verdict.INCONCLUSIVE
    if _finite(diff.ci_low) and diff.ci_low > 0:
        verdict = Verdict.HOLDS
    elif _finite(diff.ci_high) and diff.ci_high < 0:
        verdict = Verdict.DOES_NOT_HOLD
    summary = (f"R² domain {_fmt(est['domain'], 4)}, depth {_fmt(est['depth'], 4)}; "
               f"difference {_fmt(diff, 4)}")
    values = {k: v.to_dict() for k, v in est.items()}
    return Claim("a", text, notion.value, None, verdict, summary, rule, values)


def claim_b(samples: dict[str, dict[str, Sampled]]) -> Claim:
    """(b) Only chat has expected accepted length above 1.0 token per step (bonus token NOT counted).

    Statistic: each domain's mean accepted tokens per step (steps' ``accepted``, i.e. path acceptance).
    Holds if chat's CI lower bound > 1.0 and every other domain's CI upper bound <= 1.0; does not hold
    if some other domain's CI lower bound > 1.0 or chat's CI upper bound <= 1.0; else inconclusive.
    """
    text = "Only chat has an expected accepted length above 1.0 token per step."
    rule = ("Accepted tokens per step without the bonus token: holds if chat's 95% CI is above 1.0 and "
            "every other domain's CI upper bound is ≤ 1.0; does not hold if another domain's CI is above "
            "1.0 or chat's CI upper bound is ≤ 1.0; else inconclusive.")
    chat = find_chat(list(samples))
    if chat is None or len(samples) < 2:
        why = "no 'chat' domain in this run" if chat is None else "needs at least one domain besides chat"
        return _not_applicable("b", text, Notion.PATH.value, None, rule, why)
    est = {d: s["accepted_per_step"].estimate() for d, s in samples.items()}
    others = [d for d in est if d != chat]
    c = est[chat]
    if _finite(c.ci_low) and c.ci_low > LENGTH_THRESHOLD and all(
            _finite(est[d].ci_high) and est[d].ci_high <= LENGTH_THRESHOLD for d in others):
        verdict = Verdict.HOLDS
    elif (_finite(c.ci_high) and c.ci_high <= LENGTH_THRESHOLD) or any(
            _finite(est[d].ci_low) and est[d].ci_low > LENGTH_THRESHOLD for d in others):
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    summary = "; ".join(f"{d} {_fmt(e, 2)} (with bonus {_fmt(e.shifted(1.0), 2)})" for d, e in est.items())
    values = {d: {"accepted_per_step": e.to_dict(), "accepted_per_step_with_bonus": e.shifted(1).to_dict()}
              for d, e in est.items()}
    return Claim("b", text, f"{Notion.PATH.value} (steps' accepted, bonus excluded)", None, verdict,
                 summary, rule, values)


def claim_c(samples: dict[str, dict[str, Sampled]], notion: Notion, entropy: Entropy) -> Claim:
    """(c) The entropy-acceptance Pearson correlation lies in [-0.20, -0.15] in every domain.

    Statistic: node-level Pearson r between ``entropy`` and acceptance under ``notion``, per domain.
    Holds if every domain's 95% CI lies inside [-0.20, -0.15]; does not hold if some domain's CI lies
    entirely outside it; otherwise inconclusive (some CI straddles an end of the interval).
    """
    lo, hi = RHO_INTERVAL
    text = f"The entropy-acceptance Pearson correlation lies in [{lo:.2f}, {hi:.2f}] in every domain."
    rule = (f"Holds if every domain's 95% CI lies inside [{lo:.2f}, {hi:.2f}]; does not hold if some "
            "domain's CI lies entirely outside it; else inconclusive.")
    est = {d: s[f"pearson:{entropy.value}:{notion.value}"].estimate() for d, s in samples.items()}
    inside = [_finite(e.ci_low, e.ci_high) and lo <= e.ci_low and e.ci_high <= hi for e in est.values()]
    outside = [_finite(e.ci_low, e.ci_high) and (e.ci_high < lo or e.ci_low > hi) for e in est.values()]
    if est and all(inside):
        verdict = Verdict.HOLDS
    elif any(outside):
        verdict = Verdict.DOES_NOT_HOLD
    else:
        verdict = Verdict.INCONCLUSIVE
    summary = "; ".join(f"{d} r = {_fmt(e)}" for d, e in est.items())
    return Claim("c", text, notion.value, entropy.value, verdict, summary, rule,
                 {d: e.to_dict("r") for d, e in est.items()})


def _lead(samples: dict[str, dict[str, Sampled]], chat: str, key: str) -> tuple[Estimate, str]:
    """Chat's value minus the highest other domain's, per resample; and that runner-up's name."""
    others = [d for d in samples if d != chat]
    runner_up = max(others, key=lambda d: samples[d][key].point)
    best_other = np.nanmax(np.stack([samples[d][key].boot for d in others]), axis=0)  # a 1-prompt domain has no resamples
    diff = Sampled(samples[chat][key].point - samples[runner_up][key].point,
                   samples[chat][key].boot - best_other)
    return diff.estimate(), runner_up


def claim_d(samples: dict[str, dict[str, Sampled]], notion: Notion, entropy: Entropy) -> Claim:
    """(d) Chat has the highest mean entropy and the highest acceptance rate.

    Statistics: chat's mean ``entropy`` minus the highest other domain's, and chat's node acceptance
    rate under ``notion`` minus the highest other domain's, each with a bootstrap CI (per resample, the
    maximum over the other domains). Holds if both CIs are above 0; does not hold if either CI is below
    0; otherwise inconclusive.
    """
    text = "Chat has the highest mean entropy and the highest acceptance rate."
    rule = ("Chat minus the best other domain, for mean entropy and for the acceptance rate: holds if both "
            "95% CIs are above 0; does not hold if either is below 0; else inconclusive.")
    chat = find_chat(list(samples))
    if chat is None or len(samples) < 2:
        why = "no 'chat' domain in this run" if chat is None else "needs at least one domain besides chat"
        return _not_applicable("d", text, notion.value, entropy.value, rule, why)
    ent, ent_rival = _lead(samples, chat, f"{entropy.value}_mean")
    acc, acc_rival = _lead(samples, chat, notion.rate_key)
    above = [_finite(e.ci_low) and e.ci_low > 0 for e in (ent, acc)]
    below = [_finite(e.ci_high) and e.ci_high < 0 for e in (ent, acc)]
    verdict = (Verdict.HOLDS if all(above) else Verdict.DOES_NOT_HOLD if any(below)
               else Verdict.INCONCLUSIVE)
    summary = (f"mean {entropy.value}: chat {samples[chat][f'{entropy.value}_mean'].point:.3f} nats, "
               f"minus best other ({ent_rival}) {_fmt(ent)}; {notion.rate_key}: chat "
               f"{samples[chat][notion.rate_key].point:.3f}, minus best other ({acc_rival}) {_fmt(acc)}")
    values = {"entropy_difference": ent.to_dict(), "entropy_runner_up": ent_rival,
              "acceptance_difference": acc.to_dict(), "acceptance_runner_up": acc_rival}
    return Claim("d", text, notion.value, entropy.value, verdict, summary, rule, values)


def evaluate_claims(computed: Computed, domains: list[str]) -> list[Claim]:
    """Every claim, for every acceptance notion (and entropy source) it depends on."""
    out = [claim_a(computed.r2[n], n, len(domains), computed.n_depth_levels) for n in Notion]
    out.append(claim_b(computed.samples))
    out += [claim_c(computed.samples, n, e) for e in Entropy for n in Notion]
    out += [claim_d(computed.samples, n, e) for e in Entropy for n in Notion]
    return out
