"""Warping logits into the distribution tokens are drawn from, and drawing from it reproducibly.

Every random number a prompt uses comes from its own ``torch.Generator`` (:func:`row_generator`), so its
draws depend on the run seed and its prompt id only.
"""

from __future__ import annotations

import torch

from specdyn.sampling_spec import Sampling, row_seed


def row_generator(seed: int, prompt_id: str) -> torch.Generator:
    """The generator that feeds every random draw of one prompt (see :func:`row_seed`)."""
    return torch.Generator().manual_seed(row_seed(seed, prompt_id))


def top_p_filter(scores: torch.Tensor, top_p: float) -> torch.Tensor:
    """Set to -inf the tokens outside the top-p nucleus of ``scores`` (``[..., vocab]`` logits).

    Same rule as transformers' ``TopPLogitsWarper`` (with one token kept at least): sort ascending, and
    drop every token whose cumulative probability counted from the least likely is ``<= 1 - top_p``.
    """
    ascending, order = torch.sort(scores, descending=False)
    mass_up_to = ascending.softmax(-1).cumsum(-1)  # [..., vocab]
    drop = mass_up_to <= 1 - top_p
    drop[..., -1:] = False  # the most likely token always stays
    return scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))


def warp_logits(logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """Temperature, then top-p (skipped at top_p == 1, as transformers does); needs temperature > 0."""
    scores = logits / sampling.temperature
    return top_p_filter(scores, sampling.top_p) if sampling.top_p < 1 else scores


def warped_probs(logits: torch.Tensor, sampling: Sampling) -> torch.Tensor:
    """The distribution a token is drawn from under ``sampling`` (``[..., vocab]``, float64).

    At temperature 0, a point mass on the argmax (the first one among ties, like greedy decoding)."""
    if sampling.greedy:
        hot = torch.zeros(logits.shape, dtype=torch.float64)
        return hot.scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
    return warp_logits(logits.float(), sampling).softmax(-1).double()


def draw(probs: torch.Tensor, u: float) -> int:
    """Inverse-CDF draw from ``probs`` (``[vocab]``, not necessarily normalized) with a uniform ``u``.

    A token of probability 0 is never returned."""
    cdf = probs.cumsum(0)
    index = int((cdf <= u * cdf[-1]).sum())
    return min(index, int(probs.nonzero().max()))


def draw_without_replacement(q: torch.Tensor, k: int, rng: torch.Generator) -> list[int]:
    """Up to ``k`` distinct tokens drawn one after another from ``q`` (``[vocab]``), each from ``q`` with the
    earlier ones removed and renormalized; fewer when ``q`` has fewer than ``k`` tokens of positive mass.

    Exponential race: token i waits ``E_i / q_i`` with ``E_i ~ Exp(1)``; the order of arrival is exactly
    sequential sampling without replacement.
    """
    waits = torch.empty(q.shape, dtype=torch.float64).exponential_(generator=rng) / q  # [vocab], inf where q == 0
    return torch.argsort(waits)[: min(k, int((q > 0).sum()))].tolist()
