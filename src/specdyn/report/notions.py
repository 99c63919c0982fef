"""Names of the acceptance notions, measures and entropy sources every report number is tied to, and how
they are described (the words depend on whether the run verified greedily or by sampling)."""

from __future__ import annotations

from enum import Enum


class Notion(Enum):
    """A node-level acceptance record (see docs/report.md); never report a bare "acceptance"."""

    LOCAL = "accepted_local"
    PATH = "accepted_path"
    PROB = "accept_prob"

    @property
    def measure(self) -> Measure:
        """The per-group rate of this notion (share of nodes, or mean over nodes for accept_prob)."""
        return {Notion.LOCAL: Measure.LOCAL, Notion.PATH: Measure.PATH, Notion.PROB: Measure.PROB}[self]

    def label(self, sampled: bool = False) -> str:
        """Human-readable name used in tables and plots; ``sampled``: the run verified by sampling."""
        local = "the verifier's decision at the node" if sampled else "the target's greedy choice"
        return {Notion.LOCAL: f"accepted_local ({local})",
                Notion.PATH: "accepted_path (on the accepted path)",
                Notion.PROB: "accept_prob (mean min(1, p/q))"}[self]


class Measure(Enum):
    """A per-group acceptance number: the metrics.json key of a domain's value."""

    LEVEL = "acceptance_level"  # per-level acceptance α: successes / trials (the headline)
    LOCAL = "acceptance_local"  # share of nodes accepted_local
    PATH = "acceptance_path"  # share of nodes accepted_path
    PROB = "accept_prob"  # mean accept_prob over nodes
    PER_STEP = "accepted_per_step"  # drafted tokens accepted per step, bonus token not counted
    PER_STEP_BONUS = "accepted_per_step_with_bonus"  # the same plus the bonus token

    def label(self, sampled: bool = False) -> str:
        local = "verifier's decision" if sampled else "greedy match"
        return {Measure.LEVEL: "α (per-level acceptance)",
                Measure.LOCAL: f"accepted_local rate ({local})",
                Measure.PATH: "accepted_path rate",
                Measure.PROB: "accept_prob mean",
                Measure.PER_STEP: "accepted tokens/step (no bonus)",
                Measure.PER_STEP_BONUS: "tokens/step (with bonus)"}[self]


class Entropy(Enum):
    """Whose next-token distribution an entropy (in nats, at the parent position) is taken from."""

    DRAFT = "draft_entropy"
    TARGET = "target_entropy"

    @property
    def label(self) -> str:
        return self.value.replace("_", " ")
