"""The reference study's claims, checked on one run.

Every claim has exactly one *primary* result, fixed here and in docs/report.md before any data is seen
(per-level α for the acceptance claims, pair-independent forms of the claims that quote numbers of the
study's model pair); every other result is a sensitivity analysis. The literal forms of (b) and (c) are
"not comparable" unless the run used the study's pair (their numbers are still computed and shown).
Decision rules: :mod:`verdicts` (bootstrap p-values; all statements supported -> holds, one contradicted
after Holm -> does not hold) and :mod:`factors` (claim (a)).
"""

from __future__ import annotations

from specdyn.report.compute import Computed, GroupSamples
from specdyn.report.factors import PERMUTATIONS, claim_a, compare_domain_depth
from specdyn.report.notions import Entropy, Measure, Notion
from specdyn.report.runinfo import RunInfo
from specdyn.report.verdicts import (
    WEAK, ClaimResult, Verdict, check_one_primary, claim_every_domain_inside, claim_highest, claim_highest_in_all,
    claim_only_target_above, not_comparable,
)
from specdyn.stats import Sampled

CHAT = "chat"
RHO_INTERVAL = (-0.20, -0.15)  # the study's Pearson correlation range
LENGTH_THRESHOLD = 1.0  # tokens per step, bonus token not counted
CLAIMS = {  # the reference study's claims, as it states them
    "a": "Task type predicts acceptance more strongly than tree depth.",
    "b": "Only chat has an expected accepted length above 1.0 token per step.",
    "c": "The entropy-acceptance correlation lies in [-0.20, -0.15] in every domain.",
    "d": "Chat has the highest mean entropy and the highest acceptance rate.",
}
WEAK_NEGATIVE = f"negative and weak (-{WEAK:g} < r < 0)"


def find_chat(domains: list[str]) -> str | None:
    """The domain called "chat" (exact name first, then case-insensitive), or None."""
    if CHAT in domains:
        return CHAT
    return next((d for d in domains if d.strip().lower() == CHAT), None)


def _by_domain(samples: dict[str, GroupSamples], pick) -> dict[str, Sampled]:
    return {d: pick(s) for d, s in samples.items()}


def _literal(result: ClaimResult, info: RunInfo) -> ClaimResult:
    """A literal claim keeps its verdict only on the study's model pair."""
    if info.study_pair or result.verdict is Verdict.NOT_APPLICABLE:
        return result
    return not_comparable(result, info.pair)


def claims_a(computed: Computed, permutations: int) -> list[ClaimResult]:
    """Primary: domain vs depth on reached nodes' accepted_local; sensitivity: accept_prob as outcome."""
    seed = computed.metrics.bootstrap.seed
    primary = compare_domain_depth(computed.cells[Notion.LOCAL], permutations, seed)
    prob = compare_domain_depth(computed.cells[Notion.PROB], permutations, seed, within_prompt=False)
    return [claim_a(primary, "accepted_local of reached nodes", True),
            claim_a(prob, "accept_prob of reached nodes (fractional outcome)", False)]


def claims_b(samples: dict[str, GroupSamples], chat: str | None, info: RunInfo) -> list[ClaimResult]:
    """Primary (b'): chat has the highest α. Sensitivity: the literal 1.0-token rule, chat's lead in
    accepted tokens per step."""
    alpha = _by_domain(samples, lambda s: s.acceptance.level)
    per_step = _by_domain(samples, lambda s: s.acceptance.per_step)
    literal = claim_only_target_above("b", CLAIMS["b"], Measure.PER_STEP.value, per_step, chat,
                                      LENGTH_THRESHOLD, False)
    return [claim_highest("b", "(b') Chat has the highest per-level acceptance α.", Measure.LEVEL.value, alpha,
                          chat, True),
            _literal(literal, info),
            claim_highest("b", "Chat has the most accepted tokens per step.", Measure.PER_STEP.value, per_step,
                          chat, False)]


def claims_c(samples: dict[str, GroupSamples], info: RunInfo) -> list[ClaimResult]:
    """Primary (c'): the trial-level correlation of the draft's entropy with α's trials is negative and
    weak in every domain. Sensitivity: the literal interval; target entropy; node-level correlations."""
    def weak(text, measure, pick, primary):
        return claim_every_domain_inside("c", text, measure, _by_domain(samples, pick), -WEAK, 0.0, primary)

    trial = "trial-level Pearson({}, trial success)"
    out = [weak(f"(c') In every domain the draft's entropy at a position and acceptance there correlate "
                f"{WEAK_NEGATIVE}.", trial.format(Entropy.DRAFT.value),
                lambda s: s.entropy.trial_pearson[Entropy.DRAFT], True)]
    node_level = _by_domain(samples, lambda s: s.entropy.pearson[Entropy.DRAFT, Notion.LOCAL])
    literal = claim_every_domain_inside("c", CLAIMS["c"], "node-level Pearson(draft_entropy, accepted_local)",
                                        node_level, *RHO_INTERVAL, False)
    out.append(_literal(literal, info))
    out.append(weak(f"(c') with the target's entropy: {WEAK_NEGATIVE} in every domain.",
                    trial.format(Entropy.TARGET.value), lambda s: s.entropy.trial_pearson[Entropy.TARGET], False))
    out += [weak(f"(c') node level, {n.value}: {WEAK_NEGATIVE} in every domain.",
                 f"node-level Pearson(draft_entropy, {n.value})",
                 lambda s, n=n: s.entropy.pearson[Entropy.DRAFT, n], False) for n in Notion]
    return out


def claims_d(samples: dict[str, GroupSamples], chat: str | None) -> list[ClaimResult]:
    """Primary: chat leads in mean draft entropy and in α. Sensitivity: the node notions; target entropy."""
    def leads(source: Entropy, measure: Measure, pick, primary: bool) -> ClaimResult:
        measures = {f"{source.value} mean": _by_domain(samples, lambda s: s.entropy.mean[source]),
                    measure.value: _by_domain(samples, pick)}
        return claim_highest_in_all("d", CLAIMS["d"], measures, chat, primary)

    out = [leads(Entropy.DRAFT, Measure.LEVEL, lambda s: s.acceptance.level, True)]
    out += [leads(Entropy.DRAFT, n.measure, lambda s, n=n: s.acceptance.rate[n], False) for n in Notion]
    out.append(leads(Entropy.TARGET, Measure.LEVEL, lambda s: s.acceptance.level, False))
    return out


def evaluate_claims(computed: Computed, permutations: int = PERMUTATIONS) -> list[ClaimResult]:
    """Every result of every claim, primary ones first within each claim."""
    info = computed.metrics.run
    chat = find_chat(info.domains)
    results = (claims_a(computed, permutations) + claims_b(computed.samples, chat, info)
               + claims_c(computed.samples, info) + claims_d(computed.samples, chat))
    check_one_primary(results)
    return results
