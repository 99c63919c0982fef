"""Turn the metrics and claims into one document, rendered as Markdown and as self-contained HTML.

The document is a list of blocks (headings, paragraphs, lists, tables, figures) built once; both
renderers pass every piece of text through :mod:`specdyn.safetext` (prompt texts, domain names and ids
come from user data): it is shown literally, never as markup, and control characters are made inert.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from specdyn.safetext import html, markdown, one_line
from specdyn.report.claims import Claim, Verdict
from specdyn.report.notions import Entropy, Notion

PROMPT_SAMPLES = 3  # prompts shown per domain
PROMPT_CHARS = 240  # characters of prompt text shown


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Paragraph:
    text: str
    note: bool = False  # drawn as a highlighted box in HTML


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""


@dataclass
class Figure:
    name: str
    png: bytes
    caption: str


def fmt(est: dict | None, key: str = "value", digits: int = 3) -> str:
    """'value [low, high]' for an estimate dict; 'n/a' when undefined."""
    if not est or est.get(key) is None:
        return "n/a"
    if est.get("ci_low") is None:
        return f"{est[key]:.{digits}f} (no CI)"
    return f"{est[key]:.{digits}f} [{est['ci_low']:.{digits}f}, {est['ci_high']:.{digits}f}]"


def _groups(metrics: dict) -> dict:
    return {**metrics["domains"], "overall (all domains)": metrics["overall"]}


def build_document(metrics: dict, claims: list[Claim], prompts: dict[str, list[tuple[str, str]]],
                   figures: dict[str, bytes]) -> list:
    """The report's blocks. ``prompts`` maps a domain to (prompt id, text) samples."""
    run, boot = metrics["run"], metrics["bootstrap"]
    ci_note = (f"Brackets and error bars: 95% confidence intervals from a prompt-level bootstrap "
               f"({boot['resamples']:,} resamples of prompts within each domain, seed {boot['seed']}).")
    blocks: list = [Heading(1, "specdyn report"),
                    Paragraph(f"Run: {run['dir']} | status: {run['status']} | domains: "
                              f"{', '.join(run['domains'])} | finished prompts: {run['finished_prompts']:,}"
                              f" | steps: {run['steps']:,} | nodes: {run['nodes']:,}")]
    if run["in_progress"]:
        blocks.append(Paragraph("This run is not complete: the report covers the prompts finished so far.",
                                note=True))
    if metrics["notes"]:
        blocks += [Heading(2, "Notes on the data"), Bullets(metrics["notes"])]
    blocks += [Heading(2, "Summary"), Paragraph(metrics["predictors"]["verdict"]),
               Bullets(_claim_lines(claims))]
    blocks += _acceptance(metrics, figures, ci_note)
    blocks += _depth_and_rank(metrics, figures, ci_note)
    blocks += _entropy(metrics, figures, ci_note)
    blocks += _predictors(metrics)
    blocks += _claims(claims)
    blocks += [Heading(2, "Prompts (sample)"),
               Table(["domain", "prompt id", "text"],
                     [[d, pid, _excerpt(text)]
                      for d, rows in prompts.items() for pid, text in rows],
                     f"Up to {PROMPT_SAMPLES} finished prompts per domain, text cut at {PROMPT_CHARS} "
                     "characters.")]
    blocks += _definitions()
    return blocks


def _excerpt(text: str) -> str:
    """The first PROMPT_CHARS characters of a prompt text, on one line."""
    return one_line(text[:PROMPT_CHARS] + ("…" if len(text) > PROMPT_CHARS else ""))


def _claim_lines(claims: list[Claim]) -> list[str]:
    """One line per claim: its text and the verdict under each notion / entropy it was checked for."""
    lines: dict[str, list[str]] = {}
    for c in claims:
        where = c.notion + (f", {c.entropy}" if c.entropy else "")
        lines.setdefault(f"({c.id}) {c.text}", []).append(f"{c.verdict.value} [{where}]")
    return [f"{text} {'; '.join(verdicts)}" for text, verdicts in lines.items()]


def _acceptance(metrics: dict, figures: dict, ci_note: str) -> list:
    rows = [[name, f"{g['nodes']:,}", f"{g['steps']:,}", f"{g['prompts']:,}", fmt(g["accept_prob"]),
             fmt(g["acceptance_local"]), fmt(g["acceptance_path"]), fmt(g["accepted_per_step"], digits=2),
             fmt(g["accepted_per_step_with_bonus"], digits=2)] for name, g in _groups(metrics).items()]
    return [
        Heading(2, "Acceptance per domain"),
        Table(["domain", "nodes", "steps", "prompts", "accept_prob (mean)", "accepted_local rate",
               "accepted_path rate", "accepted tokens/step (no bonus)", "tokens/step (with bonus)"], rows,
              "Node acceptance under each notion and expected accepted length per step (from steps' "
              f"`accepted`; the with-bonus column adds the target's bonus token). {ci_note}"),
        Figure("accepted_length", figures["accepted_length"],
               f"Expected accepted tokens per step by domain, without and with the bonus token. {ci_note}"),
    ]


def _profile_rows(metrics: dict, keys: tuple[str, ...]) -> list[list[str]]:
    rows = []
    for name, g in _groups(metrics).items():
        for level, first in g[keys[0]].items():
            rows.append([name, level, f"{first['nodes']:,}"]
                        + [fmt(g[k].get(level)) for k in keys])
    return rows


def _depth_and_rank(metrics: dict, figures: dict, ci_note: str) -> list:
    return [
        Heading(2, "Depth and sibling rank"),
        Figure("depth_profile", figures["depth_profile"],
               f"Share of nodes accepted at each tree depth (left: accepted_local, right: accepted_path). "
               f"Legend: node / step / prompt counts. {ci_note}"),
        Table(["domain", "depth", "nodes", "accepted_local rate", "accepted_path rate", "accept_prob mean"],
              _profile_rows(metrics, ("depth_profile", "depth_profile_path", "depth_profile_accept_prob")),
              f"Depth-acceptance profile. {ci_note}"),
        Figure("rank_vector", figures["rank_vector"],
               "Sibling-rank acceptance vector: among nodes whose parent was accepted (so the target "
               f"verified them), the share accepted, by sibling rank. {ci_note}"),
        Table(["domain", "rank", "nodes verified", "P(accepted | parent accepted)"],
              _profile_rows(metrics, ("rank_acceptance_vector",)),
              f"Sibling-rank acceptance vector (accepted_local among nodes whose parent is accepted). "
              f"{ci_note}"),
        Table(["domain", "rank", "nodes", "accepted_local rate (all nodes)"],
              _profile_rows(metrics, ("rank_profile",)),
              f"Unconditional accepted_local rate by sibling rank. {ci_note}"),
    ]


def _entropy(metrics: dict, figures: dict, ci_note: str) -> list:
    dist_rows = []
    for name, g in _groups(metrics).items():
        row = [name, f"{g['nodes']:,}"]
        for src in Entropy:
            q = g[src.value]["quantiles"]
            row += [fmt(g[src.value]["mean"]), f"{q['p10']:.2f} / {q['p50']:.2f} / {q['p90']:.2f}"]
        dist_rows.append(row)
    corr_rows = []
    for name, g in _groups(metrics).items():
        for src in Entropy:
            for notion in Notion:
                p = g["correlations"]["pearson"][src.value][notion.value]
                s = g["correlations"]["spearman"][src.value][notion.value]
                corr_rows.append([name, src.value, notion.value, fmt(p, "r"), fmt(s, "rho")])
    head = {n: g["pearson_draft_entropy_accepted_local"] for n, g in _groups(metrics).items()}
    return [
        Heading(2, "Entropy"),
        Table(["domain", "nodes", "draft entropy mean (nats)", "draft p10 / p50 / p90",
               "target entropy mean (nats)", "target p10 / p50 / p90"], dist_rows,
              f"Entropy of the drafter's and the target's next-token distributions at each node's parent "
              f"position. {ci_note}"),
        Figure("entropy_distributions", figures["entropy_distributions"],
               f"Entropy distributions per domain (share of nodes per bin; legend: mean and its 95% CI, "
               f"node and prompt counts). {ci_note}"),
        Heading(3, "Entropy and acceptance"),
        Paragraph("Headline: Pearson r between draft entropy and accepted_local, node level: "
                  + "; ".join(f"{n} {fmt(e, 'r')}" for n, e in head.items()) + "."),
        Table(["domain", "entropy", "acceptance notion", "Pearson r", "Spearman rho"], corr_rows,
              f"Node-level correlations. {ci_note} Spearman's CI keeps the full-sample ranks fixed "
              "across resamples (an approximation)."),
        Figure("entropy_acceptance", figures["entropy_acceptance"],
               f"accepted_local rate within entropy deciles (all nodes pooled to set the bin edges), per "
               f"domain; x = mean entropy in the bin. Legend: node / step / prompt counts. {ci_note}"),
    ]


def _predictors(metrics: dict) -> list:
    pred = metrics["predictors"]
    names = list(pred[Notion.LOCAL.value]["models"])
    model_rows = [[name, str(pred[Notion.LOCAL.value]["models"][name]["parameters"])]
                  + [f"{pred[n.value]['models'][name]['mcfadden_r2']:.4f}"
                     if pred[n.value]["models"][name]["mcfadden_r2"] is not None else "n/a" for n in Notion]
                  for name in names]
    test_rows = []
    for n in Notion:
        for t in pred[n.value]["lr_tests"]:
            p = ("n/a (quasi-likelihood)" if t["p_value"] is None else "< 1e-300" if t["p_value"] == 0
                 else f"{t['p_value']:.3g}")
            test_rows.append([n.value, f"{t['model']} vs {t['versus']}", str(t["df"]), f"{t['chi2']:.1f}", p])
    diff_rows = [[n.value] + [fmt(pred[n.value][k], digits=4)
                              for k in ("r2_domain", "r2_depth", "r2_domain_minus_depth")] for n in Notion]
    return [
        Heading(2, "Which factor predicts acceptance"),
        Paragraph(pred["verdict"]),
        Table(["model", "parameters"] + [f"McFadden R² ({n.value})" for n in Notion], model_rows,
              "Logistic regressions of node acceptance (accept_prob: fractional-response quasi-likelihood) "
              "on categorical domain, depth and rank, and standardized entropies. McFadden R² = "
              "1 - LL(model) / LL(intercept only)."),
        Table(["notion", "domain R²", "depth R²", "domain minus depth"], diff_rows,
              "Deviance explained by domain alone and depth alone, with 95% CIs from the prompt-level "
              "bootstrap (closed-form refits on every resample)."),
        Table(["notion", "test", "df", "LR chi²", "p-value"], test_rows,
              "Likelihood-ratio tests of nested models. They treat nodes as independent, so their "
              "p-values overstate certainty; the bootstrap CIs above account for prompt clustering."),
    ]


def _claims(claims: list[Claim]) -> list:
    rules = {}
    for c in claims:
        rules.setdefault(c.id, f"({c.id}) {c.text} Rule: {c.rule}")
    return [
        Heading(2, "The reference study's claims on this run"),
        Table(["claim", "notion", "entropy", "this run", "verdict"],
              [[f"({c.id}) {c.text}", c.notion, c.entropy or "-", c.summary, c.verdict.value]
               for c in claims],
              "Verdicts at 95%: holds / does not hold / inconclusive. 'not applicable' (reported as "
              "inconclusive) when the run lacks a domain the claim needs."),
        Bullets(list(rules.values())),
    ]


def _definitions() -> list:
    return [Heading(2, "Definitions"), Bullets([
        "accept_prob: mean over nodes of min(1, p/q), the chance speculative sampling accepts a node once "
        "its parent is reached (continuous acceptance).",
        "accepted_local: share of nodes whose token equals the target's argmax at the parent position, "
        "whatever the parent's fate. With B siblings at most one can be accepted.",
        "accepted_path: share of nodes on their step's accepted path (the node and all its ancestors "
        "locally accepted).",
        "Accepted tokens per step: mean of steps' `accepted` (drafted tokens accepted; path acceptance). "
        "The with-bonus figure adds the target's bonus token (+1), as EAGLE / Spec-Bench's tau does.",
        "Entropies: nats, of the full next-token distribution at the node's parent position.",
        "Confidence intervals: 95% percentile intervals; prompts are resampled with replacement within "
        "each domain (overall figures pool the domain resamples), because nodes of one prompt are not "
        "independent.",
    ])]


# ----------------------------------------------------------------------------------------------------
# Renderers


def to_markdown(blocks: list, image_dir: str = "plots") -> str:
    """Markdown with figures linked as ``image_dir/NAME.png`` (written next to report.md)."""
    out = []
    for b in blocks:
        if isinstance(b, Heading):
            out.append(f"{'#' * b.level} {markdown(b.text)}")
        elif isinstance(b, Paragraph):
            out.append(f"> **Note:** {markdown(b.text)}" if b.note else markdown(b.text))
        elif isinstance(b, Bullets):
            out.append("\n".join(f"- {markdown(i)}" for i in b.items))
        elif isinstance(b, Table):
            lines = ["| " + " | ".join(markdown(h) for h in b.header) + " |",
                     "|" + "---|" * len(b.header)]
            lines += ["| " + " | ".join(markdown(c) for c in row) + " |" for row in b.rows]
            if b.caption:
                lines.append(f"\n*{markdown(b.caption)}*")
            out.append("\n".join(lines))
        elif isinstance(b, Figure):
            out.append(f"![{markdown(b.name)}]({image_dir}/{b.name}.png)\n\n*{markdown(b.caption)}*")
    return "\n\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.5em 0 0.2em;font-size:0.9em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2}
caption{caption-side:bottom;text-align:left;font-size:0.85em;color:#555;padding-top:3px}
figure{margin:1em 0} figure img{max-width:100%} figcaption{font-size:0.85em;color:#555}
.note{background:#fff4d6;border-left:4px solid #e0a800;padding:0.5em 1em}
.holds{color:#11702e;font-weight:600} .does-not-hold{color:#a4161a;font-weight:600}
.inconclusive{color:#7a5d00;font-weight:600}
"""

_VERDICT_CLASS = {Verdict.HOLDS.value: "holds", Verdict.DOES_NOT_HOLD.value: "does-not-hold",
                  Verdict.INCONCLUSIVE.value: "inconclusive"}


def _cell(text: str, tag: str) -> str:
    cls = _VERDICT_CLASS.get(text)
    attr = f' class="{cls}"' if cls else ""
    return f"<{tag}{attr}>{html(str(text))}</{tag}>"


def to_html(blocks: list, title: str = "specdyn report") -> str:
    """One self-contained HTML page: inline CSS, figures embedded as base64 PNG, all text escaped."""
    body = []
    for b in blocks:
        if isinstance(b, Heading):
            body.append(f"<h{b.level}>{html(b.text)}</h{b.level}>")
        elif isinstance(b, Paragraph):
            body.append(f'<p class="note">{html(b.text)}</p>' if b.note else
                        f"<p>{html(b.text)}</p>")
        elif isinstance(b, Bullets):
            body.append("<ul>" + "".join(f"<li>{html(i)}</li>" for i in b.items) + "</ul>")
        elif isinstance(b, Table):
            rows = "".join("<tr>" + "".join(_cell(c, "td") for c in row) + "</tr>" for row in b.rows)
            caption = f"<caption>{html(b.caption)}</caption>" if b.caption else ""
            head = "".join(_cell(h, "th") for h in b.header)
            body.append(f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(b, Figure):
            data = base64.b64encode(b.png).decode("ascii")
            body.append(f'<figure><img alt="{html(b.name)}" src="data:image/png;base64,{data}">'
                        f"<figcaption>{html(b.caption)}</figcaption></figure>")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html(title)}'
            f"</title><style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
