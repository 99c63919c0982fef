"""Verdict rules: bootstrap p-values agree with percentile CIs, intersection-union + Holm calibration,
pair-independent claim forms, 'not comparable', one primary per claim."""

from __future__ import annotations

import gc
from collections import Counter

import numpy as np
import pytest

from specdyn.report.levels import add_level_sums, alpha, level_trials, trial_table
from specdyn.report.stats import SumsLayout, resample_group
from specdyn.stats import Sampled, percentile_ci
from specdyn.report.verdicts import (
    ClaimResult, Side, Verdict, WEAK, above, all_of, below, bootstrap_p, check_one_primary,
    claim_every_domain_inside, claim_highest, claim_highest_in_all, claim_only_target_above, inside,
    lead, not_comparable, same_pair_as_study,
)
from treesim import TreeSim, reached_of, simulate

RNG = np.random.default_rng(0)


@pytest.fixture
def fast_holm(monkeypatch):
    """statsmodels' Holm runs gc.collect() on every call (~0.1 s in a test process); the loops below
    call it thousands of times, so skip the collection there (results are unaffected)."""
    monkeypatch.setattr(gc, "collect", lambda *args, **kwargs: 0)


def sampled(point: float, se: float, n: int = 1000, seed: int = 0) -> Sampled:
    return Sampled(point, point + np.random.default_rng(seed).normal(0, se, n))


def test_bootstrap_p_agrees_with_the_percentile_interval():
    for seed in range(200):
        s = sampled(0.0, 1.0, seed=seed)
        t = RNG.normal(0, 2.5)
        low, high = percentile_ci(s.boot)
        if min(abs(t - low), abs(t - high)) < 0.02:
            continue  # within one resample's spacing of an interval end
        assert (bootstrap_p(s.boot, t, Side.ABOVE) < 0.05) == (low > t)
        assert (bootstrap_p(s.boot, t, Side.BELOW) < 0.05) == (high < t)
    assert np.isnan(bootstrap_p(np.array([np.nan] * 6 + [1.0] * 4), 0.0, Side.ABOVE))


def test_statements_and_their_p_values():
    s = sampled(-0.17, 0.01)
    assert inside("r", s, -0.2, -0.15).p_for < 0.05 and inside("r", s, -0.2, -0.15).p_against == 1.0
    assert inside("r", s, -0.3, -0.25).p_against < 0.05 and inside("r", s, -0.3, -0.25).p_for == 1.0
    assert above("x", s, -0.5).p_for < 0.05 and below("x", s, -0.5).p_against < 0.05


def test_holm_applies_to_contradictions_only():
    supported = [above(f"d{i}", sampled(1.0, 0.1, seed=i), 0.0) for i in range(4)]
    assert all_of(supported).verdict is Verdict.HOLDS
    one_bad = supported[:3] + [above("bad", sampled(-1.0, 0.1), 0.0)]
    assert all_of(one_bad).verdict is Verdict.DOES_NOT_HOLD
    # p against = 0.03 in one domain of four: significant alone, not after Holm (0.12)
    edge = Sampled(-0.2, np.r_[np.full(15, 0.5), np.full(985, -0.5)])
    borderline = supported[:3] + [above("edge", edge, 0.0)]
    combined = all_of(borderline)
    assert borderline[3].p_against == pytest.approx(0.03)
    assert combined.p_against_holm[3] == pytest.approx(0.12) and combined.verdict is Verdict.INCONCLUSIVE
    assert all_of([]).verdict is Verdict.INCONCLUSIVE


def _every_domain_rates(truths: list[float], reps: int, se: float = 0.05, holm: bool = True) -> Counter:
    """Verdicts of 'every domain inside (-0.3, 0)' when each domain's estimate ~ N(truth, se)."""
    out = Counter()
    rng = np.random.default_rng(1)
    for _ in range(reps):
        values = {}
        for d, truth in enumerate(truths):
            point = truth + rng.normal(0, se)
            values[f"d{d}"] = Sampled(point, point + rng.normal(0, se, 400))
        if holm:
            out[claim_every_domain_inside("c", "", "r", values, -WEAK, 0.0, True).verdict] += 1
        else:
            ev = [inside(d, s, -WEAK, 0.0) for d, s in values.items()]
            out[Verdict.DOES_NOT_HOLD if min(e.p_against for e in ev) < 0.05 else Verdict.INCONCLUSIVE] += 1
    return out


def test_every_domain_claims_are_calibrated_both_ways(fast_holm):
    """On the boundary of the claim (true r at the interval's end) each wrong verdict stays below 5%:
    'holds' when one domain sits exactly at -0.3 (intersection-union), 'does not hold' when all four
    sit exactly at 0 (Holm). Without Holm the false 'does not hold' rate is ~1 - 0.975^4 ≈ 10%."""
    reps = 1500
    false_holds = _every_domain_rates([-WEAK, -0.15, -0.15, -0.15], reps)[Verdict.HOLDS] / reps
    false_fails = _every_domain_rates([0.0] * 4, reps)[Verdict.DOES_NOT_HOLD] / reps
    naive_fails = _every_domain_rates([0.0] * 4, reps, holm=False)[Verdict.DOES_NOT_HOLD] / reps
    assert false_holds <= 0.05 and false_fails <= 0.05, (false_holds, false_fails)
    assert naive_fails > 0.06 and naive_fails > 1.5 * false_fails, (naive_fails, false_fails)
    power = _every_domain_rates([-0.15] * 4, 300, se=0.03)[Verdict.HOLDS] / 300
    assert power > 0.9, power


def test_lead_takes_the_best_other_domain_per_resample():
    values = {"chat": Sampled(0.8, np.array([0.8, 0.7, 0.9])),
              "code": Sampled(0.6, np.array([0.6, 0.75, 0.5])),
              "math": Sampled(0.7, np.array([0.5, 0.6, 0.95]))}
    ld = lead(values, "chat")
    assert ld.runner_up == "math" and ld.difference.point == pytest.approx(0.1)
    assert ld.difference.boot == pytest.approx([0.2, -0.05, -0.05])


def _alpha_by_domain(means, seed, names=("code", "math", "logic", "chat")) -> dict[str, Sampled]:
    run = simulate(TreeSim(means=means, prompts=25, seed=seed))
    lv = level_trials(trial_table(run.nodes, reached_of(run.nodes)), run.n_prompts)
    layout = SumsLayout(run.n_prompts)
    add_level_sums(layout, lv)
    rng = np.random.default_rng(seed)
    groups = [resample_group(layout, layout.matrix(), np.flatnonzero(run.prompt_domain == d), 400, rng)
              for d in range(len(names))]
    return {name: alpha(group) for name, group in zip(names, groups)}


def test_chat_has_the_highest_alpha():
    text = "Chat has the highest per-level acceptance α."
    def check(means, seed):
        return claim_highest("b", text, "acceptance_level", _alpha_by_domain(means, seed), "chat", True)

    clear = check((0.5, 0.55, 0.6, 0.85), 1)
    assert clear.verdict is Verdict.HOLDS and clear.primary and "logic" in clear.summary
    assert check((0.5, 0.85, 0.6, 0.55), 2).verdict is Verdict.DOES_NOT_HOLD
    missing = claim_highest("b", text, "acceptance_level", {"code": Sampled(0.5, np.zeros(3))}, None, True)
    assert missing.verdict is Verdict.NOT_APPLICABLE


def test_a_tie_for_the_top_rarely_holds(fast_holm):
    """Chat ties the best other domain (true α equal): 'highest' is false, so 'holds' must be rare."""
    counts = Counter(claim_highest("b", "", "acceptance_level", _alpha_by_domain((0.6, 0.75, 0.6, 0.75), s),
                                   "chat", True).verdict for s in range(100, 140))
    assert counts[Verdict.HOLDS] <= 2, counts


def test_claim_d_needs_both_leads_and_literal_b():
    chat_high = {"chat": sampled(2.0, 0.05), "code": sampled(1.0, 0.05, seed=1)}
    chat_low = {"chat": sampled(1.0, 0.05), "code": sampled(2.0, 0.05, seed=1)}
    both = claim_highest_in_all("d", "", {"draft_entropy": chat_high, "acceptance_level": chat_high},
                                "chat", True)
    split = claim_highest_in_all("d", "", {"draft_entropy": chat_high, "acceptance_level": chat_low},
                                 "chat", True)
    assert both.verdict is Verdict.HOLDS and split.verdict is Verdict.DOES_NOT_HOLD
    per_step = {"chat": sampled(1.3, 0.05), "code": sampled(0.7, 0.05, seed=1),
                "math": sampled(0.8, 0.05, seed=2)}
    only = claim_only_target_above("b", "", "accepted_per_step", per_step, "chat", 1.0, False)
    assert only.verdict is Verdict.HOLDS
    per_step["math"] = sampled(1.2, 0.05, seed=2)
    assert claim_only_target_above("b", "", "accepted_per_step", per_step, "chat", 1.0, False).verdict \
        is Verdict.DOES_NOT_HOLD


def test_not_comparable_keeps_the_numbers():
    literal = claim_every_domain_inside("c", "rho in [-0.20, -0.15]", "pearson",
                                        {"code": sampled(-0.17, 0.005)}, -0.2, -0.15, False)
    assert literal.verdict is Verdict.HOLDS
    marked = not_comparable(literal, ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"))
    assert marked.verdict is Verdict.NOT_COMPARABLE and marked.values["computed_verdict"] == "holds"
    assert marked.values["evidence"] == literal.values["evidence"] and "not the study's" in marked.summary
    assert marked.to_json()["verdict"] == "not comparable"


@pytest.mark.parametrize("draft,target,same", [
    ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "meta-llama/Llama-2-7b-chat-hf", True),
    ("tinyllama-1.1b", "llama-2-7b-chat", True),
    ("TinyLlama-1.1B", "Llama-2-7B", False),
    ("qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct", False),
    ("TinyLlama-1.1B", "Llama-2-13B-Chat", False),
])
def test_same_pair_as_study(draft, target, same):
    assert same_pair_as_study(draft, target) is same


def test_exactly_one_primary_per_claim():
    def result(claim, primary):
        return ClaimResult(claim, "", "", primary, Verdict.HOLDS, "")
    check_one_primary([result("a", True), result("a", False), result("b", True)])
    with pytest.raises(ValueError, match=r"claim \(b\) has 2"):
        check_one_primary([result("a", True), result("b", True), result("b", True)])
    with pytest.raises(ValueError, match=r"claim \(a\) has 0"):
        check_one_primary([result("a", False)])
