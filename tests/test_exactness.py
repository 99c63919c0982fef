"""Speculative sampling is exact: the first two generated tokens follow the warped target's distribution.

For each case (tree kind x children x temperature/top-p) thousands of independent samples of one prompt
are decoded in one batch (each row has its own prompt id, hence its own random stream) and stopped after
two tokens. Their joint counts are compared with the exact distribution, enumerated from the target:
P(x1, x2) = p(x1 | prompt) p(x2 | prompt, x1) under temperature and top-p (chi-square goodness of fit,
cells with expected count < 5 pooled).

Multiplicity: the correct verifier passes a case when p > ALPHA / number of cases (Bonferroni; ALPHA = 1%
family-wise false-failure rate with fixed seeds chosen blind), and Fisher's combination of all cases must
pass ALPHA too (catches a small bias every case shares). The same machinery must reject deliberately
wrong verifiers with p < 1e-9, and is itself checked for calibration on exact multinomial draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import pytest
import torch
from scipy import stats

from specdyn.engine import PromptInput, SpeculativeDecoder
from specdyn.engine.cheap import int8_draft, truncated_head
from specdyn.engine.drafters import LookupOrModelProposer, PromptLookupProposer
from specdyn.engine.proposers import DraftModelProposer, DynamicDraftProposer, Picked
from specdyn.engine.sampling import warped_probs
from specdyn.specs import DynamicTree, shape_from_paths, static_shape
from specdyn.engine.verify import Residual, SamplingVerifier
from specdyn.sampling_spec import Children, Sampling
from tiny import tiny_model

VOCAB = 12
PROMPT = [5]
LOOKUP_PROMPT = [5, 7, 5, 9, 5]  # the suffix 5 occurred twice: the lookup tree branches into 9.. and 7..
SAMPLES = 3000
ALPHA = 0.01
SETTINGS = [Sampling(0.7, 1.0), Sampling(1.0, 0.8), Sampling(1.5, 1.0)]
SHAPES = {"static": static_shape(2, 2), "paths": shape_from_paths([[0], [1], [2], [0, 0], [0, 1], [1, 0]])}

pytestmark = pytest.mark.usefixtures("one_thread")


@cache
def models():
    """A target and a clearly different draft (TV distance 0.3-0.6 at the first position)."""
    return tiny_model("qwen2", seed=11, vocab=VOCAB), tiny_model("llama", seed=12, vocab=VOCAB)


@dataclass(frozen=True)
class Case:
    tree: str  # static | paths | dynamic | lookup | cheap (int8, truncated head, early stop) | lookup-or-model
    children: Children
    sampling: Sampling

    @property
    def prompt(self) -> list[int]:
        return LOOKUP_PROMPT if self.tree.startswith("lookup") else PROMPT

    def proposer(self, draft, cls=DraftModelProposer):
        if self.tree == "lookup":
            return PromptLookupProposer(static_shape(2, 2))
        if self.tree == "cheap":  # children drawn from an int8 draft over even tokens only, cut below value 0.1
            cheap = int8_draft(truncated_head(draft, list(range(0, VOCAB, 2))))
            return DraftModelProposer(cheap, SHAPES["static"], self.children, self.sampling, stop=0.1)
        if self.tree == "lookup-or-model":  # the lookup's tree at step 1, the model's at step 2
            lookup = PromptLookupProposer(static_shape(2, 2), min_ngram=1)
            return LookupOrModelProposer(lookup, DraftModelProposer(draft, SHAPES["static"], self.children, self.sampling))
        if self.tree == "dynamic":
            return DynamicDraftProposer(draft, DynamicTree(nodes=6, depth=2, topk=3))
        return cls(draft, SHAPES[self.tree], self.children, self.sampling)

    def __str__(self) -> str:
        return f"{self.tree}-{self.children.value}-T{self.sampling.temperature}-p{self.sampling.top_p}"


CASES = [Case(tree, children, s) for tree in SHAPES for children in Children for s in SETTINGS]
CASES += [Case(tree, Children.TOPK, s) for tree in ("dynamic", "lookup") for s in SETTINGS]
CASES += [Case("paths", Children.SAMPLED, Sampling(1.2, 0.3))]  # a nucleus narrower than the shape: fewer draws
CASES += [Case("cheap", Children.SAMPLED, Sampling(1.0, 0.8)), Case("lookup-or-model", Children.SAMPLED, Sampling(0.7))]


def exact_joint(target, prompt: list[int], sampling: Sampling) -> np.ndarray:
    """``[VOCAB, VOCAB]`` probabilities of the first two tokens under the warped target."""
    with torch.no_grad():
        first = target(input_ids=torch.tensor([prompt])).logits[0, -1]  # [vocab]
        second = target(input_ids=torch.tensor([prompt + [x] for x in range(VOCAB)])).logits[:, -1]  # [vocab, vocab]
    return warped_probs(first, sampling).numpy()[:, None] * warped_probs(second, sampling).numpy()


def sample_pairs(proposer, target, prompt: list[int], sampling: Sampling, seed: int, verifier=None) -> np.ndarray:
    """Counts ``[VOCAB, VOCAB]`` of the first two tokens of SAMPLES independent decodes of ``prompt``."""
    decoder = SpeculativeDecoder(proposer, target, [], max_new_tokens=2, verifier=verifier, sampling=sampling, seed=seed)
    counts = np.zeros((VOCAB, VOCAB), dtype=np.int64)
    for res in decoder.generate_many([PromptInput(f"s{i}", prompt) for i in range(SAMPLES)], batch_size=SAMPLES):
        counts[res.output_ids[0], res.output_ids[1]] += 1
    return counts


def pooled_chisquare(counts: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> float:
    """Chi-square goodness-of-fit p-value; the cells of smallest expected count are pooled into one bin
    (all cells below ``min_expected``, plus the next smallest until the bin reaches it)."""
    order = np.argsort(probs.ravel())
    obs, exp = counts.ravel()[order].astype(float), probs.ravel()[order] * counts.sum()
    small = int((exp < min_expected).sum())
    if small:
        cut = max(small, int(np.searchsorted(np.cumsum(exp), min_expected)) + 1)
        obs, exp = np.r_[obs[:cut].sum(), obs[cut:]], np.r_[exp[:cut].sum(), exp[cut:]]
    return float(stats.chisquare(obs, exp * obs.sum() / exp.sum()).pvalue)


@cache
def case_pvalue(case: Case) -> float:
    target, draft = models()
    probs = exact_joint(target, case.prompt, case.sampling)
    counts = sample_pairs(case.proposer(draft), target, case.prompt, case.sampling, seed=CASES.index(case))
    assert counts[probs == 0].sum() == 0, "a pair the warped target never produces was sampled"
    return pooled_chisquare(counts, probs)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_speculative_sampling_matches_the_target(case):
    assert case_pvalue(case) > ALPHA / len(CASES)


def test_all_cases_together():
    assert stats.combine_pvalues([case_pvalue(c) for c in CASES], method="fisher").pvalue > ALPHA


# ------------------------------------------------------------------------------------------------
# Power: deliberately wrong verification must be rejected.


class Uncorrected(Residual):
    """Forgets the residual correction: a rejected child's mass stays in p (q still loses drawn children)."""

    def reject(self, token):
        return Uncorrected(self.p, super().reject(token).q)


class SkipsResidual(SamplingVerifier):
    def start(self, tree, pos, p):
        first = super().start(tree, pos, p)
        return Uncorrected(first.p, first.q)


class TopKAsDrawn(DraftModelProposer):
    """Top-k children verified as if drawn from the draft: min(1, p(x)/q(x)) with the draft's q (wrong)."""

    def _pick(self, logits, ranks, rng, *rest):
        return Picked(super()._pick(logits, ranks, rng, *rest).tokens, warped_probs(logits, self.sampling))


@pytest.mark.parametrize("case, wrong", [
    (Case("static", Children.TOPK, Sampling(1.0)), "skip-residual"),
    (Case("static", Children.SAMPLED, Sampling(1.0)), "skip-residual"),
    (Case("static", Children.TOPK, Sampling(0.7)), "topk-as-drawn"),
    (Case("paths", Children.TOPK, Sampling(1.0, 0.8)), "topk-as-drawn"),
], ids=str)
def test_wrong_verification_is_rejected(case, wrong):
    target, draft = models()
    proposer = case.proposer(draft, TopKAsDrawn if wrong == "topk-as-drawn" else DraftModelProposer)
    verifier = SkipsResidual(case.sampling) if wrong == "skip-residual" else None
    counts = sample_pairs(proposer, target, case.prompt, case.sampling, seed=99, verifier=verifier)
    assert pooled_chisquare(counts, exact_joint(target, case.prompt, case.sampling)) < 1e-9


# ------------------------------------------------------------------------------------------------
# Calibration of the test itself, on exact draws (no model involved).


def test_pooled_chisquare_is_calibrated_on_exact_draws():
    target, _ = models()
    probs = exact_joint(target, PROMPT, Sampling(0.7)).ravel()  # many tiny cells: pooling matters
    probs /= probs.sum()
    rng = np.random.default_rng(0)
    pvalues = np.array([pooled_chisquare(rng.multinomial(SAMPLES, probs), probs) for _ in range(2000)])
    assert 0.035 < (pvalues < 0.05).mean() < 0.065  # nominal 5%, +-3 binomial standard deviations
    assert (pvalues < 0.01).mean() < 0.02
    shifted = 0.9 * probs + 0.1 * np.roll(probs, 1)  # a 10% mixture: detected nearly always
    power = np.mean([pooled_chisquare(rng.multinomial(SAMPLES, shifted), probs) < ALPHA / len(CASES) for _ in range(200)])
    assert power > 0.9
