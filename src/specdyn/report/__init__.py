"""`specdyn report`: per-domain acceptance statistics, analyses and the reference study's claims for one run.

Layers (docs/report.md, "Modules"): :mod:`specdyn.rundir.reader` (run folder -> numpy columns);
:mod:`prepare` (shared arrays) and :mod:`stats` (per-prompt sums and their bootstrap); the numbers:
:mod:`acceptance`, :mod:`entropy`, :mod:`analyses`, :mod:`breakdowns`, :mod:`predictors`, gathered by
:mod:`compute` into the typed :class:`~specdyn.report.schema.Metrics`; the statistics core :mod:`levels`,
:mod:`ceilings`, :mod:`factors`, :mod:`fits`, :mod:`verdicts`; the claims :mod:`claims`; output
:mod:`figures` / :mod:`analysis_figures` (on :mod:`plots`), :mod:`document` / :mod:`sections` (on
:mod:`render`). :func:`build_report` runs them all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from specdyn.errors import SpecdynError
from specdyn.files import write_atomic
from specdyn.report.claims import evaluate_claims
from specdyn.report.compute import compute
from specdyn.report.document import PROMPT_SAMPLES, build_document
from specdyn.report.render import to_html, to_markdown
from specdyn.report.schema import Metrics, to_json
from specdyn.report.verdicts import ClaimResult, Verdict
from specdyn.rundir.reader import RunData, load_run, read_suite
from specdyn.stats import DEFAULT_RESAMPLES

__all__ = ["ReportResult", "build_report", "write_report", "ClaimResult", "Metrics", "Verdict"]

MIN_BOOTSTRAP = 50
RECOMMENDED_BOOTSTRAP = 1000


@dataclass
class ReportResult:
    """What :func:`build_report` wrote: paths, the typed ``metrics`` (claims included) and ``data``, the
    exact JSON object written to metrics.json."""

    html: Path
    markdown: Path
    metrics_json: Path
    plots_dir: Path
    metrics: Metrics
    data: dict

    @property
    def claims(self) -> list[ClaimResult]:
        return self.metrics.claims


def build_report(run_dir: str | Path, out_dir: str | Path | None = None, *,
                 n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> ReportResult:
    """Read ``run_dir`` and write report.html, report.md (+ plots/*.png) and metrics.json to
    ``out_dir`` (default: the run folder). Raises SpecdynError on unusable input."""
    _check_options(n_boot, seed)
    run = load_run(run_dir)
    return write_report(run, Path(out_dir) if out_dir is not None else Path(run_dir), n_boot=n_boot, seed=seed)


def _check_options(n_boot: int, seed: int) -> None:
    if seed < 0:
        raise SpecdynError(f"--seed must be >= 0 (got {seed})")
    if n_boot < MIN_BOOTSTRAP:
        raise SpecdynError(f"--bootstrap must be at least {MIN_BOOTSTRAP} (got {n_boot})")


def _suite(run: RunData):
    """The run's suite for the prompts' categories; None (with a note) when it cannot be read."""
    if run.run_dir is None:
        return None
    try:
        return read_suite(run.run_dir)
    except SpecdynError as exc:
        run.notes.append(f"suite.jsonl is unreadable ({exc}): no per-category breakdown.")
        return None


def write_report(run: RunData, out: Path, *, n_boot: int = DEFAULT_RESAMPLES, seed: int = 0) -> ReportResult:
    """The report of an already loaded run, written to ``out``."""
    _check_options(n_boot, seed)
    computed = compute(run, n_boot=n_boot, seed=seed, suite=_suite(run))
    metrics = computed.metrics
    if n_boot < RECOMMENDED_BOOTSTRAP:
        metrics.notes.append(f"Only {n_boot} bootstrap resamples (at least {RECOMMENDED_BOOTSTRAP} are "
                             "recommended): CI ends are rough.")
    metrics.claims = evaluate_claims(computed)
    metrics.generated = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result = ReportResult(out / "report.html", out / "report.md", out / "metrics.json", out / "plots", metrics,
                          to_json(metrics))
    _write_outputs(result, run)
    return result


def _write_outputs(result: ReportResult, run: RunData) -> None:
    """Draw the figures, then write them, report.md, report.html and metrics.json."""
    try:
        result.plots_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecdynError(f"cannot create output folder {result.plots_dir}: {exc.strerror or exc}") from None
    from specdyn.report.figures import FIGURES  # matplotlib is imported only when drawing

    figures = {name: draw(result.metrics) for name, draw in FIGURES.items()}
    blocks = build_document(result.metrics, _prompt_samples(run), figures)
    for name, image in figures.items():
        _write(result.plots_dir / f"{name}.png", image)
    _write(result.markdown, to_markdown(blocks, "plots").encode("utf-8"))
    _write(result.html, to_html(blocks).encode("utf-8"))
    _write(result.metrics_json, json.dumps(result.data, indent=2, allow_nan=False).encode("utf-8"))


def _prompt_samples(run: RunData) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {d: [] for d in run.domains}
    for pid, dom, text in zip(run.prompts.ids, run.prompts.domain, run.prompts.text):
        rows = out[run.domains[dom]]
        if len(rows) < PROMPT_SAMPLES:
            rows.append((pid, text))
    return out


def _write(path: Path, data: bytes) -> None:
    write_atomic(path, lambda p: p.write_bytes(data))
