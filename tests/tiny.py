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


CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["<|end|>", "<|user|>", "<|assistant|>", "<|system|>"]


def tiny_tokenizer():
    """A byte-level tokenizer (256 byte tokens + 4 specials) with a chat template; ``<|end|>`` is EOS."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet))}
    for s in SPECIALS:
        vocab[s] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|end|>", additional_special_tokens=SPECIALS[1:])
    fast.chat_template = CHAT_TEMPLATE
    return fast


def save_tiny_pair(folder, arch: str = "qwen2", noise: float = 0.3):
    """Save a tiny (draft, target) pair with the byte tokenizer into ``folder/draft`` and ``folder/target``."""
    from pathlib import Path

    tok = tiny_tokenizer()
    target = tiny_model(arch, seed=0, vocab=len(tok))
    target.config.eos_token_id = tok.eos_token_id
    draft = perturbed(target, noise)
    paths = {}
    for name, model in (("draft", draft), ("target", target)):
        path = Path(folder) / name
        model.save_pretrained(path)
        tok.save_pretrained(path)
        paths[name] = str(path)
    return paths
