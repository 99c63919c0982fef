"""`specdyn distill` on tiny models: outputs, checks before loading, determinism, exact resume after kill -9
and Ctrl-C, token-level losses, and a merged adapter: lossless decoding with higher acceptance."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

import specdyn.distill.train as train_module
import specdyn.models
from specdyn.cli import main
from specdyn.distill import DistillConfig, apply_adapter, check_adapter_base, prepare, read_adapter
from specdyn.distill.data import load_split
from specdyn.engine import PromptInput, SpeculativeDecoder, target_greedy
from specdyn.engine.proposers import DraftModelProposer
from specdyn.specs import static_shape
from specdyn.errors import SpecdynError
from specdyn.models import load_model
from specdyn.suites import Prompt, write_suite
from tiny import save_tiny_pair

WORDS = ("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon "
         "phi chi psi omega").split()
TRAIN = ["--steps", "60", "--lr", "3e-3", "--eval-every", "20", "--checkpoint-every", "5", "--micro-batch", "4", "--quiet"]


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    return save_tiny_pair(tmp_path_factory.mktemp("models"), noise=0.6)


@pytest.fixture(scope="module")
def run_dir(pair, tmp_path_factory):
    """A tiny run: 20 'greek' prompts and 5 'latin' prompts decoded by the tiny pair."""
    prompts = [Prompt(id=f"{dom}/{i:02d}", domain=dom, source="test",
                      messages=[{"role": "user", "content": f"{dom} {WORDS[i]} {WORDS[(7 * i) % 20]}"}])
               for dom, n in (("greek", 20), ("latin", 5)) for i in range(n)]
    suite = tmp_path_factory.mktemp("suite") / "suite.jsonl"
    write_suite(prompts, suite)
    out = tmp_path_factory.mktemp("run") / "run"
    assert main(["run", "--suite", str(suite), "--out", str(out), "--draft", pair["draft"], "--target", pair["target"],
                 "--dtype", "float32", "--max-new-tokens", "32", "--quiet", "--no-report"]) == 0
    return out


def distill_args(run_dir, out, *extra):
    return ["distill", str(run_dir), "--domain", "greek", "--out", str(out), *TRAIN, *extra]


@pytest.fixture(scope="module")
def trained(run_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("adapter") / "greek"
    assert main(distill_args(run_dir, out)) == 0
    return out


def error_of(capsys, code):
    err = capsys.readouterr().err
    assert code == 2, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("specdyn: error: ") and "Traceback" not in err
    return last


@pytest.fixture
def no_model_loads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(specdyn.models, "load_model", refuse)


def test_outputs(trained, run_dir, pair):
    record = json.loads((trained / "distill.json").read_text())
    assert record["status"] == "complete" and not (trained / "checkpoint.pt").exists()
    assert {"adapter_config.json", "adapter_model.safetensors"} <= {p.name for p in trained.iterdir()}
    split = load_split(run_dir, "greek", 20, 0, record["config"]["max_length"])
    assert record["data"]["hash"] == split.data_hash and record["data"]["val_ids"] == [e.prompt_id for e in split.val]
    assert len(record["data"]["train_ids"]) == 16 and not set(record["data"]["train_ids"]) & set(record["data"]["val_ids"])
    assert record["base"]["weights_id"] == load_model(pair["draft"], "float32", "cpu").weights_id
    progress = record["progress"]
    assert [p["step"] for p in progress["train"]] == list(range(1, 61))
    assert [v["step"] for v in progress["val"]] == [0, 20, 40, 60]
    first, last = progress["val"][0], progress["val"][-1]
    assert last["loss"] < first["loss"] and last["agreement"] > first["agreement"]
    assert record["seconds"] > 0 and record["peak_memory_mb"] > 100 and record["adapter_id"] == read_adapter(trained).adapter_id


def test_rerun_of_a_finished_training_does_nothing(trained, run_dir, capsys):
    before = {p.name: p.stat().st_mtime_ns for p in trained.iterdir()}
    assert main(distill_args(run_dir, trained)) == 0
    assert "already trained" in capsys.readouterr().out
    assert before == {p.name: p.stat().st_mtime_ns for p in trained.iterdir()}


def test_bad_inputs_fail_before_any_model_loads(run_dir, trained, tmp_path, capsys, no_model_loads):
    out = tmp_path / "out"
    cases = [
        (distill_args(run_dir, out, "--steps", "0"), "--steps must be >= 1"),
        (distill_args(run_dir, out, "--rank", "0"), "--rank must be >= 1"),
        (["distill", str(run_dir), "--domain", "roman", "--out", str(out)], "no domain 'roman'; it has: greek, latin"),
        (["distill", str(run_dir), "--domain", "latin", "--out", str(out)], "has 5 finished prompts; training needs at least 20"),
        (["distill", str(tmp_path), "--domain", "greek", "--out", str(out)], "not a specdyn run folder"),
        (distill_args(run_dir, trained, "--rank", "4"), "different config (config.lora_alpha, config.rank)"),
        (distill_args(run_dir, run_dir), "holds no distill.json"),
        (distill_args(run_dir, out, "--draft", "no-such-model"), "unknown model 'no-such-model'"),
        (distill_args(run_dir, tmp_path / "file" / "out"), "cannot write --out"),
    ]
    (tmp_path / "file").write_text("x")
    for args, message in cases:
        assert message in error_of(capsys, main(args)), args
    assert not out.exists()


def test_min_prompts_lowers_the_bar(run_dir, tmp_path, no_model_loads):
    job = prepare(DistillConfig("latin", "", "", min_prompts=3), run_dir, tmp_path / "o")
    assert len(job.split.val) == 2 and len(job.split.train) == 3


def test_another_seed_gives_another_split_and_adapter(trained, run_dir, tmp_path):
    other = tmp_path / "other"  # (the resume tests show the same seed gives the same adapter)
    assert main(distill_args(run_dir, other, "--seed", "1")) == 0
    assert read_adapter(other).adapter_id != read_adapter(trained).adapter_id
    records = [json.loads((p / "distill.json").read_text())["data"] for p in (trained, other)]
    assert records[0]["val_ids"] != records[1]["val_ids"]


def assert_same_training(a, b):
    wa, wb = load_file(a / "adapter_model.safetensors"), load_file(b / "adapter_model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    ra, rb = (json.loads((p / "distill.json").read_text())["progress"] for p in (a, b))
    assert ra["train"] == rb["train"] and ra["val"] == rb["val"]


def test_resume_after_kill_9_gives_the_same_adapter(trained, run_dir, tmp_path):
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "specdyn.cli", *distill_args(run_dir, out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None and not (out / "checkpoint.pt").exists():
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    assert json.loads((out / "distill.json").read_text())["status"] == "running"
    assert main(distill_args(run_dir, out)) == 0
    assert_same_training(trained, out)


def test_ctrl_c_checkpoints_the_current_step_and_resumes_exactly(trained, run_dir, tmp_path, monkeypatch):
    out, real_step = tmp_path / "interrupted", train_module.train_step

    def step_then_interrupt(trainer):
        point = real_step(trainer)
        if point.step == 7:
            os.kill(os.getpid(), signal.SIGINT)
        return point

    monkeypatch.setattr(train_module, "train_step", step_then_interrupt)
    assert main(distill_args(run_dir, out)) == 130
    assert torch.load(out / "checkpoint.pt", weights_only=True)["progress"]["step"] == 7  # not the periodic 5
    monkeypatch.setattr(train_module, "train_step", real_step)
    assert main(distill_args(run_dir, out)) == 0
    assert_same_training(trained, out)


@pytest.mark.parametrize("mode", ["kl", "tvd"])
def test_token_level_distillation_lowers_its_divergence(run_dir, tmp_path, mode):
    out = tmp_path / mode
    assert main(distill_args(run_dir, out, "--token-level", mode)) == 0
    record = json.loads((out / "distill.json").read_text())
    val = record["progress"]["val"]
    assert record["config"]["token_level"] == mode and val[-1]["loss"] < 0.8 * val[0]["loss"]


def test_micro_batches_accumulate_to_the_full_batch_gradient(run_dir, pair):
    grads = []
    for micro in (1, 4):
        config = DistillConfig("greek", pair["draft"], "", micro_batch=micro)
        split = load_split(run_dir, "greek", 20, 0, 640)
        trainer = train_module.build_trainer(config, split, load_model(pair["draft"], "float32", "cpu").model)
        loss = train_module._accumulate(trainer, list(split.train[:4]))
        grads.append((loss, [p.grad.clone() for p in trainer.model.parameters() if p.requires_grad]))
    assert abs(grads[0][0] - grads[1][0]) < 1e-5
    assert all(torch.allclose(a, b, atol=1e-6, rtol=1e-4) for a, b in zip(grads[0][1], grads[1][1]))


def held_out_prompts(tokenizer) -> list[PromptInput]:
    """Prompts of the training domain's form that the run never decoded."""
    texts = [f"greek {WORDS[20 + i % 4]} {WORDS[(3 * i + 1) % 20]} {WORDS[i % 7]}" for i in range(12)]
    rendered = [tokenizer.apply_chat_template([{"role": "user", "content": t}], add_generation_prompt=True, tokenize=False) for t in texts]
    return [PromptInput(f"h{i}", tokenizer.encode(r, add_special_tokens=False)) for i, r in enumerate(rendered)]


def decode_all(draft, target, prompts):
    proposer = DraftModelProposer(draft.model, static_shape(3, 2))
    return list(SpeculativeDecoder(proposer, target.model, target.eos_token_ids, 32).generate_many(prompts))


def test_merged_adapter_is_lossless_and_raises_acceptance(trained, pair):
    target = load_model(pair["target"], "float32", "cpu")
    base = load_model(pair["draft"], "float32", "cpu")
    adapted = apply_adapter(load_model(pair["draft"], "float32", "cpu"), read_adapter(trained))
    assert not any("lora" in name for name, _ in adapted.model.named_parameters())  # merged, no peft layers left
    prompts = held_out_prompts(target.tokenizer)
    runs = {name: decode_all(d, target, prompts) for name, d in (("base", base), ("adapted", adapted))}
    for res in runs["adapted"]:
        assert res.output_ids == target_greedy(target.model, res.prompt_ids, 32, target.eos_token_ids)
    local = {k: statistics.mean(n.accepted_local for r in v for n in r.nodes) for k, v in runs.items()}
    accepted = {k: statistics.mean(a for r in v for a in r.accepted) for k, v in runs.items()}
    assert local["adapted"] > local["base"] + 0.05 and accepted["adapted"] > accepted["base"] + 0.5, (local, accepted)


def test_adapter_for_another_base_is_refused(trained, pair, tmp_path):
    info = read_adapter(trained)
    target = load_model(pair["target"], "float32", "cpu")
    with pytest.raises(SpecdynError, match="was trained on"):
        check_adapter_base(info, target.name, target.weights_id)
    with pytest.raises(SpecdynError, match="was trained on"):
        apply_adapter(target, info)
    with pytest.raises(SpecdynError, match="not a finished `specdyn distill` folder"):
        read_adapter(tmp_path)


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit):
        main(["distill", "--help"])
    text = capsys.readouterr().out
    for option in ("--domain", "--out", "--steps", "--rank", "--lr", "--batch-size", "--micro-batch", "--max-length", "--seed",
                   "--min-prompts", "--eval-every", "--checkpoint-every", "--token-level", "--draft", "--dtype", "--device", "--quiet"):
        assert option in text
