"""Adaptive trees at the command line: bad input stops before any model loads; --profile is read through the
run-folder reader and recorded; `specdyn budget --global / --export`; `specdyn compare` pairs adaptive runs
with the default, global and per-domain trees."""

from __future__ import annotations

import ast
import json
import pickle
import shutil

import pytest

from specdyn.budget.acceptance import pooled_vector
from specdyn.budget.compare import TreeRole, compare_runs
from specdyn.budget.export import Mapping, parse_engines, sglang_settings, token_tree, vllm_config
from specdyn.budget.profile import load_profile
from specdyn.cli import main
from specdyn.config import RunConfig
from specdyn.defaults import DEFAULT_TREE
from specdyn.engine import PromptInput
from specdyn.engine.adaptive import AdaptiveProposer
from specdyn.errors import SpecdynError
from specdyn.executors.worker import Worker
from specdyn.pipeline import resolve_models
from specdyn.rundir.reader import load_prompt_tokens, load_run
from specdyn.sampling_spec import Sampling
from specdyn.treeopt.costs import CostModel
from specdyn.specs import AdaptiveTree, DomainTrees, parse_tree, shape_from_paths, static_shape
from test_budget import make_run, synthetic_costs
from test_inputs import decode, error_line, no_weights, pair, run_args, suite  # noqa: F401  (fixtures)

P = {"code": [0.8, 0.1], "chat": [0.35, 0.25]}


@pytest.fixture(scope="module")
def fit(tmp_path_factory):
    """A default-tree run with a cost model, and its budget with the global tree."""
    root = make_run(tmp_path_factory.mktemp("fit") / "fit", DEFAULT_TREE, P, prompts=8, steps=40)
    synthetic_costs().save(root / "costs.json")
    assert main(["budget", str(root), "--max-nodes", "10", "--max-depth", "4", "--min-observations", "50", "--global",
                 "--export", "vllm,sglang"]) == 0
    return root


# ------------------------------------------------------------------ bad input: one line, before any model loads


@pytest.mark.parametrize("extra, message", [
    (["--tree", "adaptive:foo=1"], "expected exactly adaptive[:every=K,nodes=N,depth=D,branch=B,weight=W] (unknown key 'foo')"),
    (["--tree", "adaptive:nodes=0"], "adaptive tree needs nodes >= 1"),
    (["--tree", "adaptive:depth=99"], "adaptive tree needs depth <= 10"),
    (["--tree", "adaptive:every=1,branch=9"], "adaptive tree needs branch <= 8"),
    (["--tree", "adaptive:weight=-1"], "adaptive tree needs weight >= 1"),
    (["--tree", "adaptive", "--drafter", "lookup"], "not an adaptive one"),
    (["--tree", "adaptive", "--temperature", "0.7", "--children", "sampled"], "not an adaptive one (adaptive:"),
    (["--tree", "static:depth=2,branch=2", "--profile", "."], "--profile informs adaptive trees only"),
    (["--tree", "adaptive", "--profile", ""], "--profile must not be empty"),
    (["--tree", "adaptive", "--max-new-tokens", "506"], "exceed the model context of 512"),  # 506 + depth 6 + 1
])
def test_decode_rejects_before_loading(pair, capsys, no_weights, extra, message):
    assert message in error_line(capsys, decode(pair, *extra))


def test_profile_that_is_no_run(pair, suite, tmp_path, capsys, no_weights):
    (tmp_path / "file").write_text("x")
    (tmp_path / "empty").mkdir()
    for folder, message in ((tmp_path / "empty", "not a specdyn run folder"), (tmp_path / "missing", "no such directory"),
                            (tmp_path / "file", "is not a directory")):
        line = error_line(capsys, decode(pair, "--tree", "adaptive", "--profile", str(folder)))
        assert line.startswith("specdyn: error: --profile: ") and message in line
    out = tmp_path / "run"
    assert "--profile: " in error_line(capsys, main(run_args(pair, suite, out, "--tree", "adaptive", "--profile", str(tmp_path / "empty"))))
    assert not out.exists()  # nothing left that blocks the corrected command


def test_export_rejects_unknown_engines_before_timing(fit, capsys, no_weights):
    for value, message in (("tgi", "--export: unknown engine 'tgi' (choose from vllm, sglang)"), (",", "--export needs an engine")):
        assert message in error_line(capsys, main(["budget", str(fit), "--measure", "--export", value]))
    assert parse_engines("sglang, vllm,sglang") == [parse_engines("sglang")[0], parse_engines("vllm")[0]]


# ------------------------------------------------------------------ --profile: read, recorded, compared on resume


def test_profile_counts_identity_and_prior(fit):
    profile = load_profile(str(fit))
    vec = pooled_vector(load_run(fit), 1)
    assert profile.trials[0] == tuple(vec.depth_trials[1]) and profile.accepted[2] == tuple(vec.depth_accepted[3])
    assert sum(map(sum, profile.trials)) == sum(vec.trials) and profile.costs["version"] == 1 and len(profile.costs_sha256) == 64
    manifest = json.loads((fit / "manifest.json").read_text())
    assert profile.suite_sha256 == manifest["suite_sha256"] and profile.path == str(fit.resolve())
    prior = AdaptiveTree(depth=4, branch=3, profile=profile).prior
    pooled = [sum(P[d][r] for d in P) / 2 for r in range(2)]  # the domains have equal weight in the simulation...
    assert prior.mean[0][0] == pytest.approx(pooled[0], abs=0.05)  # ...at the top level
    assert prior.source[0] == ("profile depth", "profile depth", "weak") and prior.source[3][0] == "profile rank"


def test_run_records_the_profile_and_resume_refuses_another(pair, suite, fit, tmp_path, capsys):
    out = tmp_path / "run"
    args = run_args(pair, suite, out, "--tree", "adaptive:every=2,nodes=6,depth=3", "--batch-size", "2")
    assert main(args + ["--profile", str(fit)]) == 0
    assert "was made with other models" in capsys.readouterr().err
    tree = json.loads((out / "manifest.json").read_text())["trees"]["tree"]
    assert tree["profile"]["path"] == str(fit.resolve()) and tree["profile"]["costs_sha256"] == load_profile(str(fit)).costs_sha256
    assert tree["prior"]["source"][0][0] == "profile depth" and load_run(out).manifest.config.tree.profile.path == str(fit.resolve())
    assert "different config (the adaptive trees' profiles differ)" in error_line(capsys, main(args))
    other = make_run(tmp_path / "other", DEFAULT_TREE, {"code": [0.5, 0.1]}, prompts=2, steps=20)
    assert "profiles differ" in error_line(capsys, main(args + ["--profile", str(other)]))
    assert main(args + ["--profile", str(fit)]) == 0  # the same profile: the run resumes (nothing left to do)


# ------------------------------------------------------------------ sampling, and what a Ray worker receives


def test_adaptive_decodes_at_temperature_through_the_cli(pair, suite, fit, tmp_path, capsys):
    """T > 0 with top-k children: sampling is on (another seed draws other tokens), the profile's other setting
    is noted, the run records both, and with the profile's cost model the run is reproducible."""
    def run(out, seed):
        args = run_args(pair, suite, out, "--tree", "adaptive:every=2,nodes=6,depth=3", "--temperature", "0.8",
                        "--seed", seed, "--profile", str(fit))
        assert main(args) == 0
        return {p.prompt_id: p.output_ids for p in load_prompt_tokens(out).prompts}, load_run(out).nodes

    a = run(tmp_path / "a", "3")
    assert "was recorded with another sampling setting (greedy; this run: T 0.8, top-p 1)" in capsys.readouterr().err
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["config"]["temperature"] == 0.8 and manifest["trees"]["tree"]["profile"]["sampling"] == "greedy"
    again, other = run(tmp_path / "b", "3"), run(tmp_path / "c", "4")
    assert a[0] == again[0] and (a[1].depth == again[1].depth).all() and (a[1].rank == again[1].rank).all()
    assert a[0] != other[0]  # two prompts of 6 sampled tokens from ~260: equal under another seed only if greedy


def test_a_worker_builds_the_adaptive_proposer_from_the_config_alone(pair, fit, tmp_path, monkeypatch):
    """What a Ray actor receives is the pickled config: the profile's counts and cost model travel inside it,
    so a worker whose node has no profile folder builds the same prior and costs, and times nothing."""
    folder = tmp_path / "profile"
    shutil.copytree(fit, folder)
    tree = AdaptiveTree(every=2, nodes=6, depth=3, profile=load_profile(str(folder)))
    config = resolve_models(RunConfig(draft=pair["draft"], target=pair["target"], dtype="float32", device="cpu",
                                      tree=tree, temperature=0.8, max_new_tokens=8, batch_size=2))
    shipped = pickle.loads(pickle.dumps(config))
    shutil.rmtree(folder)  # not on the worker's node

    def no_timing(*args, **kwargs):
        raise AssertionError("the worker timed its models instead of using the profile's cost model")

    monkeypatch.setattr("specdyn.engine.adaptive.measure_timings", no_timing)
    worker = Worker(shipped, [shipped.tree])
    decoder = worker.decoders[0]
    assert isinstance(decoder.proposer, AdaptiveProposer) and decoder.sampling == Sampling(0.8)
    assert decoder.proposer.planner.costs.to_json() == CostModel.from_json(dict(tree.profile.costs)).to_json()
    assert decoder.proposer.spec.prior == tree.prior and shipped.tree == tree
    (result,) = worker.decode(0, [PromptInput("p", [5, 6, 7])])
    assert 1 <= len(result.output_ids) <= 8


# ------------------------------------------------------------------ budget --global and --export


def test_export_format_parses_back():
    for shape, mapping, draft_tokens in [
        (static_shape(4, 1), Mapping.EXACT, 5), (static_shape(1, 3), Mapping.EXACT, 4), (static_shape(2, 2), Mapping.EXACT, 7),
        (static_shape(3, 2), Mapping.APPROXIMATE, 11),  # 14 nodes, but SGLang scores 2 + 2 * 4 candidates
        (shape_from_paths([[0], [1], [0, 0], [0, 0, 0]]), Mapping.APPROXIMATE, 5),
    ]:
        config = json.loads(json.dumps(vllm_config(shape)))
        assert ast.literal_eval(config["speculative_token_tree"]) == list(shape.paths)
        assert config["num_speculative_tokens"] == shape.size == len(ast.literal_eval(token_tree(shape)))
        settings = sglang_settings(shape)
        assert settings.mapping is mapping and settings.draft_tokens == draft_tokens and settings.steps == shape.depth
    assert token_tree(shape_from_paths([[0], [0, 0], [0, 1]])) == "[(0,), (0, 0), (0, 1)]"


def test_budget_global_and_export_files(fit):
    doc = json.loads((fit / "budget" / "budget.json").read_text())
    single = parse_tree(f"paths:{fit / 'budget' / 'global.json'}").shape
    assert doc["global"]["paths_file"] == "global.json" and [list(p) for p in single.paths] == doc["global"]["recommended"]["paths"]
    assert doc["global"]["acceptance"]["trials"] == pooled_vector(load_run(fit), 50).trials
    for name in ("code.json", "chat.json", "global.json"):
        shape = parse_tree(f"paths:{fit / 'budget' / name}").shape
        vllm = json.loads((fit / "budget" / "vllm" / name).read_text())
        assert set(vllm) == {"num_speculative_tokens", "speculative_token_tree"}
        assert [tuple(p) for p in shape.paths] == ast.literal_eval(vllm["speculative_token_tree"])
        sglang = json.loads((fit / "budget" / "sglang" / name).read_text())
        assert sglang["settings"]["speculative_num_steps"] == shape.depth and sglang["mapping"] in ("exact", "approximate")
    assert set(DomainTrees.load(str(fit / "budget")).files) == {"code.json", "chat.json"}  # global.json is no domain's
    with pytest.raises(SpecdynError):
        parse_engines("")


# ------------------------------------------------------------------ compare: adaptive against the others


def test_compare_pairs_adaptive_with_every_other_tree(fit, tmp_path):
    budget = fit / "budget"
    code_tree, chat_tree = (parse_tree(f"paths:{budget / n}").shape for n in ("code.json", "chat.json"))
    runs = {"default": make_run(tmp_path / "default", DEFAULT_TREE, P, step_seconds=0.05, seed=3),
            "global": make_run(tmp_path / "global", f"paths:{budget / 'global.json'}", P, step_seconds=0.04, seed=4),
            "domain": make_run(tmp_path / "domain", DEFAULT_TREE, P, step_seconds=0.03, seed=5, shape=code_tree),
            "adaptive": make_run(tmp_path / "adaptive", "adaptive", P, step_seconds=0.03, seed=6, shape=code_tree)}
    # the per-domain run: rewrite its manifest as a --domain-trees run of the budget folder
    manifest = json.loads((runs["domain"] / "manifest.json").read_text())
    manifest["config"]["domain_trees"] = str(budget)
    manifest["trees"]["domain_trees"] = {n: {"spec": f"paths:{budget / n}", "paths": s.to_json()}
                                         for n, s in (("code.json", code_tree), ("chat.json", chat_tree))}
    (runs["domain"] / "manifest.json").write_text(json.dumps(manifest))
    comps = {c.domain: c for c in compare_runs([load_run(r) for r in runs.values()], list(runs))}
    roles = {e.label: e.role for e in comps["code"].entries}
    assert roles == {"default": TreeRole.DEFAULT, "global": TreeRole.GLOBAL, "domain": TreeRole.RECOMMENDED,
                     "adaptive": TreeRole.ADAPTIVE}
    gains = {(g.a_role, g.b_role): g for g in comps["code"].gains}
    assert set(gains) == {("recommended", "default"), ("global", "default"), ("adaptive", "default"),
                          ("adaptive", "global"), ("adaptive", "recommended")}
    assert gains[("adaptive", "global")].low > 0 and gains[("adaptive", "global")].paired  # 0.03 s vs 0.04 s per step
    verdict = "\n".join(comps["code"].verdict)
    assert "On code, the adaptive tree (adaptive) BEAT the global tree (global): +" in verdict
    for g in comps["code"].gains:  # every sentence says what its interval says
        word = "BEAT" if g.low > 0 else "did NOT beat" if g.high < 0 else "did NOT clearly beat"
        assert f"({g.a}) {word} " in verdict and "bootstrap over 8 prompts" in verdict
    assert comps["code"].recommended_vs_default is gains[("recommended", "default")]


def test_compare_pairs_adaptive_only_within_one_sampling_setting(tmp_path):
    hot = {"temperature": 0.7, "top_p": 0.9}
    shape = static_shape(3, 2)
    runs = {"default": make_run(tmp_path / "default", DEFAULT_TREE, P, step_seconds=0.05, seed=3),
            "adaptive-hot": make_run(tmp_path / "adaptive-hot", "adaptive", P, step_seconds=0.03, seed=6, shape=shape,
                                     models=hot)}
    code = next(c for c in compare_runs([load_run(r) for r in runs.values()], list(runs)) if c.domain == "code")
    assert code.gains == [] and ("No run here used the default with the same sampling setting as a run of the "
                                 "adaptive tree, so the two are not compared.") in code.verdict
    runs["default-hot"] = make_run(tmp_path / "default-hot", DEFAULT_TREE, P, step_seconds=0.05, seed=4, models=hot)
    code = next(c for c in compare_runs([load_run(r) for r in runs.values()], list(runs)) if c.domain == "code")
    (gain,) = code.gains
    assert (gain.a, gain.b, gain.a_role, gain.b_role) == ("adaptive-hot", "default-hot", "adaptive", "default")
    assert not any("not compared" in line for line in code.verdict)
