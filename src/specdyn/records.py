"""Typed records: what decoding writes for every node and step (every metric in specdyn is computed from
these alone), and the pass timings cost measurement writes (budget advice is computed from those).

Each field's meaning is in its ``doc`` metadata (see :func:`field_docs`); `docs/records.md` is generated
from the same text.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from enum import Enum


def _f(doc: str, default=None):
    return field(default=default, metadata={"doc": doc})


@dataclass(slots=True)
class NodeRecord:
    """One speculative node: a draft token proposed in one step's tree and scored by the target.

    Probabilities and entropies are temperature-1 statistics of the two models at every temperature;
    ``accepted_local``, ``accepted_path`` and ``verify_prob`` describe the run's own verification
    (greedy at temperature 0, speculative sampling of the warped target otherwise).
    """

    prompt_id: str = _f("Id of the prompt being decoded.")
    step: int = _f("Speculative step within the prompt, from 0.")
    node: int = _f("Index of the node in the step's tree (breadth-first order, from 0).")
    parent: int = _f("Index of the parent node; -1 when the parent is the last committed token.")
    depth: int = _f("Depth in the tree: 1 for the first speculative token.")
    rank: int = _f(
        "Sibling rank: 0 = the draft's most likely child of its parent, 1 = second, ... With children "
        "sampled from the draft (temperature > 0): the order of the draw, 0 = first (siblings are tried "
        "in this order)."
    )
    token: int = _f("Token id proposed by the drafter.")
    draft_prob: float = _f(
        "Drafter's probability of `token` at the parent position (temperature 1, at any run temperature). "
        "Drafters without a distribution (prompt lookup) record 1.0."
    )
    draft_entropy: float = _f(
        "Entropy in nats of the drafter's full next-token distribution at the parent position "
        "(temperature 1; 0.0 for drafters without a distribution)."
    )
    target_prob: float = _f(
        "Target's probability of `token` at the parent position (temperature 1, at any run temperature)."
    )
    target_entropy: float = _f(
        "Entropy in nats of the target's full next-token distribution at the parent position (temperature 1)."
    )
    accept_prob: float = _f(
        "min(1, target_prob / draft_prob) (continuous acceptance): the probability that speculative sampling "
        "at temperature 1 accepts the token once its parent is reached, when the token was drawn from the "
        "draft and is tried first; a later sibling (tried against the residual) or a top-k child has another "
        "chance. A property of the two models, the same at every run temperature; the run's own acceptance "
        "chance is `verify_prob`."
    )
    accepted_local: bool = _f(
        "True when the node is the child the verifier accepts at its parent position, whatever happened "
        "to the parent (node-local acceptance). Temperature 0: `token` equals the target's argmax there. "
        "Temperature > 0: the verifier tries every sibling group of the tree with its own random draws, "
        "reached or not; at a reached position this is the real decision, elsewhere the decision those "
        "draws give. At most one of a node's siblings can be true."
    )
    accepted_path: bool = _f(
        "True when the node lies on the accepted path of its step (path acceptance): the node and "
        "all its ancestors are locally accepted."
    )
    verify_prob: float = _f(
        "Probability that the run's verifier accepts the node once it tries it (its parent position is "
        "reached and its earlier siblings are rejected), from the warped target and the residual left "
        "by those siblings: min(1, p/q) for children sampled from the draft, p for deterministic "
        "children. Temperature 0: 1.0 when `accepted_local`, else 0.0."
    )
    draft_target_tv: float = _f(
        "Total variation distance between the drafter's and the target's next-token distributions at the "
        "parent position (temperature 1, over the full vocabulary): 0.5 * sum |q - p|. 1 - TV is the "
        "probability that standard speculative sampling at temperature 1 accepts a token drawn from the "
        "draft there. A truncated-vocabulary draft (`vocab=K`) puts all its mass on its K tokens, the "
        "rest counts as 0. NaN for drafters without a distribution (prompt lookup, and the lookup steps of "
        "`model:lookup=N`). Siblings share the value. Absent from run folders recorded before it existed.",
        float("nan"),
    )


@dataclass(slots=True)
class StepRecord:
    """One speculative step: draft a tree, verify it in one target pass, commit."""

    prompt_id: str = _f("Id of the prompt being decoded.")
    step: int = _f("Speculative step within the prompt, from 0.")
    tree_size: int = _f("Number of speculative nodes in the step's tree.")
    accepted: int = _f(
        "Drafted tokens accepted in this step (length of the accepted path); the target's bonus "
        "token is NOT counted. Tokens emitted by the step = accepted + 1 (fewer only when the step "
        "hit EOS or the token limit)."
    )
    draft_seconds: float = _f(
        "Wall time spent proposing the tree. When several prompts are decoded in one batch, the "
        "batch's time divided evenly among its prompts."
    )
    verify_seconds: float = _f(
        "Wall time of the target verification pass plus acceptance and cache commit (batch time "
        "split evenly as for draft_seconds)."
    )
    output_pos: int = _f(
        "Tokens the prompt had generated before this step (0 for its first step): the step's position in "
        "the output. Absent from run folders recorded before it existed.",
        0,
    )
    draft_passes: int = _f(
        "Draft-model forward passes that drafted this step's tree: 0 when no draft model ran for it "
        "(prompt lookup, the lookup steps of `model:lookup=N`), else 1 (the pending token) plus the "
        "number of tree levels the draft expanded, which early stop (`model:stop=V`) can cut short. "
        "Absent from run folders recorded before it existed.",
        0,
    )


class RecordLevel(Enum):
    """How much a decoder records: ``FULL`` node and step records with every statistic (what `specdyn run`
    writes); ``STEPS`` step records only, skipping the full-vocabulary statistics nodes need (`specdyn
    decode`); ``NONE`` no records, only the generated tokens (speed benchmarks). Decoding, and so the
    output, is the same at every level."""

    FULL = "full"
    STEPS = "steps"
    NONE = "none"


class Role(Enum):
    """Which model of the pair a timing belongs to."""

    DRAFT = "draft"
    TARGET = "target"


@dataclass
class Timing:
    """One measured forward-pass cost (``specdyn budget --measure``, :mod:`specdyn.engine.timing`)."""

    role: str = _f("Which model was timed: `draft` or `target` (a `Role` value).")
    batch: int = _f("Rows fed together in the pass.")
    tokens: int = _f("New query tokens per row (a chain of tree nodes) fed in the pass.")
    seconds: float = _f("Median wall seconds of the timed passes.")
    samples: list[float] = field(default_factory=list, metadata={"doc": "Wall seconds of every timed pass."})
    drafter: str = _f(
        "For a draft timing, the drafter spec whose model was timed (`model`, `model:quant=int8,vocab=32768`, "
        "`early-exit:layers=8`, ...): the run's own drafter and the cheaper ones `specdyn budget --measure` "
        "compares it with. Empty for the target, and in cost models measured before this field existed "
        "(they timed the run's drafter).",
        "",
    )


def field_docs(cls) -> dict[str, str]:
    """Map each field name of a record dataclass to its documentation string."""
    return {f.name: f.metadata["doc"] for f in fields(cls)}


NODE_FIELDS = tuple(f.name for f in fields(NodeRecord))
STEP_FIELDS = tuple(f.name for f in fields(StepRecord))


def markdown_table(cls) -> str:
    """A markdown table of a record dataclass's fields and their docs (used for docs/records.md)."""
    rows = [f"| `{name}` | {doc} |" for name, doc in field_docs(cls).items()]
    return "\n".join(["| field | meaning |", "| --- | --- |", *rows])
