"""The report document: its sections, built as blocks (:mod:`render`) from the typed metrics and claims.

Text that comes from user data (domain names, prompt ids and texts, paths) is passed to the blocks as is;
the renderers make it inert.
"""

from __future__ import annotations

from specdyn.report import sections
from specdyn.report.claims import CLAIMS
from specdyn.report.notions import Entropy, Measure, Notion
from specdyn.report.render import Bullets, Figure, Heading, Paragraph, Table
from specdyn.report.schema import Ceiling, GroupMetrics, Metrics
from specdyn.report.verdicts import ClaimResult, fmt
from specdyn.safetext import one_line
from specdyn.stats import Estimate

PROMPT_SAMPLES = 3  # prompts shown per domain
PROMPT_CHARS = 240  # characters of prompt text shown
HEADLINE = (Measure.LEVEL, Measure.LOCAL, Measure.PATH, Measure.PROB, Measure.PER_STEP, Measure.PER_STEP_BONUS)


def ci_note(metrics: Metrics) -> str:
    boot = metrics.bootstrap
    return (f"Brackets and error bars: 95% confidence intervals from a prompt-level bootstrap "
            f"({boot.resamples:,} resamples of prompts within each domain, seed {boot.seed}).")


def capped(est: Estimate, ceiling: Ceiling | None, digits: int = 3) -> str:
    """``fmt(est)``, marked when its CI reaches the cap the tree shapes allow."""
    mark = f" (at cap {ceiling.cap:.{digits}g})" if ceiling is not None and ceiling.at_ceiling else ""
    return fmt(est, digits) + mark


def build_document(metrics: Metrics, prompts: dict[str, list[tuple[str, str]]], figures: dict[str, bytes]) -> list:
    """The report's blocks. ``prompts`` maps a domain to (prompt id, text) samples."""
    note = ci_note(metrics)
    fig = {name: (lambda caption, n=name: Figure(n, figures[n], f"{caption} {note}")) for name in figures}
    blocks = _header(metrics)
    blocks += _summary(metrics)
    blocks += _acceptance(metrics, fig, note)
    blocks += _depth_and_rank(metrics, fig, note)
    blocks += _entropy(metrics, fig, note)
    blocks += sections.reviewer_analyses(metrics, fig, note)
    blocks += _predictors(metrics)
    blocks += _claims(metrics.claims)
    blocks += _prompts(prompts)
    return blocks + _definitions(metrics.run.sampled)


def _header(metrics: Metrics) -> list:
    run = metrics.run
    sampling = (f"speculative sampling at temperature {run.temperature:g}, top-p {run.top_p:g}, children "
                f"{run.children}" if run.sampled else "greedy (temperature 0)")
    blocks = [Heading(1, "specdyn report"),
              Paragraph(f"Run: {run.dir} | status: {run.status} | domains: {', '.join(run.domains)} | finished "
                        f"prompts: {run.finished_prompts:,} | steps: {run.steps:,} | nodes: {run.nodes:,}"),
              Paragraph(f"Pair: {run.pair[0]} -> {run.pair[1]} | drafter: {run.drafter} | tree: {run.tree} | "
                        f"verification: {sampling}")]
    if run.in_progress:
        blocks.append(Paragraph("This run is not complete: the report covers the prompts finished so far.",
                                note=True))
    if metrics.notes:
        blocks += [Heading(2, "Notes on the data"), Bullets(metrics.notes)]
    return blocks


def _summary(metrics: Metrics) -> list:
    alpha = "; ".join(f"{name} {fmt(g.acceptance.acceptance_level)}" for name, g in metrics.groups().items())
    lines = [f"({c.claim}) {CLAIMS[c.claim]} {c.verdict.value.upper()} (primary check: "
             f"{'the claim as stated' if c.text == CLAIMS[c.claim] else c.text} [{c.measure}])"
             for c in metrics.claims if c.primary]
    return [Heading(2, "Summary"),
            Paragraph(f"Per-level acceptance α (the headline acceptance rate): {alpha}."),
            Paragraph("The reference study's claims, primary results (the rest of the checks are sensitivity "
                      "analyses, listed at the end):"), Bullets(lines)]


def _rates_row(name: str, g: GroupMetrics) -> list[str]:
    a = g.acceptance
    return [name, f"{a.nodes:,}", f"{a.steps:,}", f"{a.prompts:,}", f"{a.trials:,}"] + [
        capped(a.rate(m), a.ceilings.get(m), 2 if m in (Measure.PER_STEP, Measure.PER_STEP_BONUS) else 3)
        for m in HEADLINE]


def _cap(ceiling: Ceiling) -> str:
    return f"{ceiling.cap:.3f}" + (" (reached)" if ceiling.at_ceiling else "")


def _acceptance(metrics: Metrics, fig, note: str) -> list:
    sampled = metrics.run.sampled
    ceilings = [[name] + [_cap(g.acceptance.ceilings[m]) for m in HEADLINE] for name, g in metrics.groups().items()]
    return [
        Heading(2, "Acceptance per domain"),
        Table(["domain", "nodes", "steps", "prompts", "trials"] + [m.label(sampled) for m in HEADLINE],
              [_rates_row(n, g) for n, g in metrics.groups().items()],
              "α: per-level acceptance (successes / trials; the headline rate). Node rates under each notion; "
              "accepted tokens per step from steps' `accepted`, without and with the target's bonus token. "
              f"'at cap' marks a CI that reaches the cap the drafted trees allow. {note}"),
        fig["acceptance_level"]("Per-level acceptance α per domain and per trial depth."),
        fig["accepted_length"]("Expected accepted tokens per step by domain, without and with the bonus "
                               "token; dotted: the cap the drafted trees allow."),
        Table(["domain"] + [f"cap of {m.label(sampled)}" for m in HEADLINE], ceilings,
              "Ceilings: the largest value each measure can take given the trees drafted (one accepted child "
              "per position; one root path); '(reached)' when the 95% CI comes within 2% of it. A number at "
              "its cap says more about the tree than about the draft, and squeezes correlations with it."),
    ]


def _profile_rows(metrics: Metrics, pick, count: str) -> list[list[str]]:
    rows = []
    for name, g in metrics.groups().items():
        for level, est in pick(g).items():
            rows.append([name, level, f"{getattr(est, count):,}", fmt(est)])
    return rows


def _depth_rows(metrics: Metrics) -> list[list[str]]:
    rows = []
    for name, g in metrics.groups().items():
        a = g.acceptance
        for level, local in a.depth_profile.items():
            caps = [a.depth_ceilings[m].get(level) for m in (Measure.LOCAL, Measure.PATH)]
            rows.append([name, level, f"{local.nodes:,}", capped(local, caps[0]),
                         capped(a.depth_profile_path[level], caps[1]), fmt(a.depth_profile_accept_prob[level])])
    return rows


def _depth_and_rank(metrics: Metrics, fig, note: str) -> list:
    return [
        Heading(2, "Depth and sibling rank"),
        Table(["domain", "depth", "trials", "α"],
              _profile_rows(metrics, lambda g: g.acceptance.acceptance_level_by_depth, "trials"),
              f"Per-level acceptance α among the trials at each depth (depth of the children tested). {note}"),
        fig["depth_profile"]("Share of nodes accepted at each tree depth (left: accepted_local, right: "
                             "accepted_path); dotted: the cap of the drafted trees."),
        Table(["domain", "depth", "nodes", "accepted_local rate", "accepted_path rate", "accept_prob mean"],
              _depth_rows(metrics), f"Depth profile of the node notions. {note}"),
        fig["rank_vector"]("Sibling-rank acceptance vector: among nodes whose parent was reached (so the target "
                           "verified them), the share accepted, by sibling rank."),
        Table(["domain", "rank", "nodes verified", "P(accepted | parent reached)"],
              _profile_rows(metrics, lambda g: g.acceptance.rank_acceptance_vector, "nodes"),
              f"Sibling-rank acceptance vector (Sequoia's acceptance vector). {note}"),
        Table(["domain", "rank", "nodes", "accepted_local rate (all nodes)"],
              _profile_rows(metrics, lambda g: g.acceptance.rank_profile, "nodes"),
              f"accepted_local rate by sibling rank over all nodes. {note}"),
    ]


def _entropy(metrics: Metrics, fig, note: str) -> list:
    dist_rows = []
    for name, g in metrics.groups().items():
        row = [name, f"{g.acceptance.nodes:,}"]
        for src in Entropy:
            d = g.entropy.distribution(src)
            row += [fmt(d.mean), f"{d.quantiles['p10']:.2f} / {d.quantiles['p50']:.2f} / {d.quantiles['p90']:.2f}"]
        dist_rows.append(row)
    corr_rows = [[name, src.value, n.value, fmt(g.entropy.correlations.pearson[src][n]),
                  fmt(g.entropy.correlations.spearman[src][n])]
                 for name, g in metrics.groups().items() for src in Entropy for n in Notion]
    return [
        Heading(2, "Entropy"),
        Table(["domain", "nodes", "draft entropy mean (nats)", "draft p10 / p50 / p90", "target entropy mean (nats)",
               "target p10 / p50 / p90"], dist_rows,
              f"Entropy of the drafter's and the target's next-token distributions (temperature 1) at each "
              f"node's parent position. {note}"),
        fig["entropy_distributions"]("Entropy distributions per domain (share of nodes per bin; legend: mean "
                                     "and its 95% CI, node, step and prompt counts)."),
        Table(["domain", "entropy", "acceptance notion", "Pearson r", "Spearman rho"], corr_rows,
              f"Node-level correlations. {note} Spearman's CI keeps the full-sample ranks fixed across "
              "resamples (an approximation)."),
        fig["entropy_acceptance"]("accepted_local rate within entropy deciles (all nodes pooled to set the bin "
                                  "edges), per domain; x = mean entropy in the bin."),
    ]


def _predictors(metrics: Metrics) -> list:
    pred = metrics.predictors
    local = pred.models[Notion.LOCAL]
    rows = [[name, str(fit.parameters)]
            + [f"{pred.models[n][name].mcfadden_r2:.4f}" for n in Notion]
            + [", ".join(_health(pred.models[n][name]) for n in Notion)] for name, fit in local.items()]
    return [Heading(2, "Deviance explained (descriptive)"), Paragraph(pred.summary),
            Table(["model", "parameters"] + [f"McFadden R² ({n.value})" for n in Notion] + ["fit (per notion)"],
                  rows, "Logistic regressions of node acceptance on categorical domain, depth, sibling rank and "
                        "entropy deciles, fitted with statsmodels on cells (accept_prob: fractional-response "
                        "quasi-likelihood). McFadden R² = 1 - LL(model) / LL(intercept only). A description, "
                        "not a test: claim (a) below tests domain against depth with prompts as clusters.")]


def _health(fit) -> str:
    problems = [p for p, bad in (("not converged", not fit.converged), ("separation", fit.separation),
                                 ("rank-deficient", fit.rank_deficient)) if bad]
    return "/".join(problems) or "ok"


def _claims(claims: list[ClaimResult]) -> list:
    rows = [[f"({c.claim})", "primary" if c.primary else "sensitivity", c.text, c.measure, c.summary,
             c.verdict.value] for c in claims]
    rules = {}
    for c in claims:
        rules.setdefault((c.claim, c.rule), f"({c.claim}) {c.rule}")
    return [Heading(2, "The reference study's claims on this run"),
            Bullets([f"({k}) {text}" for k, text in CLAIMS.items()]),
            Table(["claim", "role", "statement checked", "measure", "this run", "verdict"], rows,
                  "Verdicts at 95%: holds / does not hold / inconclusive; 'not comparable' when a literal claim "
                  "quotes numbers of the study's model pair and this run used another (its numbers are shown, "
                  "and values.computed_verdict in metrics.json says what they would give); 'not applicable' "
                  "when the run lacks what the claim needs. Only the primary result decides a claim."),
            Heading(3, "Decision rules"), Bullets(list(rules.values()))]


def _excerpt(text: str) -> str:
    """The first PROMPT_CHARS characters of a prompt text, on one line."""
    return one_line(text[:PROMPT_CHARS] + ("…" if len(text) > PROMPT_CHARS else ""))


def _prompts(prompts: dict[str, list[tuple[str, str]]]) -> list:
    return [Heading(2, "Prompts (sample)"),
            Table(["domain", "prompt id", "text"],
                  [[d, pid, _excerpt(text)] for d, rows in prompts.items() for pid, text in rows],
                  f"Up to {PROMPT_SAMPLES} finished prompts per domain, text cut at {PROMPT_CHARS} characters.")]


def _definitions(sampled: bool) -> list:
    local = ("the verifier's decision at the node: it is the child the verifier accepts at its parent position "
             "(tried with its own random draw, whatever happened to the parent)" if sampled else
             "its token equals the target's argmax at the parent position, whatever the parent's fate")
    return [Heading(2, "Definitions"), Bullets([
        "α (per-level acceptance, the headline rate): a trial is a tree position the acceptance walk reached "
        "that has drafted children (the root, then every accepted node with children); it succeeds when one "
        "of its children is accepted. α = successes / trials. With a constant α in a depth-d tree the accepted "
        "length without the bonus is α + α² + … + α^d (1.0 at α ≈ 0.544 for d = 3).",
        f"accepted_local: share of nodes where {local}. With B siblings at most one is accepted.",
        "accepted_path: share of nodes on their step's accepted path (the node and all its ancestors accepted).",
        "accept_prob: mean over nodes of min(1, p/q), with p and q the target's and the draft's temperature-1 "
        "probabilities of the token at the parent position. It is the chance speculative sampling accepts the "
        "token only when the token was drawn from the draft and is tried first; for a later sibling, or a "
        "deterministic (top-k) child, the real acceptance chance differs. A property of the two models.",
        "Accepted tokens per step: mean of steps' `accepted` (drafted tokens accepted). The with-bonus figure "
        "adds the target's bonus token (+1), as EAGLE / Spec-Bench's tau does.",
        "Entropies: nats, of the full temperature-1 next-token distribution at the node's parent position.",
        "Ceilings: the cap each measure can reach given the drafted trees; 'at cap' when the CI reaches it "
        "(within 2%).",
        "Confidence intervals: 95% percentile intervals; prompts are resampled with replacement within each "
        "domain (overall figures pool the domain resamples), because nodes of one prompt are not independent.",
    ])]
