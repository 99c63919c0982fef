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
    """One speculative node: a draft token proposed in one step's tree and scored by the target."""

    prompt_id: str = _f("Id of the prompt being decoded.")
    step: int = _f("Speculative step within the prompt, from 0.")
    node: int = _f("Index of the node in the step's tree (breadth-first order, from 0).")
    parent: int = _f("Index of the parent node; -1 when the parent is the last committed token.")
    depth: int = _f("Depth in the tree: 1 for the first speculative token.")
    rank: int = _f("Sibling rank: 0 = the draft's most likely child of its parent, 1 = second, ...")
    token: int = _f("Token id proposed by the drafter.")
    draft_prob: float = _f(
        "Drafter's probability of `token` at the parent position (temperature 1). "
        "Drafters without a distribution (prompt lookup) record 1.0."
    )
    draft_entropy: float = _f(
        "Entropy in nats of the drafter's full next-token distribution at the parent position "
        "(0.0 for drafters without a distribution)."
    )
    target_prob: float = _f("Target's probability of `token` at the parent position (temperature 1).")
    target_entropy: float = _f(
        "Entropy in nats of the target's full next-token distribution at the parent position."
    )
    accept_prob: float = _f(
        "min(1, target_prob / draft_prob): the probability that speculative sampling accepts the "
        "token once its parent is reached (continuous acceptance)."
    )
    accepted_local: bool = _f(
        "True when `token` equals the target's argmax at the parent position, whatever happened to "
        "the parent (node-local greedy acceptance). At most one of a node's siblings can be true."
    )
    accepted_path: bool = _f(
        "True when the node lies on the accepted path of its step (path acceptance): the node and "
        "all its ancestors are locally accepted."
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


def field_docs(cls) -> dict[str, str]:
    """Map each field name of a record dataclass to its documentation string."""
    return {f.name: f.metadata["doc"] for f in fields(cls)}


NODE_FIELDS = tuple(f.name for f in fields(NodeRecord))
STEP_FIELDS = tuple(f.name for f in fields(StepRecord))


def markdown_table(cls) -> str:
    """A markdown table of a record dataclass's fields and their docs (used for docs/records.md)."""
    rows = [f"| `{name}` | {doc} |" for name, doc in field_docs(cls).items()]
    return "\n".join(["| field | meaning |", "| --- | --- |", *rows])
