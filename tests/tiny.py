"""Tiny random-weight models of the real architectures, built from a config (no download)."""

from __future__ import annotations

import torch
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

VOCAB = 97


def tiny_model(arch: str = "qwen2", seed: int = 0, layers: int = 2, vocab: int = VOCAB):
    """A float32 random model with a small vocabulary; ``arch`` is "qwen2" or "llama"."""
    torch.manual_seed(seed)
    common = dict(vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=layers,
                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                  tie_word_embeddings=False)
    config = Qwen2Config(**common) if arch == "qwen2" else LlamaConfig(**common)
    config._attn_implementation = "sdpa"
    model = (Qwen2ForCausalLM if arch == "qwen2" else LlamaForCausalLM)(config)
    with torch.no_grad():  # sharper distributions, so greedy paths are less flat
        model.lm_head.weight.mul_(8.0)
    return model.eval()


def perturbed(model, scale: float, seed: int = 1):
    """A copy of ``model`` with Gaussian noise added to every weight: a draft that often agrees."""
    import copy

    torch.manual_seed(seed)
    other = copy.deepcopy(model)
    with torch.no_grad():
        for p in other.parameters():
            p.add_(torch.randn_like(p) * scale * p.std())
    return other
