"""Names of the acceptance notions and entropy sources every report number is tied to."""

from __future__ import annotations

from enum import Enum


class Notion(Enum):
    """Which acceptance a number uses (see docs/report.md); never report a bare "acceptance"."""

    LOCAL = "accepted_local"
    PATH = "accepted_path"
    PROB = "accept_prob"

    @property
    def rate_key(self) -> str:
        """The metrics.json key of a domain's node-level rate under this notion."""
        return {Notion.LOCAL: "acceptance_local", Notion.PATH: "acceptance_path",
                Notion.PROB: "accept_prob"}[self]

    @property
    def label(self) -> str:
        """Human-readable name used in tables and plots."""
        return {Notion.LOCAL: "accepted_local (node-local greedy)",
                Notion.PATH: "accepted_path (on the accepted path)",
                Notion.PROB: "accept_prob (mean min(1, p/q))"}[self]


class Entropy(Enum):
    """Whose next-token distribution an entropy (in nats, at the parent position) is taken from."""

    DRAFT = "draft_entropy"
    TARGET = "target_entropy"
