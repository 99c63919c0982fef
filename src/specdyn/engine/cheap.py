"""Cheaper draft models: int8 weights and a truncated-vocabulary LM head (FR-Spec).

Both change only the draft: verification uses the target's full distribution, so greedy output stays
exactly the target's and only acceptance moves. Each function returns a new model and leaves the one it
was given untouched (the plain draft stays usable, e.g. by a benchmark comparing both).

- :func:`int8_draft`: every ``nn.Linear`` (the LM head included, a large share of a small model's work)
  gets int8 weights, quantized per output channel, with int8 activations quantized on the fly per pass
  (``torch.ao.quantization.quantize_dynamic``; fbgemm/oneDNN kernels that use VNNI/AMX where the CPU has
  them). The rest of the model (embeddings, norms, attention) runs in float32. CPU only.
- :func:`truncated_head`: the LM head computes logits for K token ids only; the other tokens get the
  smallest finite logit, so their probability is exactly 0 and the draft never proposes them. Logits keep
  the full vocabulary's width, so everything downstream (top-k, sampling, records) is unchanged.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn

from specdyn.engine.drafters import shallow_copy
from specdyn.errors import SpecdynError


class TruncatedHead(nn.Module):
    """An LM head over ``token_ids`` only, returning full-vocabulary logits (the smallest finite value
    for every other token)."""

    def __init__(self, head: nn.Linear, token_ids: list[int], vocab: int):
        super().__init__()
        ids = torch.tensor(token_ids, dtype=torch.long)
        self.proj = nn.Linear(head.in_features, len(token_ids), bias=head.bias is not None,
                              dtype=head.weight.dtype, device=head.weight.device)
        with torch.no_grad():
            self.proj.weight.copy_(head.weight[ids.to(head.weight.device)])
            if head.bias is not None:
                self.proj.bias.copy_(head.bias[ids.to(head.weight.device)])
        self.register_buffer("token_ids", ids.to(head.weight.device))
        self.vocab = vocab

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        small = self.proj(hidden)  # [..., K]
        out = small.new_full((*small.shape[:-1], self.vocab), torch.finfo(small.dtype).min)  # [..., vocab]
        return out.index_copy_(-1, self.token_ids, small)


def truncated_head(model, token_ids: list[int]):
    """``model`` (shared weights) with an LM head over ``token_ids`` only (:class:`TruncatedHead`)."""
    head = model.get_output_embeddings()
    if not isinstance(head, nn.Linear):
        raise SpecdynError(f"vocab=K needs a model whose LM head is a linear layer (got {type(head).__name__})")
    if max(token_ids) >= head.out_features:
        raise SpecdynError(f"the token list names id {max(token_ids)}, beyond the draft's {head.out_features} logits")
    out = shallow_copy(model)
    out.lm_head = TruncatedHead(head, token_ids, head.out_features)
    return out


def int8_draft(model):
    """A copy of ``model`` whose linear layers hold int8 weights (per output channel) and quantize their
    activations dynamically; everything else in float32."""
    if next(model.parameters()).device.type != "cpu":
        raise SpecdynError("quant=int8 runs on the CPU only (dynamic int8 kernels); use --device cpu or drop quant")
    fp32 = copy.deepcopy(model).float()
    with warnings.catch_warnings():  # torch.ao.quantization announces its move to torchao; it still ships
        warnings.simplefilter("ignore")
        spec = {nn.Linear: torch.ao.quantization.per_channel_dynamic_qconfig}
        return torch.ao.quantization.quantize_dynamic(fp32, spec, dtype=torch.qint8, inplace=True).eval()
