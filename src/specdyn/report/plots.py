"""The report's figures, drawn with matplotlib (Agg) from the metrics dict and returned as PNG bytes.

Every figure shows 95% prompt-level bootstrap CIs as error bars and names each domain's node / step /
prompt counts in its legend. Domain names are drawn literally: math text (``$...$``) and TeX are off,
and control characters are shown as inert escapes (:func:`specdyn.safetext.visible`).
"""

from __future__ import annotations

import io

import numpy as np

from specdyn.report.notions import Entropy, Notion
from specdyn.safetext import visible

DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.grid": True, "grid.alpha": 0.3,
                         "text.parse_math": False, "text.usetex": False})  # names are not math
    return plt


def _png(fig, metrics: dict) -> bytes:
    boot = metrics["bootstrap"]
    fig.text(0.99, 1.0, f"error bars / brackets: 95% CI, prompt-level bootstrap ({boot['resamples']:,} "
                        "resamples)", ha="right", va="bottom", fontsize=8, color="#555")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def _label(name: str, group: dict) -> str:
    return f"{visible(name)} ({group['nodes']:,} nodes, {group['steps']:,} steps, {group['prompts']:,} prompts)"


def _errors(rows: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Values and asymmetric error-bar lengths; missing CIs draw no bar."""
    val = np.array([np.nan if r["value"] is None else r["value"] for r in rows], dtype=float)
    lo = np.array([np.nan if r["ci_low"] is None else r["ci_low"] for r in rows], dtype=float)
    hi = np.array([np.nan if r["ci_high"] is None else r["ci_high"] for r in rows], dtype=float)
    err = np.vstack([np.nan_to_num(val - lo), np.nan_to_num(hi - val)])
    return val, np.clip(err, 0, None)


def _level_axis(profile: dict) -> tuple[list[str], np.ndarray]:
    labels = list(profile)
    return labels, np.array([float(k.rstrip("+")) for k in labels])


def _line_panel(ax, metrics: dict, key: str, ylabel: str, xlabel: str) -> None:
    domains = metrics["domains"]
    offsets = np.linspace(-0.12, 0.12, max(len(domains), 1))
    for off, (name, group) in zip(offsets, domains.items()):
        profile = group[key]
        if not profile:
            continue
        labels, x = _level_axis(profile)
        val, err = _errors(list(profile.values()))
        ax.errorbar(x + off, val, yerr=err, marker="o", capsize=3, label=_label(name, group))
        ax.set_xticks(x, labels)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)


def depth_profile(metrics: dict) -> bytes:
    """Node acceptance rate per tree depth, per domain: accepted_local and accepted_path panels."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    _line_panel(axes[0], metrics, "depth_profile", "accepted_local rate (share of nodes)", "tree depth")
    axes[0].set_title("Node-local acceptance by depth")
    _line_panel(axes[1], metrics, "depth_profile_path", "accepted_path rate (share of nodes)", "tree depth")
    axes[1].set_title("Path acceptance by depth")
    _legend_below(fig, axes[0])
    return _png(fig, metrics)


def rank_vector(metrics: dict) -> bytes:
    """Sibling-rank acceptance vector: P(rank-k child accepted | its parent was accepted), per domain."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    _line_panel(ax, metrics, "rank_acceptance_vector",
                "P(child accepted | parent accepted)", "sibling rank (0 = draft's top choice)")
    ax.set_title("Sibling-rank acceptance vector (accepted_local among verified nodes)")
    _legend_below(fig, ax)
    return _png(fig, metrics)


def accepted_length(metrics: dict) -> bytes:
    """Expected accepted tokens per step per domain, without and with the bonus token."""
    plt = _pyplot()
    groups = {**metrics["domains"], "overall": metrics["overall"]}
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(groups) + 2), 4.5))
    x = np.arange(len(groups))
    for shift, key, label in ((-0.2, "accepted_per_step", "bonus token not counted"),
                              (0.2, "accepted_per_step_with_bonus", "bonus token counted")):
        val, err = _errors([g[key] for g in groups.values()])
        ax.bar(x + shift, val, width=0.38, yerr=err, capsize=4, label=label)
    ax.axhline(1.0, color="black", linestyle="--", linewidth=1, label="1.0 token per step")
    ax.set_xticks(x, [f"{visible(n)}\n{g['nodes']:,} nodes\n{g['steps']:,} steps\n{g['prompts']:,} prompts"
                      for n, g in groups.items()])
    ax.set_ylabel("accepted tokens per step")
    ax.set_title("Expected accepted length per step (from steps' accepted)")
    ax.legend(loc="upper left", fontsize=9)
    return _png(fig, metrics)


def entropy_acceptance(metrics: dict, notion: Notion = Notion.LOCAL) -> bytes:
    """Acceptance rate against entropy (quantile bins), per domain, for draft and target entropy."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, src in zip(axes, Entropy):
        for name, group in metrics["domains"].items():
            rows = group["entropy_bins"][src.value]
            if not rows:
                continue
            val, err = _errors([r[notion.value] for r in rows])
            ax.errorbar([r["mean_entropy"] for r in rows], val, yerr=err, marker="o", capsize=3,
                        label=_label(name, group))
        ax.set_xlabel(f"{src.value.replace('_', ' ')} at the parent position (nats; bin mean)")
        ax.set_title(f"{notion.value} rate vs {src.value.replace('_', ' ')}")
    axes[0].set_ylabel(f"{notion.value} rate (share of nodes)")
    axes[0].set_ylim(bottom=0)
    _legend_below(fig, axes[0])
    return _png(fig, metrics)


def entropy_distributions(metrics: dict) -> bytes:
    """Histograms (share of nodes per bin) of draft and target entropy, per domain, with mean and CI."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, src in zip(axes, Entropy):
        for name, group in metrics["domains"].items():
            dist = group[src.value]
            edges, counts = np.array(dist["histogram"]["edges"]), np.array(dist["histogram"]["counts"])
            share = counts / max(counts.sum(), 1)
            m = dist["mean"]
            ci = "" if m["ci_low"] is None else f" [{m['ci_low']:.2f}, {m['ci_high']:.2f}]"
            mean = "n/a" if m["value"] is None else f"{m['value']:.2f}"
            ax.stairs(share, edges, label=f"{visible(name)}: mean {mean}{ci} nats; {group['nodes']:,} nodes, "
                                          f"{group['steps']:,} steps, {group['prompts']:,} prompts")
        ax.set_xlabel(f"{src.value.replace('_', ' ')} (nats; last bin includes the top 0.5%)")
        ax.set_ylabel("share of nodes")
        ax.set_title(f"{src.value.replace('_', ' ')} distribution")
        below = -0.22 - 0.07 * len(metrics["domains"])
        ax.legend(fontsize=8, loc="lower center", bbox_to_anchor=(0.5, below))
    return _png(fig, metrics)


def _legend_below(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(2, len(labels)), fontsize=9,
                   bbox_to_anchor=(0.5, -0.02 - 0.05 * ((len(labels) + 1) // 2)))


FIGURES = {
    "depth_profile": depth_profile,
    "entropy_acceptance": entropy_acceptance,
    "accepted_length": accepted_length,
    "rank_vector": rank_vector,
    "entropy_distributions": entropy_distributions,
}
