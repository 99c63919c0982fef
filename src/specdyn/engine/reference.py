"""Reference decoders: plain autoregressive decoding of the target alone, through the model's ordinary
causal path. Speculative decoding must emit exactly what :func:`target_greedy` emits at temperature 0,
and tokens distributed as :func:`target_sample`'s otherwise."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch

from specdyn.engine.sampling import draw, warped_probs
from specdyn.sampling_spec import Sampling


@torch.inference_mode()
def target_decode(model, prompt_ids: list[int], max_new_tokens: int, eos_token_ids: Iterable[int],
                  pick: Callable[[torch.Tensor], int]) -> list[int]:
    """Generate with ``model`` alone, choosing each token with ``pick(fp32 logits [vocab])``."""
    eos = frozenset(eos_token_ids)
    device = next(model.parameters()).device
    out = model(input_ids=torch.tensor([prompt_ids], device=device), use_cache=True)
    cache, generated = out.cache, []
    while True:
        tok = pick(out.logits[0, -1].float().cpu())
        generated.append(tok)
        if tok in eos or len(generated) >= max_new_tokens:
            return generated
        out = model(input_ids=torch.tensor([[tok]], device=device), cache=cache, use_cache=True)


def target_greedy(model, prompt_ids: list[int], max_new_tokens: int, eos_token_ids: Iterable[int]) -> list[int]:
    """Plain greedy decoding of one model (the losslessness reference)."""
    return target_decode(model, prompt_ids, max_new_tokens, eos_token_ids, lambda lg: int(lg.argmax()))


def target_sample(model, prompt_ids: list[int], max_new_tokens: int, eos_token_ids: Iterable[int],
                  sampling: Sampling, generator: torch.Generator) -> list[int]:
    """Plain sampling from the warped target (one uniform per token, inverse CDF); greedy at temperature 0."""
    def pick(logits: torch.Tensor) -> int:
        u = float(torch.rand((), generator=generator, dtype=torch.float64))
        return draw(warped_probs(logits, sampling), u)

    return target_decode(model, prompt_ids, max_new_tokens, eos_token_ids, pick)
