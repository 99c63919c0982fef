"""`specdyn report`: recovery of known synthetic truths, ceilings, the reviewer analyses (with and without
the newer record fields), claim verdicts that flip with the truth, primary results, not-comparable pairs,
escaping, bad inputs."""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import optimize, stats

from specdyn.cli import main
from specdyn.config import RunConfig
from specdyn.errors import SpecdynError
from specdyn.report import build_report, write_report
from specdyn.report.claims import evaluate_claims
from specdyn.report.compute import compute
from specdyn.report.document import build_document
from specdyn.report.figures import FIGURES
from specdyn.report.notions import Entropy, Measure, Notion
from specdyn.report.render import to_markdown
from specdyn.report.runinfo import sampling_of
from specdyn.report.stats import pearson_from_sums, resample_group, SumsLayout
from specdyn.report.verdicts import Verdict
from specdyn.rundir.manifest import RunManifest, RunStatus
from specdyn.rundir.reader import load_run, read_suite, run_from_tables
from specdyn.sampling_spec import Children
from specdyn.stats import Estimate, percentile_ci, resample_counts
from synthetic import DomainSpec, SyntheticSpec, calibration_truth, simulate, true_values, write_run

COMPLETE = RunManifest(RunStatus.COMPLETE)
STUDY_PAIR = ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "meta-llama/Llama-2-7b-chat-hf")
DOCS = Path(__file__).resolve().parents[1] / "docs" / "report.md"


def in_memory(spec: SyntheticSpec, pair: tuple[str, str] | None = None):
    nodes, steps, prompts = simulate(spec)
    config = RunConfig(**dict(zip(("draft", "target"), pair))) if pair else RunConfig()
    return run_from_tables(RunManifest(RunStatus.COMPLETE, config), [prompts], [nodes], [steps])


def claims_of(spec: SyntheticSpec, n_boot: int = 400, pair=None):
    return evaluate_claims(compute(in_memory(spec, pair), n_boot=n_boot, seed=3), permutations=499)


def pick(claims, claim_id, measure: str | None = None):
    """The primary result of a claim, or its result on ``measure``."""
    for c in claims:
        if c.claim == claim_id and (c.primary if measure is None else c.measure == measure):
            return c
    raise KeyError((claim_id, measure))


def covers(est, truth) -> bool:
    return est["ci_low"] <= truth <= est["ci_high"]


# ----------------------------------------------------------------------------------------------------
# Recovery of the synthetic truth


@pytest.fixture(scope="module")
def recovery(tmp_path_factory):
    spec = SyntheticSpec(domains=[
        DomainSpec("code", prompts=50, easy_share=0.35, depth_slope=-0.8),
        DomainSpec("math", prompts=50, easy_share=0.45, entropy_hard=3.5),
        DomainSpec("logic", prompts=50, easy_share=0.5, depth_slope=0.3),
        DomainSpec("chat", prompts=50, easy_share=0.65, entropy_easy=1.5,
                   text="<script>alert('x')</script> & <b>bold</b>"),
    ], seed=11)
    run_dir = write_run(spec, tmp_path_factory.mktemp("recovery") / "run")
    result = build_report(run_dir, n_boot=1000, seed=5)
    return spec, result


def _checks(spec, data):
    """(name, truth, estimate dict with ci_low/ci_high) for every recoverable statistic."""
    out = []
    for d in spec.domains:
        truth, got = true_values(spec, d), data["domains"][d.name]
        for key in ("acceptance_level", "acceptance_local", "acceptance_path", "accept_prob", "accepted_per_step"):
            out.append((f"{d.name}.{key}", truth[key], got[key]))
        for notion in Notion:
            out.append((f"{d.name}.pearson.{notion.value}", truth[f"pearson_draft_entropy_{notion.value}"],
                        got["correlations"]["pearson"]["draft_entropy"][notion.value]))
        for key in ("acceptance_level_by_depth", "depth_profile", "depth_profile_path", "rank_acceptance_vector"):
            for level, value in truth[key].items():
                out.append((f"{d.name}.{key}.{level}", value, got[key][str(level)]))
        for src in ("draft_entropy", "target_entropy"):
            out.append((f"{d.name}.{src}", truth[f"{src}_mean"], got[src]["mean"]))
    return out


def test_report_recovers_known_truths_inside_cis(recovery):
    spec, result = recovery
    checks = _checks(spec, result.data)
    misses = [name for name, truth, est in checks if not covers(est, truth)]
    # 95% intervals: some misses are expected; far more than a binomial(5%) count means broken CIs.
    allowed = stats.binom.ppf(0.999, len(checks), 0.05)
    assert len(misses) <= allowed, misses
    for name, truth, est in checks:  # no estimate is far outside its interval (bias, wrong formula)
        half = (est["ci_high"] - est["ci_low"]) / 2
        assert abs(est["value"] - truth) <= 2.5 * half, (name, truth, est)


def test_report_recovers_depth_effect_and_sibling_exclusivity(recovery):
    _, result = recovery
    code = result.data["domains"]["code"]["depth_profile"]
    assert code["1"]["ci_low"] > code["3"]["ci_high"]  # true slope -0.8 per level
    logic = result.data["domains"]["logic"]["depth_profile"]
    assert logic["3"]["ci_low"] > logic["1"]["ci_high"] - 0.02  # true slope +0.3: not decreasing
    for group in result.data["domains"].values():  # branch 2: local rate can't exceed 0.5
        assert group["acceptance_local"]["value"] <= 0.5
        assert group["ceilings"]["acceptance_local"]["cap"] == pytest.approx(0.5)
        assert group["ceilings"]["accepted_per_step"]["cap"] == pytest.approx(3.0)
        assert group["accepted_per_step_with_bonus"]["value"] == pytest.approx(
            group["accepted_per_step"]["value"] + 1)


def test_counts_claims_and_primaries(recovery):
    spec, result = recovery
    m = result.data
    for d in spec.domains:
        g = m["domains"][d.name]
        assert g["prompts"] == d.prompts and g["nodes"] == 14 * g["steps"]
        assert set(g["acceptance_level"]) == {"value", "ci_low", "ci_high"}
        assert set(g["acceptance_level_by_depth"]) == {"1", "2", "3"}
        assert g["acceptance_level_by_depth"]["1"]["trials"] == g["steps"]  # every step tests the root
        assert set(g["pearson_draft_entropy_accepted_local"]) == {"value", "ci_low", "ci_high"}
    assert m["overall"]["nodes"] == sum(g["nodes"] for g in m["domains"].values())
    primaries = Counter(c["id"] for c in m["claims"] if c["primary"])
    assert primaries == {"a": 1, "b": 1, "c": 1, "d": 1}, primaries
    assert pick(result.claims, "b").measure == "acceptance_level" and pick(result.claims, "d").primary
    on_disk = json.loads(result.metrics_json.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert on_disk == json.loads(json.dumps(m))


def _keys(obj, names: set[str]) -> set[str]:
    """Every key of every object in metrics.json, except names that come from the data (domains, sources,
    categories, depth / rank levels, claim values' labels)."""
    if isinstance(obj, list):
        return set().union(*(_keys(v, names) for v in obj)) if obj else set()
    if not isinstance(obj, dict):
        return set()
    found = set()
    for key, value in obj.items():
        if key == "values":  # a claim's evidence: documented as a whole
            continue
        if key not in names and not re.fullmatch(r"\d+\+?", key):
            found.add(key)
        found |= _keys(value, names)
    return found


def test_every_metrics_key_is_documented(recovery):
    _, result = recovery
    documented = set(re.findall(r"`([A-Za-z0-9_+]+)`", DOCS.read_text()))
    data = result.data
    names = set(data["domains"]) | set(data["breakdowns"]["source"]["groups"])
    keys = _keys(data, names)
    assert {"acceptance_level", "ceilings", "trial_correlations", "calibration", "breakdowns"} <= keys
    assert not keys - documented, sorted(keys - documented)


def test_html_is_self_contained_and_escapes_prompt_text(recovery):
    _, result = recovery
    page = result.html.read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert page.count("data:image/png;base64,") == len(FIGURES)
    assert "http" not in re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", page)  # (base64 may spell it)
    md = result.markdown.read_text()
    assert "<script" not in md and "&lt;script&gt;" in md
    linked = re.findall(r"\(plots/(\w+)\.png\)", md)
    assert sorted(linked) == sorted(FIGURES) and all((result.plots_dir / f"{n}.png").is_file() for n in linked)


# ----------------------------------------------------------------------------------------------------
# CI calibration under prompt-level clustering


def test_prompt_bootstrap_covers_truth_when_nodes_are_clustered():
    """With a strong prompt effect, the prompt bootstrap keeps ~95% coverage; a node-level binomial
    interval (treating nodes as independent) does not."""
    keys = (Measure.LEVEL, Measure.LOCAL, Measure.PER_STEP)
    hits = Counter()
    reps = 40
    for rep in range(reps):
        spec = SyntheticSpec(domains=[DomainSpec("x", prompts=30, min_steps=10, max_steps=30, easy_share=0.4,
                                                 easy_logit=3.0, hard_logit=-3.0, concentration=2.0)],
                             later_rank_share=0.1, seed=100 + rep)
        truth = true_values(spec, spec.domains[0])
        g = compute(in_memory(spec), n_boot=250, seed=rep).metrics.domains["x"].acceptance
        for key in keys:
            est = g.rate(key)
            hits[key] += est.ci_low <= truth[key.value] <= est.ci_high
        p, n = g.acceptance_local.value, g.nodes
        half = 1.96 * np.sqrt(p * (1 - p) / n)
        hits["naive"] += p - half <= truth["acceptance_local"] <= p + half
    assert all(hits[k] >= 0.85 * reps for k in keys), hits
    assert hits["naive"] <= 0.6 * reps, hits


# ----------------------------------------------------------------------------------------------------
# Ceilings


def test_ceilings_are_flagged_at_the_cap_and_only_there():
    """A target that always takes the draft's first choice sits at every cap of a depth-3 binary tree."""
    spec = SyntheticSpec(domains=[DomainSpec("capped", prompts=12, easy_share=1.0, easy_logit=30.0),
                                  DomainSpec("free", prompts=12)], seed=21)
    domains = compute(in_memory(spec), n_boot=200).metrics.domains
    capped, free = domains["capped"].acceptance, domains["free"].acceptance
    assert capped.acceptance_local.value == pytest.approx(0.5) and capped.accepted_per_step.value == pytest.approx(3)
    for measure in (Measure.LOCAL, Measure.PATH, Measure.PER_STEP, Measure.PER_STEP_BONUS, Measure.LEVEL):
        assert capped.ceilings[measure].at_ceiling, measure
        assert not free.ceilings[measure].at_ceiling, measure
    assert capped.ceilings[Measure.PATH].cap == pytest.approx(3 / 14)
    assert all(c.at_ceiling for c in capped.depth_ceilings[Measure.LOCAL].values())
    assert [c.cap for c in capped.depth_ceilings[Measure.PATH].values()] == pytest.approx([0.5, 0.25, 0.125])
    text = to_markdown(build_document(compute(in_memory(spec), n_boot=200).metrics, {}, _blank_figures()))
    assert "(at cap 0.5)" in text and "(at cap 3)" in text


def _blank_figures() -> dict[str, bytes]:
    return {name: b"" for name in FIGURES}


# ----------------------------------------------------------------------------------------------------
# Analyses with the newer fields (draft_target_tv, output_pos), and without them


@pytest.fixture(scope="module")
def analysed():
    """No prompt effect (concentration inf) and no depth effect: α is the same at every output position,
    and every trial in a TV bin below 0.4 is at an easy position."""
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=40, easy_share=0.4),
                                  DomainSpec("chat", prompts=40, easy_share=0.7)], seed=31)
    return spec, compute(in_memory(spec), n_boot=400, seed=2).metrics


def _binned_checks(spec, metrics) -> list[tuple[str, float, Estimate]]:
    out = []
    for d in spec.domains:
        truth, got = true_values(spec, d), metrics.domains[d.name].analyses
        for b in got.draft_target_tv.bins:
            side = "easy" if b.high <= 0.4 else "hard"
            out.append((f"{d.name}.tv.{b.low:.1f}", truth["level_success"][side], b.rates[Measure.LEVEL]))
        for b in got.output_position.bins:
            out.append((f"{d.name}.pos.{b.low:g}", truth["acceptance_level"], b.rates[Measure.LEVEL]))
        for b in got.calibration.bins:
            out.append((f"{d.name}.calib.{b.low:.1f}", calibration_truth(truth["acceptance_local"], b.low, b.high),
                        b.rates[Measure.LOCAL]))
    return out


def test_binned_analyses_recover_their_truths(analysed):
    spec, metrics = analysed
    checks = _binned_checks(spec, metrics)
    assert len(checks) >= 40
    misses = [name for name, truth, est in checks if not est.ci_low <= truth <= est.ci_high]
    assert len(misses) <= stats.binom.ppf(0.999, len(checks), 0.05), misses
    tv = metrics.domains["chat"].analyses.draft_target_tv
    assert tv.unavailable is None and tv.unit == "trials" and sum(b.count for b in tv.bins) == \
        metrics.domains["chat"].acceptance.trials


def test_missing_fields_make_their_analyses_unavailable(tmp_path):
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=8), DomainSpec("chat", prompts=8)], seed=32,
                         new_fields=False)
    run = in_memory(spec)
    assert run.missing_fields == ["draft_target_tv", "output_pos", "draft_passes"]
    result = write_report(run, tmp_path, n_boot=100)
    analyses = result.metrics.overall.analyses
    assert analyses.output_position.unavailable == \
        "unavailable for this run (recorded before field `output_pos` existed)"
    assert "`draft_target_tv`" in analyses.draft_target_tv.unavailable and not analyses.draft_target_tv.bins
    assert analyses.calibration.unavailable is None and analyses.calibration.bins
    md = result.markdown.read_text()
    assert "recorded before field \\`output_pos\\` existed" in md
    assert result.data["run"]["missing_fields"] == ["draft_target_tv", "output_pos", "draft_passes"]
    assert (result.plots_dir / "output_position.png").is_file()  # drawn, saying why it is empty


def test_older_run_folders_without_the_columns_still_report(small_run, tmp_path):
    for table, column in (("nodes", "draft_target_tv"), ("steps", "output_pos"), ("nodes", "verify_prob"),
                          ("nodes", "draft_prob")):
        for shard in (small_run / table).iterdir():
            data = pq.read_table(shard)
            if column in data.column_names:
                pq.write_table(data.drop_columns([column]), shard)
    result = build_report(small_run, tmp_path / "out", n_boot=50)
    assert set(result.metrics.run.missing_fields) == {"draft_prob", "verify_prob", "draft_target_tv", "output_pos"}
    assert "`draft_prob`" in result.metrics.overall.analyses.calibration.unavailable


def test_lookup_like_drafters_have_no_calibration_or_distance():
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=6)], seed=33)
    nodes, steps, prompts = simulate(spec)
    nodes = nodes.set_column(nodes.schema.get_field_index("draft_prob"), "draft_prob",
                             pa.array(np.ones(nodes.num_rows), pa.float32()))
    nodes = nodes.set_column(nodes.schema.get_field_index("draft_target_tv"), "draft_target_tv",
                             pa.array(np.full(nodes.num_rows, np.nan), pa.float32()))
    run = run_from_tables(COMPLETE, [prompts], [nodes], [steps])
    analyses = compute(run, n_boot=60).metrics.overall.analyses
    assert "no draft distribution" in analyses.calibration.unavailable
    assert "no draft distribution" in analyses.draft_target_tv.unavailable
    assert analyses.output_position.unavailable is None


# ----------------------------------------------------------------------------------------------------
# Decompositions and weightings, checked against direct computations


def test_within_between_and_rank_correlations_match_direct_computation(analysed):
    spec, _ = analysed
    spec = replace(spec, domains=[replace(d, prompts=10, concentration=3.0) for d in spec.domains])
    run = in_memory(spec)
    metrics = compute(run, n_boot=60).metrics
    from specdyn.report.prepare import prepare

    prep = prepare(run)
    chat = run.domains.index("chat")
    trials = prep.run.prompts.domain[prep.trials.prompt] == chat
    x, y = prep.trial_x(run.nodes.draft_entropy)[trials], prep.trials.success[trials] * 1.0
    p = prep.trials.prompt[trials]
    mean_x = np.bincount(p, x) / np.maximum(np.bincount(p), 1)
    mean_y = np.bincount(p, y) / np.maximum(np.bincount(p), 1)
    parts = metrics.domains["chat"].entropy.trial_correlations[Entropy.DRAFT]
    assert parts.total.value == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-10)
    assert parts.within_prompt.value == pytest.approx(np.corrcoef(x - mean_x[p], y - mean_y[p])[0, 1], abs=1e-10)
    assert parts.between_prompt.value == pytest.approx(np.corrcoef(mean_x[p], mean_y[p])[0, 1], abs=1e-10)
    nodes = (prep.node_domain == chat) & prep.reached & (run.nodes.rank == 1)
    r = np.corrcoef(run.nodes.draft_entropy[nodes], run.nodes.accepted_local[nodes])[0, 1]
    assert metrics.domains["chat"].entropy.rank_correlations["1"].value == pytest.approx(r, abs=1e-10)


def test_prompt_weighted_rates_average_the_prompts_own_rates(analysed):
    spec, metrics = analysed
    run = in_memory(spec)
    code = np.flatnonzero(run.prompts.domain == run.domains.index("code"))
    local = [run.nodes.accepted_local[run.nodes.prompt == i].mean() for i in code]
    per_step = [run.steps.accepted[run.steps.prompt == i].mean() for i in code]
    weighting = metrics.domains["code"].acceptance.prompt_weighted
    assert weighting[Measure.LOCAL].prompt_weighted.value == pytest.approx(np.mean(local))
    assert weighting[Measure.PER_STEP].prompt_weighted.value == pytest.approx(np.mean(per_step))
    assert weighting[Measure.LOCAL].pooled == metrics.domains["code"].acceptance.acceptance_local
    w = weighting[Measure.LEVEL]
    assert w.difference.value == pytest.approx(w.prompt_weighted.value - w.pooled.value)


def test_breakdowns_per_source_and_category(tmp_path):
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=10), DomainSpec("chat", prompts=12)], seed=34)
    run_dir = write_run(spec, tmp_path / "run")

    def breakdowns():
        return compute(load_run(run_dir), n_boot=100, suite=read_suite(run_dir)).metrics.breakdowns

    without = breakdowns()
    assert list(without.source.groups) == ["synthetic"] and without.source.groups["synthetic"].prompts == 22
    assert "no readable suite.jsonl" in without.category.unavailable
    suite = [{"id": f"chat-{i:05d}", "domain": "chat", "source": "MT-Bench",
              "messages": [{"role": "user", "content": "hi"}],
              "metadata": {"category": "writing" if i % 2 else "roleplay"}} for i in range(12)]
    (run_dir / "suite.jsonl").write_text("".join(json.dumps(r) + "\n" for r in suite))
    cats = breakdowns().category
    assert cats.unavailable is None and sorted(cats.groups) == ["roleplay", "writing"]
    assert all(r.prompts == 6 and r.domains == ["chat"] for r in cats.groups.values())
    alpha = true_values(spec, spec.domains[1])["acceptance_level"]
    assert all(r.acceptance_level.ci_low <= alpha <= r.acceptance_level.ci_high for r in cats.groups.values())
    (run_dir / "suite.jsonl").write_text("{broken\n")
    broken = build_report(run_dir, tmp_path / "c", n_boot=60)
    assert any("suite.jsonl is unreadable" in n for n in broken.metrics.notes)
    assert "no readable suite.jsonl" in broken.metrics.breakdowns.category.unavailable


# ----------------------------------------------------------------------------------------------------
# Sampled runs


@dataclass(frozen=True)
class SampledConfig(RunConfig):
    """A config as the sampling-aware RunConfig records it (temperature, top_p, children)."""

    temperature: float = 0.7
    top_p: float = 0.9
    children: str = "sampled"


def test_sampling_setting_comes_from_the_manifest():
    greedy, children = sampling_of(RunManifest(RunStatus.COMPLETE, RunConfig()))
    assert greedy.greedy and children is Children.TOPK
    assert sampling_of(COMPLETE)[0].greedy  # a manifest without config: greedy
    sampled, children = sampling_of(RunManifest(RunStatus.COMPLETE, SampledConfig()))
    assert (sampled.temperature, sampled.top_p, children) == (0.7, 0.9, Children.SAMPLED)


def test_sampled_runs_are_not_described_as_greedy():
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=6), DomainSpec("chat", prompts=6)], seed=35)
    nodes, steps, prompts = simulate(spec)
    run = run_from_tables(RunManifest(RunStatus.COMPLETE, SampledConfig()), [prompts], [nodes], [steps])
    metrics = compute(run, n_boot=60).metrics
    assert metrics.run.sampled and metrics.run.temperature == 0.7
    text = to_markdown(build_document(metrics, {}, _blank_figures()))
    assert "temperature 0.7, top-p 0.9, children sampled" in text
    assert "greedy" not in text.lower()
    greedy = to_markdown(build_document(compute(in_memory(spec), n_boot=60).metrics, {}, _blank_figures()))
    assert "greedy (temperature 0)" in greedy


# ----------------------------------------------------------------------------------------------------
# Claim verdicts flip with the synthetic truth


def test_claim_a_flips_between_domain_and_depth():
    by_domain = SyntheticSpec(domains=[DomainSpec(n, prompts=25, easy_share=s)
                                       for n, s in (("code", 0.1), ("math", 0.5), ("chat", 0.9))], seed=1)
    by_depth = SyntheticSpec(domains=[DomainSpec(n, prompts=25, easy_share=0.5, depth_slope=-1.5)
                                      for n in ("code", "math", "chat")], seed=2)
    assert pick(claims_of(by_domain), "a").verdict is Verdict.HOLDS
    assert pick(claims_of(by_depth), "a").verdict is Verdict.DOES_NOT_HOLD


def _length_spec(math_share: float, seed: int) -> SyntheticSpec:
    low = dict(prompts=30, easy_logit=1.0, hard_logit=-2.5)
    return SyntheticSpec(domains=[DomainSpec("code", easy_share=0.1, **low),
                                  DomainSpec("math", easy_share=math_share, **low),
                                  DomainSpec("chat", prompts=30, easy_share=0.9, easy_logit=3.0)],
                         later_rank_share=0.1, seed=seed)


def test_claim_b_flips_when_another_domain_exceeds_one_token():
    holds, fails = _length_spec(0.1, 4), _length_spec(0.95, 5)

    def truth(spec, key):
        return {d.name: true_values(spec, d)[key] for d in spec.domains}

    assert truth(holds, "accepted_per_step")["chat"] > 1.3 and max(truth(holds, "accepted_per_step")["code"],
                                                                    truth(holds, "accepted_per_step")["math"]) < 0.7
    assert truth(fails, "accepted_per_step")["math"] > 1.3
    literal = Measure.PER_STEP.value
    assert pick(claims_of(holds, pair=STUDY_PAIR), "b", literal).verdict is Verdict.HOLDS
    assert pick(claims_of(fails, pair=STUDY_PAIR), "b", literal).verdict is Verdict.DOES_NOT_HOLD
    other_pair = [c for c in claims_of(fails) if c.claim == "b" and not c.primary and c.text.startswith("Only")][0]
    assert other_pair.verdict is Verdict.NOT_COMPARABLE and other_pair.values["computed_verdict"] == "does not hold"
    # the primary form: chat has the highest α (true α: chat .93; math .72 where it exceeds 1.0 token)
    assert truth(fails, "acceptance_level")["chat"] > truth(fails, "acceptance_level")["math"] + 0.1
    assert pick(claims_of(fails), "b").verdict is Verdict.HOLDS


def _rho_domain(name: str, rho: float, share: float) -> DomainSpec:
    """A domain whose true draft-entropy vs accepted_local Pearson r equals ``rho``."""
    base = SyntheticSpec(domains=[], later_rank_share=0.2)

    def gap(hard):
        d = DomainSpec(name, easy_share=share, easy_logit=2.0, hard_logit=-2.0, entropy_hard=hard)
        return true_values(base, d)["pearson_draft_entropy_accepted_local"] - rho

    hard = optimize.brentq(gap, 1.01, 20.0)
    return DomainSpec(name, prompts=60, min_steps=30, max_steps=40, easy_share=share, easy_logit=2.0,
                      hard_logit=-2.0, entropy_hard=hard)


def test_claim_c_literal_flips_with_the_true_correlation_on_the_study_pair():
    inside = SyntheticSpec(domains=[_rho_domain("code", -0.175, 0.4), _rho_domain("chat", -0.175, 0.6)],
                           later_rank_share=0.2, seed=6)
    outside = SyntheticSpec(domains=[_rho_domain("code", -0.175, 0.4), _rho_domain("chat", -0.30, 0.6)],
                            later_rank_share=0.2, seed=7)
    literal = "node-level Pearson(draft_entropy, accepted_local)"
    claim = [c for c in claims_of(inside, pair=STUDY_PAIR) if c.claim == "c" and c.text.startswith("The entropy")][0]
    assert claim.verdict is Verdict.HOLDS and claim.measure == literal, claim.summary
    assert [c for c in claims_of(outside, pair=STUDY_PAIR) if c.claim == "c" and c.text.startswith("The entropy")][
        0].verdict is Verdict.DOES_NOT_HOLD
    few = SyntheticSpec(domains=[DomainSpec(**{**vars(d), "prompts": 5, "min_steps": 5, "max_steps": 10})
                                 for d in inside.domains], later_rank_share=0.2, seed=8)
    claim = [c for c in claims_of(few, pair=STUDY_PAIR) if c.claim == "c" and c.text.startswith("The entropy")][0]
    assert claim.verdict is Verdict.INCONCLUSIVE, claim.summary  # too few prompts: CIs straddle the interval


def test_claim_c_primary_is_weak_negative_in_every_domain():
    def spec(chat_hard, seed):
        return SyntheticSpec(domains=[
            DomainSpec("code", prompts=40, easy_logit=2.0, hard_logit=-2.0, entropy_hard=1.3),
            DomainSpec("chat", prompts=40, easy_logit=2.0, hard_logit=-2.0, entropy_hard=chat_hard)],
            later_rank_share=0.2, seed=seed)
    weak, strong = pick(claims_of(spec(1.3, 12)), "c"), pick(claims_of(spec(5.0, 13)), "c")
    assert weak.verdict is Verdict.HOLDS and "trial-level" in weak.measure, weak.summary
    assert strong.verdict is Verdict.DOES_NOT_HOLD, strong.summary  # chat's r is near -0.6


def test_claim_d_flips_with_chat_entropy():
    def spec(chat_easy_entropy, seed):
        return SyntheticSpec(domains=[
            DomainSpec("code", prompts=30, easy_share=0.3),
            DomainSpec("logic", prompts=30, easy_share=0.4),
            DomainSpec("chat", prompts=30, easy_share=0.8, entropy_easy=chat_easy_entropy,
                       entropy_hard=chat_easy_entropy + 2.0)], seed=seed)
    high, low = claims_of(spec(2.5, 9)), claims_of(spec(0.5, 10))
    assert pick(high, "d").verdict is Verdict.HOLDS
    assert pick(low, "d").verdict is Verdict.DOES_NOT_HOLD
    assert pick(low, "d", "target_entropy mean, acceptance_level").verdict is Verdict.DOES_NOT_HOLD


def test_chat_claims_not_applicable_without_chat():
    spec = SyntheticSpec(domains=[DomainSpec("translation", prompts=10), DomainSpec("code", prompts=10)])
    claims = claims_of(spec, n_boot=100)
    for claim_id in ("b", "d"):
        claim = pick(claims, claim_id)
        assert claim.verdict is Verdict.NOT_APPLICABLE and "not applicable" in claim.summary
    assert pick(claims, "a").verdict is not Verdict.NOT_APPLICABLE


def test_literal_claims_are_comparable_only_on_the_study_pair():
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=10), DomainSpec("chat", prompts=10, easy_share=0.8)])
    for pair, comparable in ((None, False), (STUDY_PAIR, True), (("TinyLlama-1.1B", "Llama-2-13B-Chat"), False)):
        literal = [c for c in claims_of(spec, 100, pair) if c.claim in "bc" and c.text in
                   ("Only chat has an expected accepted length above 1.0 token per step.",
                    "The entropy-acceptance correlation lies in [-0.20, -0.15] in every domain.")]
        assert len(literal) == 2
        assert all((c.verdict is not Verdict.NOT_COMPARABLE) == comparable for c in literal), (pair, literal)
        assert all(not c.primary for c in literal)


# ----------------------------------------------------------------------------------------------------
# Statistics building blocks


def test_pearson_from_centered_sums_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.normal(5, 2, 1000)
    y = (rng.random(1000) < 0.3 + 0.05 * (x - 5)).astype(float)
    xc = x - x.mean()
    r = pearson_from_sums(len(x), xc.sum(), y.sum(), (xc**2).sum(), (y**2).sum(), (xc * y).sum())
    assert r == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-12)
    assert np.isnan(pearson_from_sums(3, 0.0, 1.0, 0.0, 1.0, 0.0))  # constant x: undefined


def test_spearman_matches_scipy(recovery):
    _, result = recovery
    run = load_run(Path(result.data["run"]["dir"]))
    mask = run.prompts.domain[run.nodes.prompt] == run.domains.index("math")
    expected = stats.spearmanr(run.nodes.draft_entropy[mask], run.nodes.accept_prob[mask]).statistic
    got = result.data["domains"]["math"]["correlations"]["spearman"]["draft_entropy"]["accept_prob"]["value"]
    assert got == pytest.approx(expected, abs=1e-9)


def test_bootstrap_sums_equal_explicit_resampling():
    rng = np.random.default_rng(1)
    per_prompt = rng.random((7, 3))
    layout = SumsLayout(7)
    layout.add("a", per_prompt)
    members = np.array([0, 2, 3, 6])
    group = resample_group(layout, layout.matrix(), members, 5, np.random.default_rng(42))
    counts = resample_counts(4, 5, np.random.default_rng(42))
    for b in range(5):
        explicit = sum(per_prompt[members[i]] * counts[b, i] for i in range(4))
        assert group.boot[b] == pytest.approx(explicit)
    assert counts.sum(axis=1).tolist() == [4] * 5


def test_descriptive_models_report_their_fit():
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=10), DomainSpec("chat", prompts=10)], seed=36)
    pred = compute(in_memory(spec), n_boot=60).metrics.predictors
    local = pred.models[Notion.LOCAL]
    assert local["null"].mcfadden_r2 == pytest.approx(0.0) and local["null"].parameters == 1
    assert all(f.converged and not f.rank_deficient for f in local.values())
    assert not any(local[m].separation for m in ("null", "domain", "depth", "rank", "domain+depth"))
    assert local["rank"].mcfadden_r2 > local["domain"].mcfadden_r2 >= 0  # rank 0 takes most acceptances
    assert local["all"].mcfadden_r2 >= max(f.mcfadden_r2 for f in local.values()) - 1e-12
    assert "claim (a)" in pred.summary


def test_percentile_ci_needs_defined_resamples():
    low, high = percentile_ci(np.array([np.nan] * 8 + [1.0, 2.0]))
    assert np.isnan(low) and np.isnan(high)
    low, high = percentile_ci(np.arange(1001.0))
    assert (low, high) == (pytest.approx(25.0), pytest.approx(975.0))
    assert Estimate(1.0, np.nan, np.nan).to_dict() == {"value": 1.0, "ci_low": None, "ci_high": None}


def test_row_order_does_not_matter():
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=12), DomainSpec("chat", prompts=12)], seed=3)
    nodes, steps, prompts = simulate(spec)
    perm = np.random.default_rng(0).permutation(nodes.num_rows)
    a = compute(run_from_tables(COMPLETE, [prompts], [nodes], [steps]), n_boot=60, seed=1).metrics
    b = compute(run_from_tables(COMPLETE, [prompts], [nodes.take(perm)], [steps]), n_boot=60, seed=1).metrics
    for get in (lambda m: m.domains["chat"].acceptance.rank_acceptance_vector,
                lambda m: m.domains["chat"].acceptance.acceptance_level_by_depth,
                lambda m: m.domains["chat"].acceptance.acceptance_path,
                lambda m: m.domains["chat"].analyses.draft_target_tv):
        assert get(a) == get(b)


# ----------------------------------------------------------------------------------------------------
# Bad input


@pytest.fixture
def small_run(tmp_path):
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=6, min_steps=3, max_steps=6),
                                  DomainSpec("chat", prompts=6, min_steps=3, max_steps=6)],
                         prompts_per_shard=4, seed=4)
    return write_run(spec, tmp_path / "run")


def _error(path) -> str:
    with pytest.raises(SpecdynError) as info:
        build_report(path, n_boot=50)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_not_a_run_folder(tmp_path):
    assert "no such directory" in _error(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    assert "not a directory" in _error(tmp_path / "file.txt")
    (tmp_path / "other").mkdir()
    assert "not a specdyn run folder" in _error(tmp_path / "other")
    (tmp_path / "other" / "manifest.json").write_text("{not json")
    assert "not valid JSON" in _error(tmp_path / "other")


def test_empty_run(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({"status": "complete"}))
    assert "no finished prompts" in _error(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"status": "running"}))
    assert "in progress" in _error(tmp_path)


def test_truncated_shard_is_named(small_run):
    shard = small_run / "nodes" / "shard-000001.parquet"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    message = _error(small_run)
    assert "nodes/shard-000001.parquet" in message and "truncated" in message


def test_shard_with_missing_column(small_run):
    shard = small_run / "steps" / "shard-000000.parquet"
    pq.write_table(pq.read_table(shard).drop_columns(["accepted"]), shard)
    assert "lacks column(s) accepted" in _error(small_run)


def test_null_values_are_rejected(small_run):
    shard = small_run / "nodes" / "shard-000000.parquet"
    table = pq.read_table(shard)
    depth = table.schema.get_field_index("depth")
    table = table.set_column(depth, "depth", pa.nulls(table.num_rows, pa.int32()))
    pq.write_table(table, shard)
    assert "missing (null) values in depth" in _error(small_run)


def test_in_progress_run_reports_finished_prompts(small_run, tmp_path):
    manifest = small_run / "manifest.json"
    manifest.write_text(json.dumps({"status": "running"}))  # nothing but the status
    (small_run / "prompts" / "shard-000002.parquet").unlink()  # last flush not finished
    result = build_report(small_run, tmp_path / "out", n_boot=50)
    m = result.data
    assert m["run"]["in_progress"] and m["run"]["status"] == "running"
    assert m["overall"]["prompts"] == 8  # shards 0 and 1, 4 prompts each
    assert any("in progress" in n for n in m["notes"])
    assert any("Ignored nodes/ shard(s) 2" in n for n in m["notes"])
    assert "not complete" in result.html.read_text()


def test_cli_report_and_error_exit(small_run, tmp_path, capsys):
    assert main(["report", str(small_run), "--out", str(tmp_path / "o"), "--bootstrap", "60"]) == 0
    out = capsys.readouterr().out
    assert "claim (b) [primary: acceptance_level]" in out and "per-level acceptance α" in out
    assert (tmp_path / "o" / "report.html").is_file()
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("specdyn: error: ")
