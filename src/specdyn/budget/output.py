"""Files and text written by ``specdyn budget``: ``DIR/<domain>.json`` (a ``paths:`` tree file),
``DIR/global.json`` (with ``--global``: one tree for every domain) and ``DIR/budget.json`` (everything behind
the recommendation)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

from specdyn.files import write_text_atomic
from specdyn.budget.plan import Candidate, DomainPlan, DrafterChoice, fastest_drafter, preference
from specdyn.errors import SpecdynError
from specdyn.safetext import visible
from specdyn.specs import GLOBAL_FILE, SUMMARY_FILE, TreeShape, domain_filename

BUDGET_FILE = SUMMARY_FILE  # the one file of the folder that is not a tree (see specdyn.specs.DomainTrees)
BUDGET_DIR = "budget"
FORMAT_VERSION = 1


def candidate_json(c: Candidate, paths: bool = False) -> dict:
    out = {"budget": c.budget, "max_depth": c.max_depth, "nodes": c.shape.size, "depth": c.shape.depth,
           "expected_accepted": c.expected_accepted, "step_seconds": c.step_seconds, "tokens_per_second": c.tokens_per_second}
    return out | ({"paths": [list(p) for p in c.shape.paths]} if paths else {})


def plan_json(plan: DomainPlan, paths_file: str, own_spec: str) -> dict:
    v = plan.vector
    return {
        "paths_file": paths_file,
        "acceptance": {"p": v.p, "rates": v.rates, "trials": v.trials, "accepted": v.accepted, "usable": v.usable,
                       "min_observations": v.min_observations, "depth_rates": v.depth_rates, "depth_trials": v.depth_trials},
        "recommended": candidate_json(plan.best, paths=True),
        "own_tree": ({"spec": own_spec} | candidate_json(plan.own, paths=True)) if plan.own else None,
        "measured": asdict(plan.measured) if plan.measured else None,
        "baseline_tokens_per_second": plan.baseline_tokens_per_second,
        "replayed": asdict(plan.replayed) if plan.replayed else None,
        "drafters": [drafter_json(d) for d in plan.drafters],
        "candidates": [candidate_json(c) for c in plan.candidates],
    }


def drafter_json(choice: DrafterChoice) -> dict:
    return {"drafter": choice.drafter, "best": candidate_json(choice.best, paths=True),
            "replayed": asdict(choice.replayed) if choice.replayed else None}


def write_plans(out: Path, plans: list[DomainPlan], header: dict, own_specs: dict[str, str]) -> Path:
    """Write each domain's recommended tree as ``out/<domain>.json`` and everything as ``out/budget.json``.

    ``own_specs`` maps each domain to the tree spec the run used for it."""
    check_file_names([p.domain for p in plans])
    blocks = {p.domain: plan_json(p, domain_filename(p.domain), own_specs[p.domain]) for p in plans}
    return write_trees(out, {p.domain: p.best.shape for p in plans}, blocks, header)


def check_file_names(domains: list[str]) -> None:
    """Refuse domains whose tree files would have the same name."""
    names = {d: domain_filename(d) for d in domains}
    clash = sorted({n for n in names.values() if list(names.values()).count(n) > 1})
    if clash:
        raise SpecdynError(f"domains {sorted(d for d, n in names.items() if n in clash)} "
                           f"map to the same file name {clash[0]}; rename them in the suite")


def write_trees(out: Path, trees: dict[str, TreeShape], blocks: dict[str, dict], header: dict,
                single: tuple[TreeShape, dict] | None = None) -> Path:
    """Write each domain's tree as ``out/<domain>.json`` and ``header`` plus every domain's block as
    ``out/budget.json``; ``single`` (``--global``: the tree for every domain pooled, and its block) goes to
    ``out/global.json`` and budget.json's ``global``."""
    check_file_names(list(trees))
    names = {d: domain_filename(d) for d in trees}
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecdynError(f"cannot write budget folder {out}: {exc.strerror}") from None
    for domain, shape in trees.items():
        write_text_atomic(out / names[domain], json.dumps(shape.to_json()) + "\n")
    doc = {"version": FORMAT_VERSION, **header, "domains": blocks}
    if single is not None:
        write_text_atomic(out / GLOBAL_FILE, json.dumps(single[0].to_json()) + "\n")
        doc["global"] = single[1]
    write_text_atomic(out / BUDGET_FILE, json.dumps(doc, indent=2) + "\n")
    return out / BUDGET_FILE


def _row(mark: str, c: Candidate) -> str:
    return (f"{mark} {c.budget:>6} {c.max_depth:>5} {c.shape.size:>5} {c.shape.depth:>5} {c.expected_accepted:>10.3f} "
            f"{c.step_seconds * 1e3:>9.1f} {c.tokens_per_second:>10.2f}")


def _verdict(plan: DomainPlan) -> str:
    if plan.own is None:
        return "  the run did not decode with one static tree here: no prediction for its own"
    gain = plan.best.tokens_per_second / plan.own.tokens_per_second - 1.0
    if plan.best.shape.paths == plan.own.shape.paths or abs(gain) < 1e-9:
        return "  recommendation: the run's own tree is already the best predicted"
    return f"  recommendation: predicted {gain:+.1%} tokens/s over the run's own tree (a prediction: confirm with a run and `specdyn compare`)"


def _header(plan: DomainPlan) -> list[str]:
    v = plan.vector
    p = ", ".join(f"{x:.3f} (n={t})" for x, t in zip(v.p, v.trials))
    dropped = f"; ranks {v.usable}+ left out (< {v.min_observations} observations)" if v.usable < len(v.rates) else ""
    return [f"{visible(plan.domain)}: p by rank = [{p}]{dropped}",
            f"  plain target decoding (predicted): {plan.baseline_tokens_per_second:.2f} tokens/s",
            "  budget limit nodes depth   acc/step   step ms   tokens/s   (acc/step: bonus not counted; tokens/s counts it)"]


def _own(plan: DomainPlan, own_spec: str) -> list[str]:
    lines = []
    if plan.own:
        lines.append(f"  own tree {visible(own_spec)}: {plan.own.shape.size} nodes, depth {plan.own.shape.depth}: predicted "
                     f"{plan.own.expected_accepted:.3f} acc/step, {plan.own.step_seconds * 1e3:.1f} ms/step, "
                     f"{plan.own.tokens_per_second:.2f} tokens/s")
    if plan.measured:
        m = plan.measured
        lines.append(f"  own tree measured: {m.accepted_per_step:.3f} acc/step over {m.steps} steps, "
                     f"{m.seconds_per_step * 1e3:.1f} ms/step, {m.tokens_per_second:.2f} tokens/s "
                     f"(the cost model prices the two models' passes only)")
    if plan.replayed:
        r = plan.replayed
        lines.append(f"  own steps priced as recorded: {r.nodes_per_step:.1f} nodes, {r.draft_passes_per_step:.2f} draft "
                     f"passes, {r.accepted_per_step:.3f} acc/step -> {r.step_seconds * 1e3:.1f} ms/step, "
                     f"{r.tokens_per_second:.2f} tokens/s")
    lines.append(_verdict(plan))
    lines += _drafters(plan)
    if plan.best.tokens_per_second < plan.baseline_tokens_per_second:
        lines.append(f"  note: no tree is predicted to beat plain target decoding ({plan.baseline_tokens_per_second:.2f} "
                     f"tokens/s) with these costs")
    return lines


def _drafters(plan: DomainPlan) -> list[str]:
    """The cheaper drafters' best trees (the run's acceptance assumed), and which one to try."""
    lines = [f"  drafter {visible(d.drafter)}: best tree {d.best.shape.size} nodes, depth {d.best.shape.depth}: "
             f"{d.best.step_seconds * 1e3:.1f} ms/step, {d.best.tokens_per_second:.2f} tokens/s"
             + (f"; own steps {d.replayed.tokens_per_second:.2f} tokens/s" if d.replayed else "") for d in plan.drafters]
    pick = fastest_drafter(plan)
    if pick:
        gain = pick.best.tokens_per_second / plan.best.tokens_per_second - 1.0
        lines.append(f"  recommendation: --drafter {visible(pick.drafter)}: predicted {gain:+.1%} tokens/s over the "
                     "best tree with the run's drafter, assuming the acceptance this run recorded (confirm with a run)")
    return lines


def format_plan(plan: DomainPlan, own_spec: str) -> str:
    """A text table: the best tree of several budgets (best depth limit each), the pick (>), the run's own tree."""
    lines = _header(plan)
    n_max = max(c.budget for c in plan.candidates)
    for n in sorted({2**i for i in range(n_max.bit_length()) if 2**i <= n_max} | {plan.best.budget}):
        c = min((c for c in plan.candidates if c.budget == n), key=preference)
        lines.append(_row(">" if c is plan.best else " ", c))
    return "\n".join(lines + _own(plan, own_spec))
