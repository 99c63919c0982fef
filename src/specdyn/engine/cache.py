"""A batched KV cache whose slots know what they hold, so tree tokens can be masked and pruned.

Every cache slot of every row carries a *node* label and a position id:

- ``CONTEXT`` (-1): a committed token, visible to every later query at a higher or equal position;
- a node index ``>= 0``: a speculative tree node of the current step, visible only to its descendants;
- ``DEAD`` (-2): padding, visible to nobody.

Rows are independent sequences (prompts) of different lengths; the attention mask, built by
:func:`attention_mask` from the labels, keeps them apart. The cache changes in exactly one place,
:meth:`CachedModel.commit`, which keeps committed tokens plus the accepted path.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache

CONTEXT = -1
DEAD = -2


@dataclass
class Query:
    """Tokens to feed one forward pass, right-padded to a common length ``q``.

    ``nodes`` labels each query like a cache slot (CONTEXT for committed tokens, a node index for
    tree nodes, DEAD for padding); ``anc`` is the ancestor mask of the rows' current trees.
    """

    tokens: torch.Tensor  # [batch, q] long
    positions: torch.Tensor  # [batch, q] long
    nodes: torch.Tensor  # [batch, q] long
    anc: torch.Tensor  # [batch, n, n] bool (n >= 1)


def attention_mask(query: Query, key_nodes: torch.Tensor, key_pos: torch.Tensor) -> torch.Tensor:
    """Boolean ``[batch, q, k]`` mask from slot labels; the last q keys are the queries themselves.

    A query sees a CONTEXT key at an earlier or equal position; a tree query sees tree keys that are
    its ancestors (itself included); padding sees only itself.
    """
    qn, kn = query.nodes[:, :, None], key_nodes[:, None, :]  # [b, q, 1], [b, 1, k]
    context = (kn == CONTEXT) & (qn != DEAD) & (key_pos[:, None, :] <= query.positions[:, :, None])  # [b, q, k]
    n = query.anc.shape[-1]
    qi, ki = qn.clamp(0, n - 1), kn.clamp(0, n - 1)  # [b, q, 1], [b, 1, k]
    rows = torch.arange(qn.shape[0])[:, None, None]
    tree = (qn >= 0) & (kn >= 0) & query.anc[rows, qi, ki]  # [b, q, k]
    own = torch.zeros_like(tree)
    q = qn.shape[1]
    own[:, :, -q:] = torch.eye(q, dtype=torch.bool)  # every query sees its own slot
    return context | tree | own


class CachedModel:
    """A causal LM plus a batched KV cache with labelled slots (see the module docstring)."""

    def __init__(self, model, batch: int = 0):
        self.model = model
        self.device = next(model.parameters()).device
        self.cache = DynamicCache()
        self.nodes = torch.full((batch, 0), DEAD, dtype=torch.long)  # [batch, slots]
        self.pos = torch.zeros((batch, 0), dtype=torch.long)  # [batch, slots]

    @property
    def batch(self) -> int:
        return self.nodes.shape[0]

    def context_len(self) -> list[int]:
        """Committed tokens held in the cache, per row."""
        return (self.nodes == CONTEXT).sum(1).tolist()

    @torch.inference_mode()
    def forward(self, query: Query, logits_to_keep: int = 0) -> torch.Tensor:
        """Run the model on ``query`` and append its slots to the cache.

        Returns fp32 logits ``[batch, q, vocab]`` (only the last ``logits_to_keep`` queries when > 0)."""
        key_nodes = torch.cat([self.nodes, query.nodes], 1)  # [b, k]
        key_pos = torch.cat([self.pos, query.positions], 1)  # [b, k]
        allowed = attention_mask(query, key_nodes, key_pos)  # [b, q, k]
        dtype = self.model.dtype
        mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
        out = self.model(
            input_ids=query.tokens.to(self.device),
            position_ids=query.positions.to(self.device),
            attention_mask=mask[:, None].to(self.device),  # [b, 1, q, k]
            cache=self.cache,
            use_cache=True,
            logits_to_keep=logits_to_keep,
        )
        self.nodes, self.pos = key_nodes, key_pos
        return out.logits.float().cpu()  # [b, q, vocab]

    @torch.inference_mode()
    def commit(self, accepted: list[list[int]]) -> None:
        """Keep each row's committed tokens and its accepted tree nodes (which become CONTEXT);
        drop every other tree node and padding, and compact the rows."""
        keep = self.nodes == CONTEXT  # [b, slots]
        for row, path in enumerate(accepted):
            keep[row] |= torch.isin(self.nodes[row], torch.tensor(path, dtype=torch.long))
        self._gather(keep)

    @torch.inference_mode()
    def _gather(self, keep: torch.Tensor) -> None:
        """Move each row's kept slots to the front (stable order) and cut the common tail of padding.

        The slots every row keeps at its start stay where they are: only the tail behind them moves, in
        place, and when each row's kept slots already lead its tail nothing moves (the cache is sliced)."""
        width = int(keep.sum(1).max()) if keep.numel() else 0
        lead = leading_kept(keep)
        order = torch.sort((~keep[:, lead:]).to(torch.int8), dim=1, stable=True).indices[:, : width - lead] + lead
        kept = torch.gather(keep, 1, order[:, : width - lead])  # [b, width - lead]
        self.nodes = torch.where(torch.cat([keep[:, :lead], kept], 1), CONTEXT, DEAD)
        self.pos = torch.cat([self.pos[:, :lead], torch.gather(self.pos, 1, order)], 1)
        moved = not torch.equal(order, torch.arange(lead, width).expand_as(order))
        for layer in self._layers():
            layer.keys = _compact(layer.keys, order, lead, width, moved)
            layer.values = _compact(layer.values, order, lead, width, moved)

    def select_rows(self, rows: list[int]) -> None:
        """Keep only the given rows (e.g. drop finished prompts), in the given order."""
        idx = torch.tensor(rows, dtype=torch.long)
        self.nodes, self.pos = self.nodes[idx], self.pos[idx]
        for layer in self._layers():
            layer.keys = layer.keys[idx.to(self.device)]
            layer.values = layer.values[idx.to(self.device)]
        self._gather(self.nodes == CONTEXT)

    def append_rows(self, other: "CachedModel") -> None:
        """Add the rows of ``other`` (same model) below this cache's rows, padding slots as needed."""
        if self.batch == 0:
            self.cache, self.nodes, self.pos = other.cache, other.nodes, other.pos
            return
        width = max(self.nodes.shape[1], other.nodes.shape[1])
        self._pad_to(width), other._pad_to(width)
        self._ensure_layers(other), other._ensure_layers(self)
        self.nodes = torch.cat([self.nodes, other.nodes])
        self.pos = torch.cat([self.pos, other.pos])
        for mine, theirs in zip(self._layers(), other._layers()):
            mine.keys = torch.cat([mine.keys, theirs.keys])
            mine.values = torch.cat([mine.values, theirs.values])

    def _pad_to(self, width: int) -> None:
        extra = width - self.nodes.shape[1]
        if extra <= 0:
            return
        b = self.batch
        self.nodes = torch.cat([self.nodes, torch.full((b, extra), DEAD, dtype=torch.long)], 1)
        self.pos = torch.cat([self.pos, torch.zeros((b, extra), dtype=torch.long)], 1)
        for layer in self._layers():
            pad = layer.keys.new_zeros(b, layer.keys.shape[1], extra, layer.keys.shape[3])
            layer.keys = torch.cat([layer.keys, pad], 2)
            layer.values = torch.cat([layer.values, pad], 2)

    def _ensure_layers(self, template: "CachedModel") -> None:
        """Give a cache that never ran (one-token prompts) zero-filled layers shaped like ``template``'s."""
        if self._layers() or not template._layers():
            return
        for idx, layer in enumerate(template._layers()):
            heads, dim = layer.keys.shape[1], layer.keys.shape[3]
            zeros = layer.keys.new_zeros(self.batch, heads, self.nodes.shape[1], dim)  # [b, heads, slots, dim]
            self.cache.update(zeros, zeros.clone(), idx)

    def _layers(self):
        return [layer for layer in self.cache.layers if getattr(layer, "keys", None) is not None]


def leading_kept(keep: torch.Tensor) -> int:
    """How many slots at the start every row keeps (``keep``: ``[batch, slots]`` bool)."""
    if keep.numel() == 0:
        return 0
    lost = (~keep).any(0)  # [slots]: some row drops this slot
    return int(lost.to(torch.int8).argmax()) if lost.any() else keep.shape[1]


def _compact(states: torch.Tensor, order: torch.Tensor, lead: int, width: int, moved: bool) -> torch.Tensor:
    """``states`` (``[batch, heads, slots, dim]``) with slots ``order`` (``[batch, width - lead]``) written
    behind the first ``lead`` in place, cut to ``width`` slots."""
    if moved:
        index = order.to(states.device)[:, None, :, None].expand(-1, states.shape[1], -1, states.shape[3])
        states[:, :, lead:width] = torch.gather(states, 2, index)
    return states[:, :, :width]
