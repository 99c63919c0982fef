"""`specdyn report`: per-domain acceptance statistics, predictors and claim checks for one run.

Layers: :mod:`specdyn.rundir.reader` (run folder -> numpy columns), :mod:`stats` (per-prompt sums,
correlations, logistic fits; estimates and resampling from :mod:`specdyn.stats`),
:mod:`metrics` (every number), :mod:`claims` (the reference study's claims), :mod:`plots` and
:mod:`render` (Markdown + self-contained HTML). :func:`build_report` runs them all.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from specdyn.files import write_atomic
from specdyn.errors import SpecdynError
from specdyn.report.claims import Claim, Verdict, evaluate_claims
from specdyn.rundir.reader import RunData, load_run
from specdyn.report.metrics import compute
from specdyn.report.render import PROMPT_SAMPLES, build_document, to_html, to_markdown
from specdyn.stats import DEFAULT_RESAMPLES

__all__ = ["ReportResult", "build_report", "Claim", "Verdict"]

MIN_BOOTSTRAP = 50
RECOMMENDED_BOOTSTRAP = 1000


@dataclass
class ReportResult:
    """What :func:`build_report` wrote, and the metrics dict that metrics.json holds."""

    html: Path
    markdown: Path
    metrics_json: Path
    plots_dir: Path
    metrics: dict
    claims: list[Claim]


def build_report(run_dir: str | Path, out_dir: str | Path | None = None, *,
                 n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> ReportResult:
    """Read ``run_dir`` and write report.html, report.md (+ plots/*.png) and metrics.json to
    ``out_dir`` (default: the run folder). Raises SpecdynError on unusable input."""
    if seed < 0:
        raise SpecdynError(f"--seed must be >= 0 (got {seed})")
    if n_boot < MIN_BOOTSTRAP:
        raise SpecdynError(f"--bootstrap must be at least {MIN_BOOTSTRAP} (got {n_boot})")
    run = load_run(run_dir)
    computed = compute(run, n_boot=n_boot, seed=seed)
    if n_boot < RECOMMENDED_BOOTSTRAP:
        computed.metrics["notes"].append(f"Only {n_boot} bootstrap resamples (at least "
                                         f"{RECOMMENDED_BOOTSTRAP} are recommended): CI ends are rough.")
    claims = evaluate_claims(computed, run.domains)
    metrics = computed.metrics
    metrics["generated"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
    metrics["claims"] = [c.to_dict() for c in claims]
    out = Path(out_dir) if out_dir is not None else Path(run_dir)
    plots_dir = out / "plots"
    try:
        plots_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecdynError(f"cannot create output folder {plots_dir}: {exc.strerror or exc}") from None
    from specdyn.report.plots import FIGURES  # matplotlib is imported only when drawing

    figures = {name: draw(metrics) for name, draw in FIGURES.items()}
    blocks = build_document(metrics, claims, _prompt_samples(run), figures)
    paths = ReportResult(out / "report.html", out / "report.md", out / "metrics.json", plots_dir,
                         metrics, claims)
    for name, png in figures.items():
        _write(plots_dir / f"{name}.png", png)
    _write(paths.markdown, to_markdown(blocks, "plots").encode("utf-8"))
    _write(paths.html, to_html(blocks).encode("utf-8"))
    _write(paths.metrics_json, json.dumps(_finite(metrics), indent=2, allow_nan=False).encode("utf-8"))
    return paths


def _prompt_samples(run: RunData) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {d: [] for d in run.domains}
    for pid, dom, text in zip(run.prompts.ids, run.prompts.domain, run.prompts.text):
        rows = out[run.domains[dom]]
        if len(rows) < PROMPT_SAMPLES:
            rows.append((pid, text))
    return out


def _finite(obj):
    """Replace NaN / infinity by None so metrics.json is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalar
        return _finite(obj.item())
    return obj


def _write(path: Path, data: bytes) -> None:
    write_atomic(path, lambda p: p.write_bytes(data))
