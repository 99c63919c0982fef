"""Where an adaptive tree's acceptance beliefs start: a Beta prior per (depth, rank), either the built-in weak
prior or one fitted to a profile run (``--profile RUN_DIR``). Pure data, no I/O: the profile is read at the
command boundary (:func:`specdyn.budget.profile.load_profile`) and recorded in the run manifest through
:func:`specdyn.specs.tree_record`.

A cell (depth d, rank r) holds the prior mean of "the rank-r child of a reached depth-(d-1) position is
accepted" and its weight in pseudo-observations: Beta(mean * weight, (1 - mean) * weight).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from specdyn.errors import SpecdynError

WEAK_FIRST = 0.5  # weak prior: the draft's best child is accepted half the time...
WEAK_DECAY = 0.25  # ...and each further rank a quarter as often as the one before
WEAK_WEIGHT = 2.0  # worth two observations: a request's own outcomes outweigh it after a few steps
MIN_PROFILE_TRIALS = 20  # a profile cell with fewer trials falls back (see resolve_prior)

Grid = tuple[tuple[float, ...], ...]  # [depth - 1][rank]


@dataclass(frozen=True)
class Profile:
    """What a profile run contributes: its identity, its acceptance counts pooled over domains, its costs.

    ``trials[d][r]`` / ``accepted[d][r]``: nodes of depth d + 1 and rank r whose parent the acceptance walk
    reached, and how many of them were accepted (every domain of the run together). ``sampling``: the
    setting the run decoded with (:func:`~specdyn.sampling_spec.setting_label`; acceptance depends on it).
    ``costs``: the run's ``costs.json`` (parsed JSON) or None; only its digest ``costs_sha256`` is recorded,
    and the data travels inside the tree spec (to Ray workers too), never re-read from ``path``."""

    path: str
    suite_sha256: str | None
    config_sha256: str
    draft: str
    target: str
    trials: tuple[tuple[int, ...], ...]
    accepted: tuple[tuple[int, ...], ...]
    costs_sha256: str | None = None
    sampling: str | None = None
    costs: Mapping[str, Any] | None = field(default=None, compare=False, hash=False, repr=False)

    def rank_counts(self, rank: int) -> tuple[int, int]:
        """(trials, accepted) of ``rank`` summed over depths."""
        pairs = [(t[rank], a[rank]) for t, a in zip(self.trials, self.accepted) if rank < len(t)]
        return sum(t for t, _ in pairs), sum(a for _, a in pairs)

    def to_json(self) -> dict:
        keys = ("path", "suite_sha256", "config_sha256", "draft", "target", "costs_sha256", "sampling")
        return {k: getattr(self, k) for k in keys} | {"trials": [list(t) for t in self.trials],
                                                     "accepted": [list(a) for a in self.accepted]}

    @classmethod
    def from_json(cls, data: object, origin: str) -> Profile:
        """A profile as :meth:`to_json` recorded it (its cost model is not recorded: ``costs`` is None)."""
        try:
            grids = {k: tuple(tuple(int(x) for x in row) for row in data[k]) for k in ("trials", "accepted")}
            return cls(str(data["path"]), data["suite_sha256"], str(data["config_sha256"]), str(data["draft"]),
                       str(data["target"]), costs_sha256=data.get("costs_sha256"), sampling=data.get("sampling"), **grids)
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecdynError(f"{origin}: malformed adaptive-tree profile ({type(exc).__name__}: {exc})") from None


@dataclass(frozen=True)
class AcceptancePrior:
    """Beta prior per (depth, rank): ``mean[d][r]`` and ``weight[d][r]`` (pseudo-observations) for children of
    depth d + 1 and rank r. ``source`` says where each cell came from: "profile depth", "profile rank"
    (pooled over depths) or "weak"."""

    mean: Grid
    weight: Grid
    source: tuple[tuple[str, ...], ...]

    def to_json(self) -> dict:
        return {"mean": [list(m) for m in self.mean], "weight": [list(w) for w in self.weight],
                "source": [list(s) for s in self.source]}


def weak_mean(rank: int) -> float:
    """The built-in prior mean of rank ``rank``: 0.5, 0.125, 0.031, ... at every depth."""
    return WEAK_FIRST * WEAK_DECAY**rank


def _cell(profile: Profile | None, depth: int, rank: int, weight: float) -> tuple[float, float, str]:
    """(mean, weight, source) of one cell: the profile's rate at this depth when it has enough trials there,
    else its rate for this rank pooled over depths, else the weak prior."""
    if profile is not None:
        if depth < len(profile.trials) and rank < len(profile.trials[depth]):
            trials, hits = profile.trials[depth][rank], profile.accepted[depth][rank]
            if trials >= MIN_PROFILE_TRIALS:
                return hits / trials, weight, "profile depth"
        trials, hits = profile.rank_counts(rank)
        if trials >= MIN_PROFILE_TRIALS:
            return hits / trials, weight, "profile rank"
    return weak_mean(rank), WEAK_WEIGHT, "weak"


def resolve_prior(profile: Profile | None, depth: int, ranks: int, weight: float) -> AcceptancePrior:
    """The prior of an adaptive tree with ``depth`` levels and ``ranks`` children per node at most; a
    profile's cells weigh ``weight`` pseudo-observations each."""
    cells = [[_cell(profile, d, r, weight) for r in range(ranks)] for d in range(depth)]
    pick = [tuple(tuple(c[i] for c in row) for row in cells) for i in range(3)]
    return AcceptancePrior(*pick)
