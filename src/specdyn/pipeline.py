"""From configuration to a ready decoder: model limits checked before any weights load, prompt encoding,
and proposers built from spec objects."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from specdyn.adapter_spec import check_adapter_base
from specdyn.config import DecodeConfig
from specdyn.defaults import CHEAP_VOCAB
from specdyn.engine import GenerationResult, PromptInput, SpeculativeDecoder
from specdyn.engine.adaptive import AdaptiveProposer, adaptive_costs
from specdyn.engine.cheap import int8_draft, truncated_head
from specdyn.engine.drafters import LookupOrModelProposer, PromptLookupProposer, early_exit_model
from specdyn.engine.proposers import DraftModelProposer, DynamicDraftProposer, Proposer
from specdyn.errors import SpecdynError
from specdyn.models import (
    LoadedModel, ModelLimits, load_model, load_pair, load_tokenizer, model_limits, peek_weights_id, resolve_device,
    resolve_dtype, resolve_name,
)
from specdyn.records import RecordLevel
from specdyn.specs import (
    AdaptiveTree, Children, DrafterSpec, DynamicTree, EarlyExitDrafter, LookupDrafter, ModelDrafter, Quant, Sampling,
    TreeSpec, check_children, check_drafter_tree,
)
from specdyn.token_lists import find_list

SAMPLE_BATCH = 4  # samples of one prompt decoded together (their draws do not depend on it)
LOOKUP_MAX_NGRAM = 3  # with model:lookup=N, matches of up to max(N, this) tokens are looked for


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
    """``config`` with local model folders as absolute paths and ``dtype="auto"`` resolved for this machine
    (:func:`specdyn.models.resolve_dtype`: what the manifest records and ``decode --json`` prints); a
    local-looking name that is no folder is an error here, before anything loads (see
    :func:`specdyn.models.classify` for the rule)."""
    draft = resolve_name(config.draft) if config.drafter.uses_draft_model else config.draft
    return replace(config, draft=draft, target=resolve_name(config.target),
                   dtype=resolve_dtype(config.dtype, config.device))


def check_limits(config: DecodeConfig, trees: Sequence[TreeSpec]) -> None:
    """Before any weights load, from the models' configs: the early-exit depth against the target's layer
    count, and the token limit plus the deepest tree (plus one prompt token) against the context."""
    target = model_limits(config.target)
    draft = model_limits(config.draft) if config.drafter.uses_draft_model else None
    if isinstance(config.drafter, EarlyExitDrafter):
        _check_early_exit(config.drafter, target)
    if isinstance(config.drafter, ModelDrafter):
        _check_cheap_draft(config)
    contexts = [m.max_context for m in (target, draft) if m is not None]
    depth = max(t.max_depth for t in trees)
    if contexts and config.max_new_tokens + depth + 1 > min(contexts):
        raise SpecdynError(f"max_new_tokens {config.max_new_tokens} + tree depth {depth} + 1 prompt token exceed "
                           f"the model context of {min(contexts)} tokens; lower --max-new-tokens")


def _check_early_exit(drafter: EarlyExitDrafter, target: ModelLimits | None) -> None:
    if target is not None and target.layers is not None and drafter.layers >= target.layers:
        raise SpecdynError(f"--drafter {drafter.text}: early exit needs fewer layers than the target's "
                           f"{target.layers} (1 <= layers < {target.layers})")


def _check_cheap_draft(config: DecodeConfig) -> None:
    """``quant=int8`` needs the CPU; ``vocab=K`` a token list for the draft's tokenizer holding K tokens
    (checked from the tokenizer alone; a registry draft not converted yet is checked once loaded)."""
    drafter = config.drafter
    if drafter.quant is Quant.INT8 and resolve_device(config.device).type != "cpu":
        raise SpecdynError(f"--drafter {drafter.text}: quant=int8 runs on the CPU only; use --device cpu")
    tokenizer = load_tokenizer(config.draft, prepare=False) if drafter.vocab else None
    if tokenizer is not None:
        find_list(tokenizer.get_vocab(), config.draft).top(drafter.vocab)


def prepare_draft(drafter: DrafterSpec, draft: LoadedModel | None) -> LoadedModel | None:
    """``draft`` as ``drafter`` runs it: its LM head cut to the token list's K most frequent tokens
    (``vocab=K``), then int8 (``quant=int8``); as loaded otherwise. The given model is left untouched."""
    if draft is None or not isinstance(drafter, ModelDrafter):
        return draft
    model = draft.model
    if drafter.vocab:
        model = truncated_head(model, find_list(draft.tokenizer.get_vocab(), draft.name).top(drafter.vocab))
    if drafter.quant is Quant.INT8:
        model = int8_draft(model)
    return replace(draft, model=model)


def build_proposer(drafter: DrafterSpec, tree: TreeSpec, draft: LoadedModel | None, target: LoadedModel,
                   children: Children = Children.TOPK, sampling: Sampling = Sampling(), batch: int = 1,
                   records: RecordLevel = RecordLevel.FULL) -> Proposer:
    """The proposer that ``drafter`` makes for ``tree`` (``draft`` as :func:`prepare_draft` made it);
    children drawn from the draft under ``sampling`` when ``children`` is SAMPLED; ``batch``: the batch size
    it will mostly decode at, for the startup cost measurement of an adaptive tree without a profile cost
    model; the draft statistics node records need are kept only for ``records=FULL``."""
    check_drafter_tree(drafter, tree)
    check_children(children, drafter, tree, sampling)
    if isinstance(drafter, LookupDrafter):
        return PromptLookupProposer(tree.shape, max_ngram=drafter.ngram)
    model = early_exit_model(target.model, drafter.layers) if isinstance(drafter, EarlyExitDrafter) else draft.model
    stop, full = getattr(drafter, "stop", 0.0), records is RecordLevel.FULL
    if isinstance(tree, DynamicTree):
        return DynamicDraftProposer(model, tree, stop=stop, full_stats=full)
    if isinstance(tree, AdaptiveTree):
        costs = adaptive_costs(tree, model, target.model, [1, batch])
        return AdaptiveProposer(model, tree, costs, stop=stop, full_stats=full)
    proposer = DraftModelProposer(model, tree.shape, children, sampling, stop=stop, full_stats=full)
    lookup = getattr(drafter, "lookup", 0)
    if not lookup:
        return proposer
    return LookupOrModelProposer(PromptLookupProposer(tree.shape, max(lookup, LOOKUP_MAX_NGRAM), lookup), proposer)


def build_decoder(config: DecodeConfig, draft: LoadedModel | None, target: LoadedModel,
                  tree: TreeSpec | None = None, records: RecordLevel = RecordLevel.FULL) -> SpeculativeDecoder:
    """A decoder for a loaded (draft, target) pair under ``config`` (with ``tree`` instead of its own): its
    sampling setting, children and seed included, recording at level ``records``."""
    proposer = build_proposer(config.drafter, tree or config.tree, draft, target, config.children, config.sampling,
                              getattr(config, "batch_size", 1), records)
    return SpeculativeDecoder(proposer, target.model, target.eos_token_ids, config.max_new_tokens,
                              sampling=config.sampling, seed=config.seed, records=records)


def check_adapter(config: DecodeConfig) -> None:
    """Before any weights load: the draft adapter, if any, was trained on the configured draft's weights."""
    if config.draft_adapter is not None:
        check_adapter_base(config.draft_adapter, config.draft, peek_weights_id(config.draft))


def load_models(config: DecodeConfig, trees: Sequence[TreeSpec] | None = None):
    """(draft, target) LoadedModels for ``config``, after :func:`check_limits` for ``trees`` (default: the
    config's tree) and :func:`check_adapter`; draft is None when the drafter needs no draft model, else it
    has the config's adapter merged, then is made cheaper as the drafter says (:func:`prepare_draft`)."""
    check_limits(config, trees or [config.tree])
    check_adapter(config)
    if not config.drafter.uses_draft_model:
        return None, load_model(config.target, config.dtype, config.device)
    draft, target = load_pair(config.draft, config.target, config.dtype, config.device)
    if config.draft_adapter is not None:
        from specdyn.distill.adapter import apply_adapter

        draft = apply_adapter(draft, config.draft_adapter)
    return prepare_draft(config.drafter, draft), target


def cheaper_drafters(drafter: DrafterSpec) -> list[ModelDrafter]:
    """The cheaper variants of a model drafter `specdyn budget --measure` times besides it: int8, and int8
    with a truncated head of CHEAP_VOCAB tokens, each keeping the drafter's other options."""
    if not isinstance(drafter, ModelDrafter):
        return []
    variants = [replace(drafter, quant=Quant.INT8, vocab=v) for v in (drafter.vocab, drafter.vocab or CHEAP_VOCAB)]
    return [v for v in dict.fromkeys(variants) if v != drafter]


@dataclass
class TimedModels:
    """The models `specdyn budget --measure` times: the run's drafter's model (None for prompt lookup), the
    cheaper drafters' (spec text -> model) and the target's."""

    draft: object | None
    target: object
    alternatives: dict[str, object] = field(default_factory=dict)


def timed_models(config: DecodeConfig) -> TimedModels:
    """Load what a run with ``config`` drafts and verifies with, plus its cheaper drafters' models (those
    a token list and the device allow), after :func:`check_limits`."""
    check_limits(config, [config.tree])
    if not config.drafter.uses_draft_model:
        target = load_model(config.target, config.dtype, config.device)
        own = early_exit_model(target.model, config.drafter.layers) if isinstance(config.drafter, EarlyExitDrafter) else None
        return TimedModels(own, target.model)
    plain, target = load_pair(config.draft, config.target, config.dtype, config.device)
    others = {d.text: prepare_draft(d, plain).model for d in cheaper_drafters(config.drafter) if _buildable(d, plain)}
    return TimedModels(prepare_draft(config.drafter, plain).model, target.model, others)


def _buildable(drafter: ModelDrafter, draft: LoadedModel) -> bool:
    """Whether this machine and the draft's token list allow ``drafter``."""
    try:
        if drafter.vocab:
            find_list(draft.tokenizer.get_vocab(), draft.name).top(drafter.vocab)
        return drafter.quant is not Quant.INT8 or next(draft.model.parameters()).device.type == "cpu"
    except SpecdynError:
        return False


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

    def __init__(self, config: DecodeConfig | None = None, records: RecordLevel = RecordLevel.FULL):
        self.config = resolve_models(config or DecodeConfig())
        self.draft, self.target = load_models(self.config)
        self.decoder = build_decoder(self.config, self.draft, self.target, records=records)

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
