"""The report's section of analyses a reviewer expects, each a table and a figure: entropy-acceptance
correlation per sibling rank and within / between prompts, prompt-weighted versus pooled rates, draft
calibration, per source and per category, position in the output, draft-target distance."""

from __future__ import annotations

from specdyn.report.acceptance import WEIGHTED
from specdyn.report.notions import Entropy, Measure
from specdyn.report.render import Heading, Paragraph, Table
from specdyn.report.schema import Binned, Breakdown, Metrics
from specdyn.report.verdicts import fmt


def reviewer_analyses(metrics: Metrics, fig, note: str) -> list:
    return ([Heading(2, "Analyses")] + _rank_correlations(metrics, fig, note) + _parts(metrics, fig, note)
            + _weighting(metrics, fig, note) + _calibration(metrics, fig, note) + _breakdowns(metrics, fig, note)
            + _position(metrics, fig, note) + _distance(metrics, fig, note))


def _rank_correlations(metrics: Metrics, fig, note: str) -> list:
    rows = [[name, rank, f"{r.nodes:,}", fmt(r)] for name, g in metrics.groups().items()
            for rank, r in g.entropy.rank_correlations.items()]
    return [Heading(3, "Entropy and acceptance per sibling rank"),
            Table(["domain", "rank", "nodes (parent reached)", "Pearson r (draft entropy, accepted)"], rows,
                  "Among nodes whose parent was reached, by sibling rank: a pooled correlation mixes ranks with "
                  f"very different acceptance. {note}"),
            fig["rank_correlations"]("Pearson r per sibling rank, per domain.")]


def _parts(metrics: Metrics, fig, note: str) -> list:
    rows = [[name, src.value, fmt(p.total), fmt(p.within_prompt), fmt(p.between_prompt)]
            for name, g in metrics.groups().items() for src in Entropy for p in [g.entropy.trial_correlations[src]]]
    return [Heading(3, "Within and between prompts"),
            Table(["domain", "entropy", "total r", "within prompts", "between prompts"], rows,
                  "Trial-level Pearson r between the entropy at a trial's position and its success (claim (c)'s "
                  "primary statistic), split into the correlation of deviations from each prompt's means "
                  "(within) and of the prompts' means, weighted by their trials (between). A contrast between "
                  f"domains, like claim (d), is a between-prompt comparison. {note}"),
            fig["correlation_parts"]("Trial-level r: total, within prompts, between prompts; band: weak "
                                     "negative.")]


def _weighting(metrics: Metrics, fig, note: str) -> list:
    sampled = metrics.run.sampled
    rows = [[name, m.label(sampled), fmt(w.pooled), fmt(w.prompt_weighted), fmt(w.difference)]
            for name, g in metrics.groups().items() for m in WEIGHTED for w in [g.acceptance.prompt_weighted[m]]]
    return [Heading(3, "Prompt-weighted versus pooled"),
            Table(["domain", "measure", "pooled", "prompt-weighted", "difference"], rows,
                  "Pooled: sums over all units (trials, nodes, steps) of the domain, so long prompts weigh more; "
                  "prompt-weighted: the mean of each prompt's own rate. A large difference means prompts that "
                  f"draft more (longer outputs, more steps) accept differently. {note}"),
            fig["prompt_weighting"]("Pooled and prompt-weighted rates per domain.")]


def _binned_rows(metrics: Metrics, pick, measure: Measure) -> list[list[str]]:
    return [[name, f"{b.low:.3g}–{b.high:.3g}", f"{b.mean:.3g}", f"{b.count:,}", fmt(b.rates[measure])]
            for name, g in metrics.groups().items() for b in pick(g).bins]


def _binned(metrics: Metrics, pick, measure: Measure, title: str, header: list[str], caption: str, figure) -> list:
    """A binned analysis: its table, or why this run cannot have it; and its figure."""
    found: Binned = pick(metrics.overall)
    body = (Paragraph(found.unavailable, note=True) if found.unavailable
            else Table(header, _binned_rows(metrics, pick, measure), caption))
    return [Heading(3, title), body, figure]


def _calibration(metrics: Metrics, fig, note: str) -> list:
    reading = ("At temperature 0 a draft whose probabilities are calibrated against the target's choices "
               "sits on the diagonal." if not metrics.run.sampled else
               "At temperature > 0 acceptance also depends on the verifier's draws; the diagonal is a reference.")
    return _binned(metrics, lambda g: g.analyses.calibration, Measure.LOCAL, "Draft calibration",
                   ["domain", "draft_prob bin", "mean draft_prob", "nodes", "accepted_local rate"],
                   "Share of nodes accepted against the draft's (temperature-1) probability of the token. "
                   f"{reading} {note}",
                   fig["calibration"]("accepted_local rate against draft_prob; dotted: rate = probability."))


def _position(metrics: Metrics, fig, note: str) -> list:
    return _binned(metrics, lambda g: g.analyses.output_position, Measure.LEVEL, "Position in the output",
                   ["domain", "output_pos bin", "mean output_pos", "trials", "α"],
                   f"α among the trials of steps that started after output_pos generated tokens. {note}",
                   fig["output_position"]("α against the number of tokens generated before the step."))


def _distance(metrics: Metrics, fig, note: str) -> list:
    return _binned(metrics, lambda g: g.analyses.draft_target_tv, Measure.LEVEL, "Draft-target distance",
                   ["domain", "TV bin", "mean TV", "trials", "α"],
                   "α among trials whose position has a total variation distance between the draft's and the "
                   "target's temperature-1 distributions in the bin. 1 - TV is the chance standard speculative "
                   f"sampling accepts one token drawn from the draft. {note}",
                   fig["draft_target_tv"]("α against the draft-target TV distance; dotted: 1 - TV."))


def _breakdown_rows(part: Breakdown) -> list[list[str]]:
    return [[name, ", ".join(r.domains), f"{r.prompts:,}", f"{r.trials:,}", fmt(r.acceptance_level),
             fmt(r.acceptance_local), fmt(r.accept_prob), fmt(r.accepted_per_step, 2)]
            for name, r in part.groups.items()]


def _breakdowns(metrics: Metrics, fig, note: str) -> list:
    header = ["domains", "prompts", "trials", "α", "accepted_local rate", "accept_prob mean",
              "accepted tokens/step (no bonus)"]
    blocks = [Heading(3, "Per source and per category")]
    for key, part in (("source", metrics.breakdowns.source), ("category", metrics.breakdowns.category)):
        blocks.append(Paragraph(f"Per {key}: {part.unavailable}", note=True) if part.unavailable else
                      Table([key] + header, _breakdown_rows(part),
                            f"Acceptance per prompt {key} (the suite's `{key}`"
                            f"{' in metadata' if key == 'category' else ''}); each group's prompts are "
                            f"resampled on their own. {note}"))
    return blocks + [fig["breakdowns"]("α per source and per category.")]
