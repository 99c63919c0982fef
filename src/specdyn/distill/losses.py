"""Per-position losses of the draft on the target's outputs: cross-entropy on the recorded output tokens
(sequence-level distillation) or a divergence from the target's own distributions (token-level)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from specdyn.distill.batches import Batch
from specdyn.distill.settings import TokenLevel


def predicted_logits(model, batch: Batch) -> torch.Tensor:
    """``[n, vocab]`` float32 logits at the positions that predict output tokens. The LM head runs on
    those positions only (a 150k vocabulary over every prompt token would dominate memory)."""
    hidden = model.get_decoder()(input_ids=batch.input_ids, attention_mask=batch.attention_mask).last_hidden_state
    return model.get_output_embeddings()(hidden[batch.predict]).float()


def _common_vocab(draft: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Models sharing a tokenizer may pad their vocabularies differently; compare the shared ids."""
    v = min(draft.shape[-1], target.shape[-1])
    return draft[..., :v], target[..., :v]


def position_losses(draft_logits: torch.Tensor, batch: Batch, mode: TokenLevel,
                    target_logits: torch.Tensor | None = None) -> torch.Tensor:
    """``[n]`` losses, one per predicted output token."""
    if mode is TokenLevel.NONE:
        return F.cross_entropy(draft_logits, batch.labels, reduction="none")
    d, t = _common_vocab(draft_logits, target_logits)
    if mode is TokenLevel.KL:
        p_log = F.log_softmax(t, dim=-1)
        return (p_log.exp() * (p_log - F.log_softmax(d, dim=-1))).sum(-1)
    return 0.5 * (F.softmax(t, dim=-1) - F.softmax(d, dim=-1)).abs().sum(-1)


def agreement(draft_logits: torch.Tensor, batch: Batch) -> int:
    """Positions where the draft's argmax is the target's recorded token (greedy top-1 acceptance)."""
    return int((draft_logits.argmax(-1) == batch.labels).sum())
