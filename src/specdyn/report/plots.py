"""Drawing helpers shared by the report's figures (:mod:`figures`): matplotlib (Agg) set up so that names
are never parsed as math, error bars from estimates, legends with counts, PNG output.

Every figure shows 95% prompt-level bootstrap CIs as error bars and names each domain's node / step /
prompt counts in its legend. Domain names are drawn literally: math text (``$...$``) and TeX are off,
and control characters are shown as inert escapes (:func:`specdyn.safetext.visible`).
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np

from specdyn.report.notions import Measure
from specdyn.report.schema import Binned, GroupMetrics, Metrics
from specdyn.safetext import visible
from specdyn.stats import Estimate

DPI = 110


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 10, "axes.titlesize": 11, "axes.grid": True, "grid.alpha": 0.3,
                         "text.parse_math": False, "text.usetex": False})  # names are not math
    return plt


def figure(columns: int = 1, width: float = 6.0, height: float = 4.5, **kwargs):
    """A figure with ``columns`` panels side by side: (fig, list of axes)."""
    fig, axes = _pyplot().subplots(1, columns, figsize=(width * columns, height), squeeze=False, **kwargs)
    return fig, list(axes[0])


def png(fig, metrics: Metrics) -> bytes:
    """The figure as PNG bytes (with the CI note), closed afterwards."""
    fig.text(0.99, 1.0, f"error bars / brackets: 95% CI, prompt-level bootstrap ({metrics.bootstrap.resamples:,} "
                        "resamples)", ha="right", va="bottom", fontsize=8, color="#555")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    _pyplot().close(fig)
    return buf.getvalue()


def counts(group: GroupMetrics) -> str:
    a = group.acceptance
    return f"{a.nodes:,} nodes, {a.steps:,} steps, {a.prompts:,} prompts"


def label(name: str, group: GroupMetrics) -> str:
    return f"{visible(name)} ({counts(group)})"


def tick(name: str, group: GroupMetrics) -> str:
    a = group.acceptance
    return f"{visible(name)}\n{a.nodes:,} nodes\n{a.steps:,} steps\n{a.prompts:,} prompts"


def errors(estimates: list[Estimate]) -> tuple[np.ndarray, np.ndarray]:
    """Values and asymmetric error-bar lengths; missing CIs draw no bar."""
    val = np.array([e.value for e in estimates], dtype=float)
    lo = np.array([e.ci_low for e in estimates], dtype=float)
    hi = np.array([e.ci_high for e in estimates], dtype=float)
    err = np.vstack([np.nan_to_num(val - lo), np.nan_to_num(hi - val)])
    return val, np.clip(err, 0, None)


def level_axis(labels: list[str]) -> np.ndarray:
    """x positions of level labels such as "1", "2", "16+"."""
    return np.array([float(k.rstrip("+")) for k in labels])


def offsets(n: int, spread: float = 0.12) -> np.ndarray:
    return np.linspace(-spread, spread, max(n, 1))


def profile_panel(ax, metrics: Metrics, pick: Callable[[GroupMetrics], dict[str, Estimate]], ylabel: str,
                  xlabel: str) -> None:
    """One line per domain through its per-level estimates (depth, rank...), dodged sideways."""
    for off, (name, group) in zip(offsets(len(metrics.domains)), metrics.domains.items()):
        profile = pick(group)
        if profile:
            x = level_axis(list(profile))
            val, err = errors(list(profile.values()))
            ax.errorbar(x + off, val, yerr=err, marker="o", capsize=3, label=label(name, group))
            ax.set_xticks(x, list(profile))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=min(0, ax.get_ylim()[0]))


def binned_panel(ax, metrics: Metrics, pick: Callable[[GroupMetrics], Binned], measure: Measure,
                 xlabel: str, ylabel: str) -> bool:
    """The rate of ``measure`` against the bins' mean x, one line per domain; False (and a message on
    the panel) when the analysis is unavailable for this run."""
    first = pick(metrics.overall)
    if first.unavailable:
        unavailable_panel(ax, first.unavailable)
        return False
    for name, group in metrics.domains.items():
        bins = pick(group).bins
        if bins:
            val, err = errors([b.rates[measure] for b in bins])
            ax.errorbar([b.mean for b in bins], val, yerr=err, marker="o", capsize=3, label=label(name, group))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(bottom=0)
    return True


def unavailable_panel(ax, why: str) -> None:
    ax.text(0.5, 0.5, visible(why), ha="center", va="center", wrap=True, transform=ax.transAxes)
    ax.set_axis_off()


def grouped_bars(ax, names: list[str], series: dict[str, list[Estimate]], ticks: list[str] | None = None) -> None:
    """Bars per name (x) for each series (side by side), with CI error bars."""
    x, width = np.arange(len(names)), 0.8 / max(len(series), 1)
    for i, (series_label, ests) in enumerate(series.items()):
        val, err = errors(ests)
        ax.bar(x + (i - (len(series) - 1) / 2) * width, val, width=width * 0.95, yerr=err, capsize=3,
               label=series_label)
    ax.set_xticks(x, ticks or [visible(n) for n in names])


def legend_below(fig, ax) -> None:
    handles, labels = ax.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(2, len(labels)), fontsize=9,
                   bbox_to_anchor=(0.5, -0.02 - 0.05 * ((len(labels) + 1) // 2)))
