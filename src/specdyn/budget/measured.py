"""What a run measured on each domain, from the run-folder reader's columns (pure functions of records)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from specdyn.rundir.reader import RunData


@dataclass
class DomainStats:
    """What a run measured on one domain.

    ``accepted_per_step``: mean drafted tokens accepted per step, bonus NOT counted (add 1 for the
    bonus-inclusive "tau"). ``local_acceptance``: share of nodes whose token equals the target's argmax
    at the parent position (node-local). ``tokens_per_second``: sum of generated tokens over the sum of
    the prompts' wall seconds (per-prompt throughput; with batching, prompts' times overlap).
    ``seconds_per_step``: sum of the prompts' wall seconds over their steps (one step of a row, engine
    overhead and the prompt's own prefill included).
    """

    prompts: int
    steps: int
    nodes: int
    nodes_per_step: float
    accepted_per_step: float
    local_acceptance: float
    output_tokens: int
    seconds: float
    tokens_per_second: float
    seconds_per_step: float


@dataclass
class PromptThroughput:
    """One prompt's generated tokens and wall seconds."""

    tokens: int
    seconds: float


def _domain_index(run: RunData, domain: str) -> int:
    return run.domains.index(domain)


def domain_stats(run: RunData, domain: str) -> DomainStats:
    """Measurements of ``run`` on ``domain`` (see :class:`DomainStats`)."""
    d = _domain_index(run, domain)
    prompts = run.prompts.domain == d
    steps = run.steps.accepted[run.step_domain() == d]
    local = run.nodes.accepted_local[run.node_domain() == d]
    n_steps = max(len(steps), 1)
    out_tokens = int(run.prompts.output_tokens[prompts].sum())
    seconds = float(run.prompts.seconds[prompts].sum())
    return DomainStats(
        int(prompts.sum()), len(steps), len(local), len(local) / n_steps, float(steps.sum()) / n_steps,
        float(np.mean(local)) if len(local) else 0.0, out_tokens, seconds,
        out_tokens / seconds if seconds > 0 else 0.0, seconds / max(int(run.prompts.steps[prompts].sum()), 1),
    )


def per_prompt_throughput(run: RunData, domain: str) -> dict[str, PromptThroughput]:
    """prompt_id -> generated tokens and wall seconds, for the finished prompts of ``domain``."""
    d = _domain_index(run, domain)
    rows = np.flatnonzero(run.prompts.domain == d)
    return {run.prompts.ids[i]: PromptThroughput(int(run.prompts.output_tokens[i]), float(run.prompts.seconds[i]))
            for i in rows}
