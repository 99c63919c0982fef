"""`specdyn run` at temperature > 0 on tiny models: the manifest records the sampling setting, records do not
depend on the batch size or on a kill -9 and resume, resume refuses another setting, and the budget's
acceptance vector (reached nodes' acceptance) estimates Sequoia's vector at temperature > 0."""

from __future__ import annotations

import json

import numpy as np
import pytest

from specdyn.budget.acceptance import acceptance_vectors
from specdyn.cli import main
from specdyn.rundir.reader import load_run, read_records
from test_study import assert_same_records, kill_mid_run, pair, run_args, suite, tables  # noqa: F401  (fixtures)

SAMPLED = ("--temperature", "1.0", "--top-p", "0.95", "--children", "sampled", "--seed", "7")


@pytest.fixture(scope="module")
def sampled(pair, suite, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("sampled") / "run"
    assert main(run_args(pair, suite, out, "--batch-size", "1", *SAMPLED)) == 0
    return out


def test_manifest_records_the_sampling_setting(sampled):
    config = json.loads((sampled / "manifest.json").read_text())["config"]
    assert {k: config[k] for k in ("temperature", "top_p", "children", "seed")} == \
        {"temperature": 1.0, "top_p": 0.95, "children": "sampled", "seed": 7}
    assert load_run(sampled).manifest.config.sampling.temperature == 1.0


def test_sampled_records_differ_from_greedy_and_are_batch_free(sampled, pair, suite, tmp_path):  # noqa: F811
    greedy = tmp_path / "greedy"
    assert main(run_args(pair, suite, greedy, "--batch-size", "3")) == 0
    assert tables(greedy)["prompts"]["output_ids"].to_pylist() != tables(sampled)["prompts"]["output_ids"].to_pylist()
    batched = tmp_path / "batched"
    assert main(run_args(pair, suite, batched, "--batch-size", "3", *SAMPLED)) == 0
    assert_same_records(tables(sampled), tables(batched))


def test_sampled_resume_after_kill_9(sampled, pair, suite, tmp_path):  # noqa: F811
    out = tmp_path / "killed"
    kill_mid_run(run_args(pair, suite, out, "--batch-size", "1", *SAMPLED), out)
    assert main(run_args(pair, suite, out, "--batch-size", "1", *SAMPLED)) == 0
    assert_same_records(tables(sampled), tables(out))


@pytest.mark.parametrize("change, key", [(("--temperature", "0.7"), "temperature"), (("--top-p", "1"), "top_p"),
                                         (("--children", "topk"), "children"), (("--seed", "8"), "seed")])
def test_resume_refuses_another_sampling_setting(sampled, pair, suite, capsys, change, key):  # noqa: F811
    args = dict(zip(SAMPLED[::2], SAMPLED[1::2])) | dict([change])
    assert main(run_args(pair, suite, sampled, "--batch-size", "1", *[x for kv in args.items() for x in kv])) == 2
    assert f"different config ({key} differ)" in capsys.readouterr().err


# ------------------------------------------------------------------ budget's acceptance vector at T > 0


def _chance_accepted(nodes: dict) -> np.ndarray:
    """Per node, the probability that its parent position accepts it: its earlier siblings rejected, then
    itself accepted (prod (1 - verify_prob) over earlier siblings, times its own verify_prob)."""
    group = list(zip(nodes["prompt_id"], nodes["step"], nodes["parent"]))
    chance, survive, current = np.zeros(len(group)), 1.0, None
    for i in sorted(range(len(group)), key=lambda i: (group[i], nodes["rank"][i])):  # siblings in the order tried
        if group[i] != current:
            survive, current = 1.0, group[i]
        chance[i] = survive * nodes["verify_prob"][i]
        survive *= 1.0 - nodes["verify_prob"][i]
    return chance


def test_reached_nodes_estimate_sequoias_vector_at_temperature_above_zero(pair, suite, tmp_path):  # noqa: F811
    out = tmp_path / "wide"
    assert main(run_args(pair, suite, out, "--batch-size", "4", "--max-new-tokens", "96", "--temperature", "1.0",
                         "--children", "sampled", "--tree", "static:depth=2,branch=3")) == 0
    run = load_run(out)
    table = read_records(out, "nodes").to_pydict()
    assert table["prompt_id"] == [run.prompts.ids[i] for i in run.nodes.prompt]  # the same rows, same order
    nodes = {k: np.array(v) for k, v in table.items()}
    reached = run.nodes.parent_reached
    assert (run.nodes.accepted_path[reached] == run.nodes.accepted_local[reached]).all()
    chance = _chance_accepted(nodes)
    for name, vec in acceptance_vectors(run, min_observations=1).items():
        in_domain = reached & (run.node_domain() == run.domains.index(name))
        for k in range(3):
            sel = in_domain & (run.nodes.rank == k)
            z = (vec.accepted[k] - chance[sel].sum()) / np.sqrt((chance[sel] * (1 - chance[sel])).sum())
            assert vec.trials[k] == sel.sum() >= 150 and abs(z) < 4, (name, k, vec.trials[k], z)
            if k:  # a rank's chance once tried (verify_prob) is not its share of trials: the test tells them apart
                once_tried = nodes["verify_prob"][sel]
                assert (once_tried.sum() - vec.accepted[k]) / np.sqrt((once_tried * (1 - once_tried)).sum()) > 4
