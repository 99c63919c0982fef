"""From configuration to a ready decoder: prompt encoding and drafter construction."""

from __future__ import annotations

from specdyn.config import DecodeConfig
from specdyn.engine import SpeculativeDecoder
from specdyn.errors import SpecdynError
from specdyn.proposers import DraftModelProposer, Proposer
from specdyn.tree import DynamicSpec, TreeSpec, parse_tree_spec

DRAFTER_HELP = "model (the --draft model; default)"


def encode_messages(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a chat, rendered with the tokenizer's chat template plus the assistant prompt."""
    if not any(m.get("content", "").strip() for m in messages):
        raise SpecdynError("empty prompt")
    if getattr(tokenizer, "chat_template", None) is None:
        raise SpecdynError("the target tokenizer has no chat template; pass --raw to feed the prompt as is")
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def encode_raw(tokenizer, text: str) -> list[int]:
    """Token ids of plain text (no chat template, no special tokens added)."""
    if not text.strip():
        raise SpecdynError("empty prompt")
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def check_fits(prompt_ids: list[int], max_new_tokens: int, max_context: int, prompt_id: str = "prompt") -> None:
    """The prompt plus the generated tokens plus one tree must fit the model's context."""
    if len(prompt_ids) + max_new_tokens > max_context:
        raise SpecdynError(
            f"{prompt_id}: prompt of {len(prompt_ids)} tokens + max_new_tokens {max_new_tokens} exceeds "
            f"the model context of {max_context} tokens"
        )


def build_proposer(drafter: str, tree: TreeSpec, draft, target) -> Proposer:
    """The proposer named by ``drafter`` for this tree spec (``draft``/``target`` are LoadedModels)."""
    if drafter != "model":
        raise SpecdynError(f"unknown drafter {drafter!r}; known: {DRAFTER_HELP}")
    if isinstance(tree, DynamicSpec):
        raise SpecdynError("dynamic trees are not available yet")
    return DraftModelProposer(draft.model, tree)


def build_decoder(config: DecodeConfig, draft, target) -> SpeculativeDecoder:
    """A decoder for a loaded (draft, target) pair under ``config``."""
    proposer = build_proposer(config.drafter, parse_tree_spec(config.tree), draft, target)
    return SpeculativeDecoder(proposer, target.model, target.eos_token_ids, config.max_new_tokens)
