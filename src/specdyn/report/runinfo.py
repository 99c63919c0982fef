"""What the report says about the run itself: where it stands, the model pair, drafter, tree and sampling
setting (from the manifest), and which record fields it lacks."""

from __future__ import annotations

from dataclasses import dataclass

from specdyn.report.verdicts import same_pair_as_study
from specdyn.rundir.manifest import Counts, RunManifest
from specdyn.rundir.reader import RunData
from specdyn.sampling_spec import Children, Sampling


@dataclass
class RunInfo:
    """The run behind the report. ``draft`` is None when the drafter uses no draft model (prompt lookup,
    early exit); ``temperature`` 0 is greedy verification (manifests written before sampling settings
    were recorded count as greedy); ``missing_fields``: record fields the folder lacks."""

    dir: str | None
    status: str
    in_progress: bool
    manifest_counts: Counts | None
    started: str | None
    finished: str | None
    domains: list[str]
    finished_prompts: int
    nodes: int
    steps: int
    draft: str | None
    target: str | None
    drafter: str | None
    tree: str | None
    temperature: float
    top_p: float
    children: str
    study_pair: bool
    missing_fields: list[str]

    @property
    def sampled(self) -> bool:
        """The run verified by speculative sampling (temperature > 0), not greedily."""
        return self.temperature > 0

    @property
    def pair(self) -> tuple[str, str]:
        return (self.draft or f"no draft model ({self.drafter})", self.target or "unknown target")


def run_info(run: RunData) -> RunInfo:
    manifest = run.manifest
    draft, target = model_pair(manifest)
    sampling, children = sampling_of(manifest)
    config = manifest.config
    return RunInfo(
        dir=str(run.run_dir) if run.run_dir else None, status=run.status.value,
        in_progress=manifest.in_progress, manifest_counts=manifest.counts, started=manifest.started,
        finished=manifest.finished, domains=list(run.domains), finished_prompts=len(run.prompts.ids),
        nodes=int(len(run.nodes.prompt)), steps=int(len(run.steps.prompt)), draft=draft, target=target,
        drafter=config.drafter.text if config else None, tree=config.tree.text if config else None,
        temperature=sampling.temperature, top_p=sampling.top_p, children=children.value,
        study_pair=bool(draft and target and same_pair_as_study(draft, target)),
        missing_fields=run.missing_fields)


def model_pair(manifest: RunManifest) -> tuple[str | None, str | None]:
    """(draft, target) names: the loaded models the manifest records, else the configured names; no
    draft when the drafter uses no draft model."""
    config = manifest.config

    def name(role: str) -> str | None:
        if role in manifest.models:
            return manifest.models[role].name
        return getattr(config, role) if config else None

    uses_draft = config is None or config.drafter.uses_draft_model
    return (name("draft") if uses_draft else None), name("target")


def sampling_of(manifest: RunManifest) -> tuple[Sampling, Children]:
    """The run's sampling setting and how children were chosen. Manifests written before these settings
    were recorded (no ``temperature`` / ``top_p`` / ``children`` in the config) describe greedy runs."""
    config = manifest.config
    recorded = getattr(config, "sampling", None)
    if isinstance(recorded, Sampling):
        sampling = recorded
    else:
        sampling = Sampling(float(getattr(config, "temperature", 0.0) or 0.0),
                            float(getattr(config, "top_p", 1.0) or 1.0))
    children = getattr(config, "children", Children.TOPK)
    return sampling, Children(getattr(children, "value", children))
