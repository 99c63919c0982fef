"""Side-by-side comparison of run folders per domain, ranked by measured tokens/s (pure functions of
the runs' records, manifests and any ``budget.json`` predictions)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from pathlib import Path

import numpy as np

from specdyn.budget.drafters import RunDrafter
from specdyn.budget.measured import DomainStats, PromptThroughput, domain_stats, per_prompt_throughput
from specdyn.budget.output import BUDGET_DIR, BUDGET_FILE
from specdyn.budget.sequoia import expected_accepted
from specdyn.defaults import DEFAULT_DRAFTER, DEFAULT_TREE
from specdyn.errors import SpecdynError
from specdyn.rundir.reader import RunData
from specdyn.safetext import markdown
from specdyn.sampling_spec import setting_label
from specdyn.specs import AdaptiveTree, Children, PathsTree, Sampling, TreeSpec
from specdyn.stats import DEFAULT_RESAMPLES, percentile_ci, resample_counts


class TreeRole(Enum):
    """How a run's tree relates to a domain."""

    DEFAULT = "default"  # the default static tree with the model drafter and the base draft (no adapter)
    RECOMMENDED = "recommended"  # `specdyn budget`'s tree for this very domain
    RECOMMENDED_ELSEWHERE = "recommended for another domain"
    GLOBAL = "global"  # `specdyn budget --global`'s one tree for every domain
    ADAPTIVE = "adaptive"  # `--tree adaptive`: each request's tree follows its own acceptance
    OTHER = "other"


ROLE_NAMES = {TreeRole.DEFAULT: "the default", TreeRole.RECOMMENDED: "the recommended tree",
              TreeRole.GLOBAL: "the global tree", TreeRole.ADAPTIVE: "the adaptive tree"}
# The pairs compared with a (paired) bootstrap whenever a domain has runs of both roles under one sampling setting
# (the first is `a`).
GAIN_PAIRS = [(TreeRole.RECOMMENDED, TreeRole.DEFAULT), (TreeRole.GLOBAL, TreeRole.DEFAULT),
              (TreeRole.ADAPTIVE, TreeRole.DEFAULT), (TreeRole.ADAPTIVE, TreeRole.GLOBAL),
              (TreeRole.ADAPTIVE, TreeRole.RECOMMENDED)]


@dataclass
class RunEntry:
    """One run on one domain. ``predicted_accepted``: expected accepted drafted tokens per step of the
    run's tree under the acceptance vector of a ``budget.json`` (``prediction_source``), bonus not counted.
    ``sampling`` and ``children``: how the run sampled (greedy by default)."""

    label: str
    tree: str
    drafter: str
    batch_size: int | None
    role: TreeRole
    stats: DomainStats
    predicted_accepted: float | None = None
    prediction_source: str | None = None
    sampling: Sampling = Sampling()
    children: Children = Children.TOPK
    throughput: dict[str, PromptThroughput] = field(default_factory=dict, repr=False)

    @property
    def setting(self) -> tuple[Sampling, Children]:
        """What a run's acceptance depends on besides its tree: runs compare fairly only within one setting."""
        return self.sampling, self.children

    @property
    def sampling_text(self) -> str:
        """``greedy``, or e.g. ``T 0.7, top-p 0.95`` (plus ``, drawn children`` for sampled children)."""
        return setting_label(self.sampling, self.children)


@dataclass
class Gain:
    """Relative measured tokens/s of run ``a`` over run ``b`` (ratio of sums, minus 1) and a 95% percentile
    interval from resampling prompts (paired over shared prompt ids when there are at least two)."""

    a: str
    b: str
    gain: float
    low: float
    high: float
    prompts: int
    paired: bool
    a_role: str = ""
    b_role: str = ""


@dataclass
class DomainComparison:
    """All runs on one domain, fastest measured first, with the plain-language verdict. ``gains``: every
    pair of :data:`GAIN_PAIRS` present under one sampling setting (``recommended_vs_default`` is the first
    of them, or None)."""

    domain: str
    entries: list[RunEntry]
    recommended_vs_default: Gain | None
    verdict: list[str]
    gains: list[Gain] = field(default_factory=list)


@dataclass
class BudgetDoc:
    """A ``budget.json`` and the folder it lies in (its ``paths_file`` names are relative to it)."""

    folder: Path
    data: dict

    def domain(self, domain: str) -> dict:
        entry = self.data.get("domains", {}).get(domain)
        return entry if isinstance(entry, dict) else {}


def _budget_doc(run: RunData, tree: TreeSpec) -> BudgetDoc | None:
    """The ``budget.json`` that predicts this run's tree: next to its paths file, else in RUN_DIR/budget."""
    folders = [tree.source.parent] if isinstance(tree, PathsTree) else []
    for folder in folders + ([run.run_dir / BUDGET_DIR] if run.run_dir else []):
        try:
            data = json.loads((folder / BUDGET_FILE).read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            continue
        if isinstance(data, dict):
            return BudgetDoc(folder, data)
    return None


def _role(tree: TreeSpec, drafter_is_default: bool, domain: str, doc: BudgetDoc | None) -> TreeRole:
    if isinstance(tree, AdaptiveTree):
        return TreeRole.ADAPTIVE
    if tree == DEFAULT_TREE and drafter_is_default:
        return TreeRole.DEFAULT
    if not isinstance(tree, PathsTree) or doc is None:
        return TreeRole.OTHER
    single = doc.data.get("global")
    if isinstance(single, dict) and (doc.folder / str(single.get("paths_file", ""))).resolve() == tree.source:
        return TreeRole.GLOBAL
    same = {d for d in doc.data.get("domains", {})
            if (doc.folder / str(doc.domain(d).get("paths_file", ""))).resolve() == tree.source}
    return TreeRole.RECOMMENDED if domain in same else TreeRole.RECOMMENDED_ELSEWHERE if same else TreeRole.OTHER


def run_entry(run: RunData, label: str, domain: str) -> RunEntry:
    """Measurements, role and (when a budget.json covers the domain) prediction of one run on ``domain``."""
    config = run.manifest.require_config(label)
    tree = config.tree_for(domain)
    doc = _budget_doc(run, tree)
    drafter = RunDrafter.of(config)
    entry = RunEntry(label, tree.text, drafter.text, config.batch_size,
                     _role(tree, drafter.is_base and config.drafter == DEFAULT_DRAFTER, domain, doc), domain_stats(run, domain),
                     sampling=config.sampling, children=config.children, throughput=per_prompt_throughput(run, domain))
    vec = doc.domain(domain).get("acceptance") if doc else None
    if isinstance(vec, dict) and tree.shape is not None:
        entry.predicted_accepted = expected_accepted(tree.shape, vec["p"])
        entry.prediction_source = str(doc.folder / BUDGET_FILE)
    return entry


def _sums(throughput: dict[str, PromptThroughput], ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return (np.array([throughput[i].tokens for i in ids], dtype=float),  # [prompts]
            np.array([throughput[i].seconds for i in ids], dtype=float))  # [prompts]


def bootstrap_gain(a: RunEntry, b: RunEntry, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Gain:
    """:class:`Gain` of ``a`` over ``b`` from their per-prompt tokens and seconds: the prompts are resampled
    (:func:`specdyn.stats.resample_counts`), with the same draw for both runs when paired."""
    rng = np.random.default_rng(seed)
    common = sorted(set(a.throughput) & set(b.throughput))
    paired = len(common) >= 2
    ids_a, ids_b = (common, common) if paired else (sorted(a.throughput), sorted(b.throughput))
    (ta, sa), (tb, sb) = _sums(a.throughput, ids_a), _sums(b.throughput, ids_b)
    wa = resample_counts(len(ids_a), resamples, rng)  # [resamples, prompts_a]
    wb = wa if paired else resample_counts(len(ids_b), resamples, rng)  # [resamples, prompts_b]
    draws = ((wa @ ta) / (wa @ sa)) / ((wb @ tb) / (wb @ sb)) - 1.0  # [resamples]
    point = (ta.sum() / sa.sum()) / (tb.sum() / sb.sum()) - 1.0
    low, high = percentile_ci(draws)
    return Gain(a.label, b.label, float(point), float(low), float(high), len(ids_a), paired)


def _gain_text(g: Gain) -> str:
    how = f"95% interval {g.low:+.1%} to {g.high:+.1%}, {'paired ' if g.paired else ''}bootstrap over {g.prompts} prompts"
    a, b = (ROLE_NAMES[TreeRole(r)] for r in (g.a_role, g.b_role))
    if g.low > 0:
        return f"{a} ({g.a}) BEAT {b} ({g.b}): {g.gain:+.1%} measured tokens/s ({how})."
    if g.high < 0:
        return f"{a} ({g.a}) did NOT beat {b} ({g.b}): it was slower, {g.gain:+.1%} measured tokens/s ({how})."
    return f"{a} ({g.a}) did NOT clearly beat {b} ({g.b}): {g.gain:+.1%} measured tokens/s, within noise ({how})."


def _verdict(domain: str, entries: list[RunEntry], gains: list[Gain]) -> list[str]:
    top = entries[0]
    lines = [f"Fastest on {domain}: {top.label} ({top.tree}, {top.sampling_text}) at {top.stats.tokens_per_second:.2f} tokens/s."]
    roles = {e.role for e in entries}
    if TreeRole.RECOMMENDED not in roles:
        lines.append(f"No run here used the tree recommended for {domain}.")
    elif TreeRole.DEFAULT not in roles:
        lines.append(f"No run here used the default tree ({DEFAULT_TREE.text}), so the recommendation is not compared with it.")
    compared = {(TreeRole(g.a_role), TreeRole(g.b_role)) for g in gains}
    lines += [f"No run here used {ROLE_NAMES[b]} with the same sampling setting as a run of {ROLE_NAMES[a]}, so the two "
              "are not compared." for a, b in GAIN_PAIRS if {a, b} <= roles and (a, b) not in compared]
    return lines + [f"On {domain}, " + _gain_text(g) for g in gains]


def _fastest_pair(ranked: list[RunEntry], a: TreeRole, b: TreeRole) -> tuple[RunEntry, RunEntry] | None:
    """The fastest run of role ``a`` that has a run of role ``b`` with the same sampling setting, and the
    fastest such run of ``b`` (acceptance, hence speed, depends on the setting)."""
    for first in (e for e in ranked if e.role is a):
        same = [e for e in ranked if e.role is b and e.setting == first.setting]
        if same:
            return first, same[0]
    return None


def role_gains(ranked: list[RunEntry]) -> list[Gain]:
    """The :class:`Gain` of every pair of :data:`GAIN_PAIRS` that has runs of one sampling setting (see
    :func:`_fastest_pair`), in that order."""
    pairs = ((a, b, _fastest_pair(ranked, a, b)) for a, b in GAIN_PAIRS)
    return [replace(bootstrap_gain(*p), a_role=a.value, b_role=b.value) for a, b, p in pairs if p]


def compare_domain(domain: str, entries: list[RunEntry]) -> DomainComparison:
    ranked = sorted(entries, key=lambda e: -e.stats.tokens_per_second)
    gains = role_gains(ranked)
    first = GAIN_PAIRS[0][0].value, GAIN_PAIRS[0][1].value
    rec_vs_default = next((g for g in gains if (g.a_role, g.b_role) == first), None)
    return DomainComparison(domain, ranked, rec_vs_default, _verdict(domain, ranked, gains), gains)


def compare_runs(runs: list[RunData], labels: list[str]) -> list[DomainComparison]:
    """Per domain present in any run (sorted), every run that decoded it, ranked by measured tokens/s."""
    if len(runs) < 1:
        raise SpecdynError("compare needs at least one run folder")
    domains = sorted({d for r in runs for d in r.domains})
    return [compare_domain(d, [run_entry(r, lab, d) for r, lab in zip(runs, labels) if d in r.domains])
            for d in domains]


def _cell(x: float | None, fmt: str = ".3f") -> str:
    return "–" if x is None else format(x, fmt)


def to_markdown(comparisons: list[DomainComparison]) -> str:
    """Markdown: one ranked table per domain plus the verdict lines."""
    out = ["# specdyn compare", "",
           "acc/step: drafted tokens accepted per step, bonus not counted; +bonus adds the target's bonus token "
           "(tau). local: node-local acceptance (the verifier's decision at each node: the target's argmax when greedy, "
           "a random draw when sampling). sampling: temperature and top-p (greedy = temperature 0). tokens/s: "
           "generated tokens / prompt wall seconds. predicted: expected acc/step of the run's tree under a budget.json "
           "acceptance vector.", ""]
    head = ("| # | run | drafter | tree | sampling | role | nodes/step | steps | acc/step | acc/step +bonus | local | tokens/s "
            "| predicted acc/step |")
    for c in comparisons:
        out += [f"## {markdown(c.domain)}", "", head, "|" + "---|" * 13]
        for i, e in enumerate(c.entries, 1):
            s = e.stats
            out.append(f"| {i} | {markdown(e.label)} | {markdown(e.drafter)} | {markdown(e.tree)} | {e.sampling_text} "
                       f"| {e.role.value} | {s.nodes_per_step:.1f} | {s.steps} "
                       f"| {s.accepted_per_step:.3f} | {s.accepted_per_step + 1:.3f} | {s.local_acceptance:.3f} "
                       f"| {s.tokens_per_second:.2f} | {_cell(e.predicted_accepted)} |")
        out += [""] + [markdown(line) for line in c.verdict] + [""]
    return "\n".join(out)


def to_json(comparisons: list[DomainComparison]) -> str:
    return json.dumps(json_doc(comparisons), indent=2)


def json_doc(comparisons: list[DomainComparison]) -> dict:
    """The comparison as a JSON-ready dict (``{"domains": [...]}``)."""
    def entry(e: RunEntry) -> dict:
        d = {k: v for k, v in asdict(e).items() if k != "throughput"}
        return d | {"role": e.role.value, "children": e.children.value,
                    "accepted_per_step_with_bonus": e.stats.accepted_per_step + 1}

    doc = [{"domain": c.domain, "runs": [entry(e) for e in c.entries], "verdict": c.verdict,
            "recommended_vs_default": asdict(c.recommended_vs_default) if c.recommended_vs_default else None,
            "gains": [asdict(g) for g in c.gains]}
           for c in comparisons]
    return {"domains": doc}
