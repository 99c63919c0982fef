"""From configuration to a ready decoder: prompt encoding and drafter construction."""

from __future__ import annotations

from specdyn.config import DecodeConfig, validate
from specdyn.engine import SpeculativeDecoder
from specdyn.errors import SpecdynError
from specdyn.engine.drafters import PromptLookupProposer, early_exit_model
from specdyn.engine.proposers import DraftModelProposer, DynamicDraftProposer, Proposer
from specdyn.engine.tree import DynamicSpec, TreeSpec, kv_args, parse_tree_spec

DRAFTER_HELP = (
    "model (the --draft model; default) | lookup[:ngram=N] (prompt lookup, no draft model) | "
    "early-exit:layers=K (the target's first K layers + its head)"
)


def encode_messages(tokenizer, messages: list[dict]) -> list[int]:
    """Token ids of a chat, rendered with the tokenizer's chat template plus the assistant prompt."""
    if not any(m.get("content", "").strip() for m in messages):
        raise SpecdynError("empty prompt")
    if getattr(tokenizer, "chat_template", None) is None:
        raise SpecdynError("the target tokenizer has no chat template (specdyn decode --raw feeds a prompt as is)")
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return list(ids["input_ids"] if hasattr(ids, "keys") else ids)


def encode_raw(tokenizer, text: str) -> list[int]:
    """Token ids of plain text (no chat template, no special tokens added)."""
    if not text.strip():
        raise SpecdynError("empty prompt")
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def check_fits(prompt_ids: list[int], max_new_tokens: int, max_context: int, prompt_id: str = "the prompt",
               tree_depth: int = 0) -> None:
    """The prompt plus the generated tokens plus one tree's depth must fit the model's context."""
    if len(prompt_ids) + max_new_tokens + tree_depth > max_context:
        raise SpecdynError(
            f"{prompt_id} is too long: {len(prompt_ids)} tokens + max_new_tokens {max_new_tokens} (+ tree depth "
            f"{tree_depth}) exceeds "
            f"the model context of {max_context} tokens"
        )


def parse_drafter(drafter: str) -> tuple[str, dict[str, int]]:
    """Split a drafter spec into its kind and integer arguments, checking both."""
    kind, _, rest = drafter.partition(":")
    allowed = {"model": set(), "lookup": {"ngram"}, "early-exit": {"layers"}}
    if kind not in allowed:
        raise SpecdynError(f"unknown drafter {drafter!r}; known: {DRAFTER_HELP}")
    args = kv_args(rest, drafter, flag="--drafter")
    if set(args) - allowed[kind] or (kind == "early-exit" and "layers" not in args) or min(args.values(), default=1) < 1:
        raise SpecdynError(f"malformed drafter {drafter!r}; use {DRAFTER_HELP}")
    return kind, args


def needs_draft_model(drafter: str) -> bool:
    return parse_drafter(drafter)[0] == "model"


def build_proposer(drafter: str, tree: TreeSpec, draft, target) -> Proposer:
    """The proposer named by ``drafter`` for this tree spec (``draft``/``target`` are LoadedModels)."""
    kind, args = parse_drafter(drafter)
    if kind == "lookup":
        if isinstance(tree, DynamicSpec):
            raise SpecdynError("the lookup drafter takes a static or paths tree, not a dynamic one")
        return PromptLookupProposer(tree, max_ngram=args.get("ngram", 3))
    model = draft.model if kind == "model" else early_exit_model(target.model, args["layers"])
    if isinstance(tree, DynamicSpec):
        return DynamicDraftProposer(model, tree)
    return DraftModelProposer(model, tree)


def build_decoder(config: DecodeConfig, draft, target) -> SpeculativeDecoder:
    """A decoder for a loaded (draft, target) pair under ``config``."""
    proposer = build_proposer(config.drafter, parse_tree_spec(config.tree), draft, target)
    return SpeculativeDecoder(proposer, target.model, target.eos_token_ids, config.max_new_tokens)


def load_models(config: DecodeConfig):
    """(draft, target) LoadedModels for ``config``; draft is None when the drafter needs no draft model."""
    from specdyn.models import load_model, load_pair

    if needs_draft_model(config.drafter):
        return load_pair(config.draft, config.target, config.dtype, config.device)
    return None, load_model(config.target, config.dtype, config.device)


def context_limit(draft, target) -> int:
    """The longest sequence both models accept."""
    return min(m.max_context for m in (draft, target) if m is not None)


class TextDecoder:
    """Text in, :class:`~specdyn.engine.GenerationResult` out: models, chat template and decoder together.

    >>> dec = TextDecoder(DecodeConfig(tree="static:depth=3,branch=2"))   # loads the default pair
    >>> res = dec.generate("Write a haiku about caches.")
    >>> res.text, res.output_ids, res.accepted, res.nodes[:3]
    """

    def __init__(self, config: DecodeConfig | None = None):
        self.config = config or DecodeConfig()
        validate(self.config)
        self.draft, self.target = load_models(self.config)
        self.decoder = build_decoder(self.config, self.draft, self.target)

    def generate(self, prompt: str, raw: bool = False):
        tok = self.target.tokenizer
        ids = encode_raw(tok, prompt) if raw else encode_messages(tok, [{"role": "user", "content": prompt}])
        check_fits(ids, self.config.max_new_tokens, context_limit(self.draft, self.target),
                   tree_depth=tree_depth(self.config.tree))
        result = self.decoder.generate(ids)
        result.text = tok.decode(result.output_ids, skip_special_tokens=True)
        return result


def tree_depth(spec: str) -> int:
    """Deepest node a tree spec can produce (for context-length checks)."""
    tree = parse_tree_spec(spec)
    return tree.depth
