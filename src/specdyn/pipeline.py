"""From configuration to a ready decoder: model limits checked before any weights load, prompt encoding,
and proposers built from spec objects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from specdyn.config import DecodeConfig
from specdyn.engine import GenerationResult, PromptInput, SpeculativeDecoder
from specdyn.engine.adaptive import AdaptiveProposer, adaptive_costs
from specdyn.engine.drafters import PromptLookupProposer, early_exit_model
from specdyn.engine.proposers import DraftModelProposer, DynamicDraftProposer, Proposer
from specdyn.errors import SpecdynError
from specdyn.adapter_spec import check_adapter_base
from specdyn.models import LoadedModel, ModelLimits, load_model, load_pair, model_limits, peek_weights_id, resolve_name
from specdyn.specs import (
    AdaptiveTree, Children, DrafterSpec, DynamicTree, EarlyExitDrafter, LookupDrafter, Sampling, TreeSpec,
    check_children, check_drafter_tree,
)

SAMPLE_BATCH = 4  # samples of one prompt decoded together (their draws do not depend on it)


def encode_messages(tokenizer, messages: list[dict], prompt_id: str = "the prompt") -> list[int]:
    """Token ids of a chat, rendered with the tokenizer's chat template plus the assistant prompt."""
    if not any(m.get("content", "").strip() for m in messages):
        raise SpecdynError("empty prompt")
    if getattr(tokenizer, "chat_template", None) is None:
        raise SpecdynError("the target tokenizer has no chat template (specdyn decode --raw feeds a prompt as is)")
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return _non_empty(list(ids["input_ids"] if hasattr(ids, "keys") else ids), prompt_id)


def encode_raw(tokenizer, text: str, prompt_id: str = "the prompt") -> list[int]:
    """Token ids of plain text (no chat template, no special tokens added)."""
    if not text.strip():
        raise SpecdynError("empty prompt")
    return _non_empty(tokenizer(text, add_special_tokens=False)["input_ids"], prompt_id)


def _non_empty(ids: list[int], prompt_id: str) -> list[int]:
    if not ids:
        raise SpecdynError(f"{prompt_id} tokenizes to zero tokens: nothing to decode from")
    return ids


def check_fits(prompt_ids: list[int], max_new_tokens: int, max_context: int, prompt_id: str = "the prompt",
               tree_depth: int = 0) -> None:
    """The prompt plus the generated tokens plus one tree's depth must fit the model's context."""
    if len(prompt_ids) + max_new_tokens + tree_depth > max_context:
        raise SpecdynError(
            f"{prompt_id} is too long: {len(prompt_ids)} tokens + max_new_tokens {max_new_tokens} (+ tree depth "
            f"{tree_depth}) exceeds the model context of {max_context} tokens"
        )


def resolve_models(config: DecodeConfig) -> DecodeConfig:
    """``config`` with local model folders as absolute paths; a local-looking name that is no folder is an
    error here, before anything loads (see :func:`specdyn.models.classify` for the rule)."""
    draft = resolve_name(config.draft) if config.drafter.uses_draft_model else config.draft
    return replace(config, draft=draft, target=resolve_name(config.target))


def check_limits(config: DecodeConfig, trees: Sequence[TreeSpec]) -> None:
    """Before any weights load, from the models' configs: the early-exit depth against the target's layer
    count, and the token limit plus the deepest tree (plus one prompt token) against the context."""
    target = model_limits(config.target)
    draft = model_limits(config.draft) if config.drafter.uses_draft_model else None
    if isinstance(config.drafter, EarlyExitDrafter):
        _check_early_exit(config.drafter, target)
    contexts = [m.max_context for m in (target, draft) if m is not None]
    depth = max(t.max_depth for t in trees)
    if contexts and config.max_new_tokens + depth + 1 > min(contexts):
        raise SpecdynError(f"max_new_tokens {config.max_new_tokens} + tree depth {depth} + 1 prompt token exceed "
                           f"the model context of {min(contexts)} tokens; lower --max-new-tokens")


def _check_early_exit(drafter: EarlyExitDrafter, target: ModelLimits | None) -> None:
    if target is not None and target.layers is not None and drafter.layers >= target.layers:
        raise SpecdynError(f"--drafter {drafter.text}: early exit needs fewer layers than the target's "
                           f"{target.layers} (1 <= layers < {target.layers})")


def build_proposer(drafter: DrafterSpec, tree: TreeSpec, draft: LoadedModel | None, target: LoadedModel,
                   children: Children = Children.TOPK, sampling: Sampling = Sampling(), batch: int = 1) -> Proposer:
    """The proposer that ``drafter`` makes for ``tree`` (children drawn from the draft under ``sampling``
    when ``children`` is SAMPLED; ``batch``: the batch size it will mostly decode at, for the startup cost
    measurement of an adaptive tree without a profile cost model)."""
    check_drafter_tree(drafter, tree)
    check_children(children, drafter, tree, sampling)
    if isinstance(drafter, LookupDrafter):
        return PromptLookupProposer(tree.shape, max_ngram=drafter.ngram)
    model = early_exit_model(target.model, drafter.layers) if isinstance(drafter, EarlyExitDrafter) else draft.model
    if isinstance(tree, DynamicTree):
        return DynamicDraftProposer(model, tree)
    if isinstance(tree, AdaptiveTree):
        return AdaptiveProposer(model, tree, adaptive_costs(tree, model, target.model, [1, batch]))
    return DraftModelProposer(model, tree.shape, children, sampling)


def build_decoder(config: DecodeConfig, draft: LoadedModel | None, target: LoadedModel,
                  tree: TreeSpec | None = None) -> SpeculativeDecoder:
    """A decoder for a loaded (draft, target) pair under ``config`` (with ``tree`` instead of its own):
    its sampling setting, children and seed included."""
    proposer = build_proposer(config.drafter, tree or config.tree, draft, target, config.children, config.sampling,
                              getattr(config, "batch_size", 1))
    return SpeculativeDecoder(proposer, target.model, target.eos_token_ids, config.max_new_tokens,
                              sampling=config.sampling, seed=config.seed)


def check_adapter(config: DecodeConfig) -> None:
    """Before any weights load: the draft adapter, if any, was trained on the configured draft's weights."""
    if config.draft_adapter is not None:
        check_adapter_base(config.draft_adapter, config.draft, peek_weights_id(config.draft))


def load_models(config: DecodeConfig, trees: Sequence[TreeSpec] | None = None):
    """(draft, target) LoadedModels for ``config``, after :func:`check_limits` for ``trees`` (default: the
    config's tree) and :func:`check_adapter`; draft is None when the drafter needs no draft model, and
    has the config's adapter merged when there is one."""
    check_limits(config, trees or [config.tree])
    check_adapter(config)
    if not config.drafter.uses_draft_model:
        return None, load_model(config.target, config.dtype, config.device)
    draft, target = load_pair(config.draft, config.target, config.dtype, config.device)
    if config.draft_adapter is not None:
        from specdyn.distill.adapter import apply_adapter

        draft = apply_adapter(draft, config.draft_adapter)
    return draft, target


def context_limit(draft: LoadedModel | None, target: LoadedModel) -> int:
    """The longest sequence both models accept."""
    return min(m.max_context for m in (draft, target) if m is not None)


def sample_id(index: int) -> str:
    """The prompt id of sample ``index`` of one prompt: with the seed, it seeds the sample's random draws."""
    return f"sample-{index}"


def in_order(results: Iterable[GenerationResult], ids: Iterable[str]) -> Iterator[GenerationResult]:
    """``results`` (in the order they finish) in the order of ``ids``, each as soon as all before it are out."""
    waiting, ids = {}, iter(ids)
    wanted = next(ids, None)
    for result in results:
        waiting[result.prompt_id] = result
        while wanted in waiting:
            yield waiting.pop(wanted)
            wanted = next(ids, None)


class TextDecoder:
    """Text in, :class:`~specdyn.engine.GenerationResult` out: models, chat template and decoder together.

    >>> dec = TextDecoder(DecodeConfig(tree="static:depth=3,branch=2"))   # loads the default pair
    >>> res = dec.generate("Write a haiku about caches.")
    >>> res.text, res.output_ids, res.accepted, res.nodes[:3]
    >>> hot = TextDecoder(DecodeConfig(temperature=0.7, top_p=0.95, seed=1))
    >>> [r.text for r in hot.generate_samples("Name a prime.", samples=3)]   # three independent samples
    """

    def __init__(self, config: DecodeConfig | None = None):
        self.config = resolve_models(config or DecodeConfig())
        self.draft, self.target = load_models(self.config)
        self.decoder = build_decoder(self.config, self.draft, self.target)

    def generate(self, prompt: str, raw: bool = False) -> GenerationResult:
        """One decoding of ``prompt``: sample 0 (the same result as the first of :meth:`generate_samples`)."""
        return next(self.generate_samples(prompt, 1, raw))

    def generate_samples(self, prompt: str, samples: int, raw: bool = False) -> Iterator[GenerationResult]:
        """``samples`` decodings of ``prompt``, in order, with prompt ids ``sample-0``, ``sample-1``, ...: each
        draws from its own stream, seeded by (config seed, its id), so they are independent and reproducible
        (identical at temperature 0). Up to :data:`SAMPLE_BATCH` are decoded together."""
        ids = self._encode(prompt, raw)
        inputs = (PromptInput(sample_id(i), ids) for i in range(samples))  # lazily: K may be large
        results = self.decoder.generate_many(inputs, batch_size=SAMPLE_BATCH)
        for result in in_order(results, map(sample_id, range(samples))):
            result.text = self.target.tokenizer.decode(result.output_ids, skip_special_tokens=True)
            yield result

    def _encode(self, prompt: str, raw: bool) -> list[int]:
        tok = self.target.tokenizer
        ids = encode_raw(tok, prompt) if raw else encode_messages(tok, [{"role": "user", "content": prompt}])
        check_fits(ids, self.config.max_new_tokens, context_limit(self.draft, self.target),
                   tree_depth=self.config.tree.max_depth)
        return ids
