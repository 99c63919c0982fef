"""Which drafter a run decoded with, as the analyses name and price it: the drafter spec and, for the model
drafter, the draft adapter merged into it (none: the base draft). Pure: read from the run's config."""

from __future__ import annotations

from dataclasses import dataclass

from specdyn.adapter_spec import AdapterInfo
from specdyn.budget.costs import DraftCost
from specdyn.config import DecodeConfig
from specdyn.specs import DrafterSpec, LookupDrafter, ModelDrafter

BASE_LABEL = "base"

# How `specdyn budget` prices each drafter kind: its draft passes' cost class, and whether its tree can be
# chosen freely by sibling rank (then the Sequoia search applies to its rank vector). Kinds not listed have
# no cost model yet and are left out of the choice.
COST_CLASSES: dict[type, DraftCost] = {ModelDrafter: DraftCost.DRAFT_MODEL, LookupDrafter: DraftCost.NONE}
SEARCHABLE: frozenset[type] = frozenset({ModelDrafter})


@dataclass(frozen=True)
class RunDrafter:
    """A run's drafter: ``drafter`` plus the ``adapter`` merged into the draft model (None: base draft)."""

    drafter: DrafterSpec
    adapter: AdapterInfo | None = None

    @classmethod
    def of(cls, config: DecodeConfig) -> RunDrafter:
        return cls(config.drafter, config.draft_adapter)

    @property
    def label(self) -> str:
        """``base`` (the model drafter without adapter), ``distilled:DOMAIN@ID``, or the drafter spec."""
        if self.adapter is not None:
            return self.adapter.label
        return BASE_LABEL if isinstance(self.drafter, ModelDrafter) else self.drafter.text

    @property
    def text(self) -> str:
        """The drafter spec, with ``+`` and the adapter's label when there is one."""
        return self.drafter.text + (f"+{self.adapter.label}" if self.adapter else "")

    @property
    def is_base(self) -> bool:
        return isinstance(self.drafter, ModelDrafter) and self.adapter is None

    @property
    def cost(self) -> DraftCost | None:
        """The cost class of its draft passes (None: not priced by the cost model yet)."""
        return COST_CLASSES.get(type(self.drafter))

    @property
    def searchable(self) -> bool:
        """True when any rank-path tree can be drafted, so the Sequoia search over its rank vector applies."""
        return type(self.drafter) in SEARCHABLE

    def to_json(self) -> dict:
        return {"label": self.label, "drafter": self.drafter.text,
                "draft_adapter": self.adapter.record() if self.adapter else None}
