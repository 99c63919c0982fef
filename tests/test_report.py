"""`specdyn report`: recovery of known synthetic truths, claim verdict flips, escaping, bad inputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from scipy import optimize, stats

from specdyn.cli import main
from specdyn.errors import SpecdynError
from specdyn.report import build_report
from specdyn.report.claims import Verdict, evaluate_claims
from specdyn.report.metrics import compute
from specdyn.report.notions import Entropy, Notion
from specdyn.report.stats import fit_logistic, pearson_from_sums, resample_group, saturated_loglik, SumsLayout
from specdyn.rundir.manifest import RunManifest, RunStatus
from specdyn.rundir.reader import load_run, run_from_tables
from specdyn.stats import Estimate, percentile_ci, resample_counts
from synthetic import DomainSpec, SyntheticSpec, simulate, true_values, write_run

COMPLETE = RunManifest(RunStatus.COMPLETE)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "report.md"


def in_memory(spec: SyntheticSpec):
    nodes, steps, prompts = simulate(spec)
    return run_from_tables(COMPLETE, [prompts], [nodes], [steps])


def claims_of(spec: SyntheticSpec, n_boot: int = 400):
    run = in_memory(spec)
    return evaluate_claims(compute(run, n_boot=n_boot, seed=3), run.domains)


def pick(claims, claim_id, notion=Notion.LOCAL, entropy=Entropy.DRAFT):
    for c in claims:
        if c.id == claim_id and (claim_id == "b" or c.notion == notion.value) and (
                claim_id in ("a", "b") or c.entropy == entropy.value):
            return c
    raise KeyError(claim_id)


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


def _checks(spec, metrics):
    """(name, truth, estimate dict with ci_low/ci_high, point key) for every recoverable statistic."""
    out = []
    for d in spec.domains:
        truth, got = true_values(spec, d), metrics["domains"][d.name]
        for key in ("acceptance_local", "acceptance_path", "accept_prob", "accepted_per_step"):
            out.append((f"{d.name}.{key}", truth[key], got[key], "value"))
        for notion in Notion:
            out.append((f"{d.name}.pearson.{notion.value}", truth[f"pearson_draft_entropy_{notion.value}"],
                        got["correlations"]["pearson"]["draft_entropy"][notion.value], "r"))
        for key in ("depth_profile", "depth_profile_path", "rank_acceptance_vector"):
            for level, value in truth[key].items():
                out.append((f"{d.name}.{key}.{level}", value, got[key][str(level)], "value"))
        for src in ("draft_entropy", "target_entropy"):
            out.append((f"{d.name}.{src}", truth[f"{src}_mean"], got[src]["mean"], "value"))
    return out


def test_report_recovers_known_truths_inside_cis(recovery):
    spec, result = recovery
    checks = _checks(spec, result.metrics)
    misses = [name for name, truth, est, _ in checks if not est["ci_low"] <= truth <= est["ci_high"]]
    # 95% intervals: some misses are expected; far more than a binomial(5%) count means broken CIs.
    allowed = stats.binom.ppf(0.999, len(checks), 0.05)
    assert len(misses) <= allowed, misses
    for name, truth, est, key in checks:  # no estimate is far outside its interval (bias, wrong formula)
        half = (est["ci_high"] - est["ci_low"]) / 2
        assert abs(est[key] - truth) <= 2.5 * half, (name, truth, est)


def test_report_recovers_depth_effect_and_sibling_exclusivity(recovery):
    _, result = recovery
    code = result.metrics["domains"]["code"]["depth_profile"]
    assert code["1"]["ci_low"] > code["3"]["ci_high"]  # true slope -0.8 per level
    logic = result.metrics["domains"]["logic"]["depth_profile"]
    assert logic["3"]["ci_low"] > logic["1"]["ci_high"] - 0.02  # true slope +0.3: not decreasing
    for group in result.metrics["domains"].values():  # branch 2: local rate can't exceed 0.5
        assert group["acceptance_local"]["value"] <= 0.5
        assert group["accepted_per_step_with_bonus"]["value"] == pytest.approx(
            group["accepted_per_step"]["value"] + 1)


def test_counts_and_required_keys(recovery):
    spec, result = recovery
    m = result.metrics
    for d in spec.domains:
        g = m["domains"][d.name]
        assert g["prompts"] == d.prompts
        assert g["nodes"] == 14 * g["steps"]
        for key in ("nodes", "steps", "prompts", "accept_prob", "acceptance_local", "acceptance_path",
                    "accepted_per_step", "accepted_per_step_with_bonus", "depth_profile",
                    "pearson_draft_entropy_accepted_local"):
            assert key in g
        assert set(g["pearson_draft_entropy_accepted_local"]) == {"r", "ci_low", "ci_high"}
    assert m["overall"]["nodes"] == sum(g["nodes"] for g in m["domains"].values())
    assert len(m["claims"]) == 16 and {c["id"] for c in m["claims"]} == {"a", "b", "c", "d"}
    on_disk = json.loads(result.metrics_json.read_text(), parse_constant=lambda c: pytest.fail(c))
    assert on_disk["domains"]["chat"]["steps"] == m["domains"]["chat"]["steps"]


def test_every_metrics_key_is_documented(recovery):
    _, result = recovery
    documented = set(re.findall(r"`([A-Za-z0-9_+]+)`", DOCS.read_text()))
    m = result.metrics
    code, local = m["domains"]["code"], m["predictors"]["accepted_local"]
    keys = set(m) | set(m["run"]) | set(m["bootstrap"]) | set(code) | set(code["draft_entropy"])
    keys |= set(code["draft_entropy"]["quantiles"]) | set(code["entropy_bins"]["draft_entropy"][0])
    keys |= set(m["predictors"]) | set(local) | set(local["models"]) | set(local["lr_tests"][0])
    keys |= set(m["claims"][0])
    assert not keys - documented, sorted(keys - documented)


def test_html_is_self_contained_and_escapes_prompt_text(recovery):
    _, result = recovery
    page = result.html.read_text()
    assert "<script" not in page.lower()
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert page.count("data:image/png;base64,") == 5 and "http" not in page
    md = result.markdown.read_text()
    assert "<script" not in md and "&lt;script&gt;" in md
    assert all((result.plots_dir / f"{n}.png").is_file() for n in re.findall(r"\(plots/(\w+)\.png\)", md))


# ----------------------------------------------------------------------------------------------------
# CI calibration under prompt-level clustering


def test_prompt_bootstrap_covers_truth_when_nodes_are_clustered():
    """With a strong prompt effect, the prompt bootstrap keeps ~95% coverage; a node-level binomial
    interval (treating nodes as independent) does not."""
    hits = {"acceptance_local": 0, "accepted_per_step": 0, "naive": 0}
    reps = 40
    for rep in range(reps):
        spec = SyntheticSpec(domains=[DomainSpec("x", prompts=30, min_steps=10, max_steps=30, easy_share=0.4,
                                                 easy_logit=3.0, hard_logit=-3.0, concentration=2.0)],
                             later_rank_share=0.1, seed=100 + rep)
        truth = true_values(spec, spec.domains[0])
        g = compute(in_memory(spec), n_boot=250, seed=rep).metrics["domains"]["x"]
        for key in ("acceptance_local", "accepted_per_step"):
            hits[key] += g[key]["ci_low"] <= truth[key] <= g[key]["ci_high"]
        p, n = g["acceptance_local"]["value"], g["nodes"]
        half = 1.96 * np.sqrt(p * (1 - p) / n)
        hits["naive"] += p - half <= truth["acceptance_local"] <= p + half
    assert hits["acceptance_local"] >= 0.85 * reps and hits["accepted_per_step"] >= 0.85 * reps, hits
    assert hits["naive"] <= 0.6 * reps, hits


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

    def per_step(spec):
        return {d.name: true_values(spec, d)["accepted_per_step"] for d in spec.domains}

    assert per_step(holds)["chat"] > 1.3 and max(per_step(holds)["code"], per_step(holds)["math"]) < 0.7
    assert per_step(fails)["math"] > 1.3
    assert pick(claims_of(holds), "b").verdict is Verdict.HOLDS
    assert pick(claims_of(fails), "b").verdict is Verdict.DOES_NOT_HOLD


def _rho_domain(name: str, rho: float, share: float) -> DomainSpec:
    """A domain whose true draft-entropy vs accepted_local Pearson r equals ``rho``."""
    base = SyntheticSpec(domains=[], later_rank_share=0.2)

    def gap(hard):
        d = DomainSpec(name, easy_share=share, easy_logit=2.0, hard_logit=-2.0, entropy_hard=hard)
        return true_values(base, d)["pearson_draft_entropy_accepted_local"] - rho

    hard = optimize.brentq(gap, 1.01, 20.0)
    return DomainSpec(name, prompts=60, min_steps=30, max_steps=40, easy_share=share, easy_logit=2.0,
                      hard_logit=-2.0, entropy_hard=hard)


def test_claim_c_flips_with_the_true_correlation():
    inside = SyntheticSpec(domains=[_rho_domain("code", -0.175, 0.4), _rho_domain("chat", -0.175, 0.6)],
                           later_rank_share=0.2, seed=6)
    outside = SyntheticSpec(domains=[_rho_domain("code", -0.175, 0.4), _rho_domain("chat", -0.30, 0.6)],
                            later_rank_share=0.2, seed=7)
    claim = pick(claims_of(inside), "c")
    assert claim.verdict is Verdict.HOLDS, claim.summary
    assert pick(claims_of(outside), "c").verdict is Verdict.DOES_NOT_HOLD
    few = SyntheticSpec(domains=[DomainSpec(**{**vars(d), "prompts": 5, "min_steps": 5, "max_steps": 10})
                                 for d in inside.domains], later_rank_share=0.2, seed=8)
    claim = pick(claims_of(few), "c")  # same truth, too few prompts: CIs straddle the interval
    assert claim.verdict is Verdict.INCONCLUSIVE, claim.summary


def test_claim_d_flips_with_chat_entropy():
    def spec(chat_easy_entropy, seed):
        return SyntheticSpec(domains=[
            DomainSpec("code", prompts=30, easy_share=0.3),
            DomainSpec("logic", prompts=30, easy_share=0.4),
            DomainSpec("chat", prompts=30, easy_share=0.8, entropy_easy=chat_easy_entropy,
                       entropy_hard=chat_easy_entropy + 2.0)], seed=seed)
    high, low = spec(2.5, 9), spec(0.5, 10)
    assert pick(claims_of(high), "d").verdict is Verdict.HOLDS
    assert pick(claims_of(low), "d").verdict is Verdict.DOES_NOT_HOLD
    assert pick(claims_of(low), "d", entropy=Entropy.TARGET).verdict is Verdict.DOES_NOT_HOLD


def test_chat_claims_not_applicable_without_chat():
    spec = SyntheticSpec(domains=[DomainSpec("translation", prompts=10), DomainSpec("code", prompts=10)])
    claims = claims_of(spec, n_boot=100)
    for claim_id in ("b", "d"):
        claim = pick(claims, claim_id)
        assert claim.verdict is Verdict.INCONCLUSIVE and not claim.applicable
        assert "not applicable" in claim.summary and "chat" in claim.summary
    assert pick(claims, "a").applicable


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
    run = load_run(Path(result.metrics["run"]["dir"]))
    mask = run.prompts.domain[run.nodes.prompt] == run.domains.index("math")
    expected = stats.spearmanr(run.nodes.draft_entropy[mask], run.nodes.accept_prob[mask]).statistic
    got = result.metrics["domains"]["math"]["correlations"]["spearman"]["draft_entropy"]["accept_prob"]["rho"]
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


def test_logistic_fit_matches_closed_form_and_recovers_coefficients():
    rng = np.random.default_rng(2)
    cell = rng.integers(0, 3, 20000)
    x = rng.normal(size=20000)
    eta = -0.5 + 0.8 * (cell == 1) - 0.4 * (cell == 2) + 0.7 * x
    y = (rng.random(20000) < 1 / (1 + np.exp(-eta))) * 1.0
    dummies = np.column_stack([np.ones_like(x), cell == 1, cell == 2]).astype(float)
    closed = saturated_loglik(np.bincount(cell, weights=y), np.bincount(cell))
    assert fit_logistic(dummies, y).loglik == pytest.approx(closed, rel=1e-9)
    fit = fit_logistic(np.column_stack([dummies, x]), y)
    assert fit.converged
    assert fit.coef == pytest.approx([-0.5, 0.8, -0.4, 0.7], abs=0.08)


def test_percentile_ci_needs_defined_resamples():
    low, high = percentile_ci(np.array([np.nan] * 8 + [1.0, 2.0]))
    assert np.isnan(low) and np.isnan(high)
    low, high = percentile_ci(np.arange(1001.0))
    assert (low, high) == (pytest.approx(25.0), pytest.approx(975.0))
    assert Estimate(1.0, np.nan, np.nan).to_dict() == {"value": 1.0, "ci_low": None, "ci_high": None}


def test_row_order_does_not_matter(tmp_path):
    spec = SyntheticSpec(domains=[DomainSpec("code", prompts=12), DomainSpec("chat", prompts=12)], seed=3)
    nodes, steps, prompts = simulate(spec)
    perm = np.random.default_rng(0).permutation(nodes.num_rows)
    a = compute(run_from_tables(COMPLETE, [prompts], [nodes], [steps]), n_boot=60, seed=1)
    b = compute(run_from_tables(COMPLETE, [prompts], [nodes.take(perm)], [steps]), n_boot=60, seed=1)
    for key in ("rank_acceptance_vector", "depth_profile_path", "acceptance_path"):
        assert a.metrics["domains"]["chat"][key] == b.metrics["domains"]["chat"][key]


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
    m = result.metrics
    assert m["run"]["in_progress"] and m["run"]["status"] == "running"
    assert m["overall"]["prompts"] == 8  # shards 0 and 1, 4 prompts each
    assert any("in progress" in n for n in m["notes"])
    assert any("Ignored nodes/ shard(s) 2" in n for n in m["notes"])
    assert "not complete" in result.html.read_text()


def test_cli_report_and_error_exit(small_run, tmp_path, capsys):
    assert main(["report", str(small_run), "--out", str(tmp_path / "o"), "--bootstrap", "60"]) == 0
    out = capsys.readouterr().out
    assert "claim (b)" in out and (tmp_path / "o" / "report.html").is_file()
    assert main(["report", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("specdyn: error:")
