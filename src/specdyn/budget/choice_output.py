"""What `specdyn budget` writes and prints for the per-domain choice of drafter and tree
(:mod:`specdyn.budget.choice`): the picked tree as ``DIR/<domain>.json`` (with ``--global`` also the pooled
tree as ``DIR/global.json``), every option in ``DIR/budget.json``, a table per domain, the command that
decodes the domain with the pick, and which trees ``--export`` turns into serving-engine settings."""

from __future__ import annotations

import shlex
from dataclasses import asdict
from pathlib import Path

from specdyn.budget.choice import DomainChoice, Option
from specdyn.budget.output import candidate_json, check_file_names, format_plan, plan_json, write_trees
from specdyn.defaults import DEFAULT_DRAFTER
from specdyn.safetext import visible
from specdyn.specs import GLOBAL_FILE, TreeShape, domain_filename


def run_command(option: Option, tree_file: Path, flags: str = "") -> str:
    """The `specdyn run` options that decode with ``option``'s drafter and the tree in ``tree_file``, then
    ``flags`` (e.g. the run's sampling setting)."""
    args = ["specdyn", "run", "--tree", f"paths:{tree_file}"]
    if option.drafter.drafter != DEFAULT_DRAFTER:
        args += ["--drafter", option.drafter.drafter.text]
    if option.drafter.adapter is not None:
        args += ["--draft-adapter", option.drafter.adapter.text]
    return shlex.join(args + shlex.split(flags))


def option_json(o: Option) -> dict:
    how = "sequoia" if o.plan else "measured"
    return {"run": o.run, **o.drafter.to_json(), "priced_by": how, "tree": o.tree.text, **candidate_json(o.best)}


def measured_json(c: DomainChoice, paths_file: str) -> dict:
    """The budget.json block of a domain whose pick was priced on its own tree (no rank vector, no search)."""
    o = c.best
    tree = candidate_json(o.best, paths=True)
    return {"paths_file": paths_file, "acceptance": None, "recommended": tree, "own_tree": {"spec": o.tree.text} | tree,
            "measured": asdict(o.measured), "baseline_tokens_per_second": c.baseline_tokens_per_second, "candidates": []}


def _pick_json(o: Option, tree_file: Path) -> dict:
    return {"drafter": {"run": o.run, **o.drafter.to_json()}, "command": run_command(o, tree_file)}


def choice_json(c: DomainChoice, out: Path) -> dict:
    """The domain's budget.json block: the pick's plan (as with one run), plus the drafter picked, the
    command, every option and the runs left out."""
    name, best = domain_filename(c.domain), c.best
    block = plan_json(best.plan, name, best.tree.text) if best.plan else measured_json(c, name)
    return block | _pick_json(best, out / name) | {"options": [option_json(o) for o in c.options], "left_out": c.left_out}


def global_json(single: Option, out: Path) -> dict:
    """budget.json's ``global`` block: the pooled plan (``paths_file`` global.json), its drafter and command."""
    return plan_json(single.plan, GLOBAL_FILE, single.tree.text) | _pick_json(single, out / GLOBAL_FILE)


def write_choices(out: Path, choices: list[DomainChoice], header: dict, single: Option | None = None) -> Path:
    check_file_names([c.domain for c in choices])
    pooled = (single.best.shape, global_json(single, out)) if single else None
    return write_trees(out, {c.domain: c.best.best.shape for c in choices}, {c.domain: choice_json(c, out) for c in choices},
                       header, pooled)


def exported_trees(choices: list[DomainChoice], single: Option | None) -> tuple[dict[str, TreeShape], list[str]]:
    """``--export``: (file name -> tree) of every pick drafted by a draft model (the per-domain picks, then
    global.json), and a note for each pick that is not (prompt lookup: serving engines' trees are drafted by a
    draft model)."""
    picks = [(domain_filename(c.domain), c.domain, c.best) for c in choices]
    picks += [(GLOBAL_FILE, "the global tree", single)] if single else []
    trees = {name: o.best.shape for name, _, o in picks if o.plan is not None}
    notes = [f"{visible(what)}: the pick drafts with {visible(o.drafter.label)}, not a draft model; serving engines' "
             "tree settings are for draft-model trees, so it is not exported" for _, what, o in picks if o.plan is None]
    return trees, notes


def _option_row(mark: str, o: Option) -> str:
    c = o.best
    return (f"  {mark} {visible(o.drafter.label):<28} {visible(o.run):<24} {c.shape.size:>5} {c.shape.depth:>5} "
            f"{c.expected_accepted:>9.3f} {c.tokens_per_second:>9.2f}  {o.source}")


def _options(c: DomainChoice) -> list[str]:
    head = [f"{visible(c.domain)}: drafter choice over {len(c.options)} run(s) (> the pick)",
            f"    {'draft':<28} {'run':<24} nodes depth  acc/step  tokens/s  (predicted; acc/step: bonus not counted)"]
    rows = [_option_row(">" if k == 0 else " ", o) for k, o in enumerate(c.options)]
    return head + rows + [f"  left out: {visible(why)}" for why in c.left_out]


def _measured(c: DomainChoice) -> str:
    o, m = c.best, c.best.measured
    return (f"{visible(c.domain)}: {visible(o.drafter.label)} ({visible(o.run)}) on its own tree {visible(o.tree.text)}, as "
            f"measured: {m.accepted_per_step:.3f} acc/step at {m.nodes_per_step:.1f} nodes/step -> predicted "
            f"{o.best.tokens_per_second:.2f} tokens/s ({o.best.step_seconds * 1e3:.1f} ms/step; plain target decoding "
            f"{c.baseline_tokens_per_second:.2f} tokens/s)")


def format_global(single: Option, out: Path, flags: str = "") -> str:
    """``--global``: the pooled plan and its `specdyn run` command (``flags`` appended)."""
    return "\n".join([format_plan(single.plan, single.tree.text),
                      f"  tree file: {run_command(single, out / GLOBAL_FILE, flags)}", ""])


def format_choice(c: DomainChoice, out: Path, flags: str = "") -> str:
    """The option table (with more than one option), the pick's plan, and its `specdyn run` command
    (``flags`` appended: the run's sampling setting)."""
    lines = _options(c) if len(c.options) > 1 or c.left_out else []
    lines.append(format_plan(c.best.plan, c.best.tree.text) if c.best.plan else _measured(c))
    return "\n".join(lines + [f"  tree file: {run_command(c.best, out / domain_filename(c.domain), flags)}", ""])
