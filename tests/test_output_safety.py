"""Hostile names (math text, Markdown links, HTML, ANSI escapes, control characters) are shown literally and
inertly in every output: report files and plots, `budget` and `compare` text, `suite show`, error lines;
and a closed standard output (`specdyn ... | head`) ends the command quietly."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from specdyn.cli import main
from specdyn.defaults import DEFAULT_TREE
from synthetic import DomainSpec, SyntheticSpec, write_run
from specdyn.safetext import markdown, one_line, visible
from test_budget import make_run, synthetic_costs

ROOT = Path(__file__).resolve().parents[1]
HOSTILE = [
    "cost $\\undefined$",  # invalid mathtext: matplotlib raises if it parses it
    "cost $5 and $6",  # valid mathtext: would render as math without an error
    "[click](javascript:alert(1))",
    "<script>alert(1)</script>",
    "\x1b[31mred\x1b[0m",
    "soh\x01bell\x07tab\tnl\nbidi\u202eend",  # (no NUL: numpy string arrays in the synthetic writer cut it)
    "# heading _em_ **bold** `code` a|b",
]
TEXT = "said [x](javascript:y) <b>"  # prompt text after the domain name
RAW_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028-\u202e\u2066-\u2069]")  # all but \t and \n


def rendered_text(md: str) -> tuple[str, list[str]]:
    """(the text a CommonMark + tables renderer shows for ``md``, the token types it produced)."""
    parser = MarkdownIt("commonmark").enable("table")
    tokens = [t for block in parser.parse(md) for t in [block, *(block.children or [])]]
    page = parser.render(md)
    return html.unescape(re.sub(r"<[^>]*>", "", page)), [t.type for t in tokens]


def assert_inert_markdown(md: str, names: list[str]) -> None:
    assert not RAW_CONTROL.search(md)
    assert not re.search(r"(?<!\\)(?:\\\\)*\$", md), "an unescaped $ is math on GitHub"
    text, types = rendered_text(md)
    assert not {"link_open", "html_inline", "html_block"} & set(types)
    for name in names:
        assert visible(name) in text, name


# ---------------------------------------------------------------- the helpers


def test_visible_escapes_every_control_character():
    assert visible("a\x1b[0m\x00\x7f\x85\u202e\u2066\ud800z") == "a\\x1b[0m\\x00\\x7f\\x85\\u202e\\u2066\\ud800z"
    assert visible("plain ünïcödé 面积 tab") == "plain ünïcödé 面积 tab"
    assert one_line("a\n\n b\tc\x1b") == "a b c\\x1b"


@pytest.mark.parametrize("name", HOSTILE + ["- item", "+ x", "1. first", "10) tenth", "===", "---", "> quote", "a\\b"])
def test_markdown_renders_literally(name):
    md = markdown(name)
    assert "\n" not in md
    assert_inert_markdown(f"| h |\n|---|\n| {md} |\n\n{md}\n\n- {md}", [name])
    text, types = rendered_text(md)  # alone, at the start of a line: no heading, list, quote or rule
    assert text.strip() == visible(name) and types == ["paragraph_open", "inline", "text", "paragraph_close"]


def test_markdown_keeps_plain_text_readable():
    assert markdown("accepted_local rate 0.512 [0.4, 0.6]") == "accepted_local rate 0.512 \\[0.4, 0.6\\]"
    assert markdown("-0.25") == "-0.25" and markdown("12.5") == "12.5"


# ---------------------------------------------------------------- specdyn report


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory):
    domains = [DomainSpec(name, prompts=4, min_steps=3, max_steps=5, text=f"{name} {TEXT}")
               for name in HOSTILE]
    return write_run(SyntheticSpec(domains=domains, seed=5), tmp_path_factory.mktemp("hostile") / "run")


def test_report_shows_hostile_names_literally(hostile_run, tmp_path, capsys):
    out = tmp_path / "out"
    categories = [f"category {name}" for name in HOSTILE]  # read from the run's suite.jsonl
    (hostile_run / "suite.jsonl").write_text("".join(
        json.dumps({"id": f"{name}-{i:05d}", "domain": name, "source": name, "metadata": {"category": category},
                    "messages": [{"role": "user", "content": "hi"}]}) + "\n"
        for name, category in zip(HOSTILE, categories) for i in range(4)))
    assert main(["report", str(hostile_run), "--out", str(out), "--bootstrap", "50"]) == 0
    stdout = capsys.readouterr().out
    assert not RAW_CONTROL.search(stdout)
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(f"{name}.png" for name in [
        "acceptance_level", "accepted_length", "depth_profile", "rank_vector", "entropy_distributions",
        "entropy_acceptance", "rank_correlations", "correlation_parts", "prompt_weighting", "calibration",
        "breakdowns", "output_position", "draft_target_tv"])
    shown = HOSTILE + [f"{name}-00000" for name in HOSTILE] + [one_line(f"{name} {TEXT}") for name in HOSTILE]
    md = (out / "report.md").read_text()  # domain names, prompt ids, prompt texts (on one line)
    assert_inert_markdown(md, shown + categories)
    assert "\\[click\\](javascript:alert(1))" in md and "\\[x\\](javascript:y)" in md
    page = (out / "report.html").read_text()
    assert not RAW_CONTROL.search(page) and "<script" not in page and "<a " not in page
    assert all(visible(name) in html.unescape(page) for name in shown)
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["domains"]) == set(HOSTILE)  # the data keep the names as they are
    assert set(metrics["breakdowns"]["category"]["groups"]) == set(categories)


def test_plots_never_parse_names_as_math():
    from specdyn.report.plots import _pyplot

    plt = _pyplot()
    fig = plt.figure()
    label = fig.text(0, 0, "cost $5 and $6")
    assert label.get_parse_math() is False and plt.rcParams["text.usetex"] is False
    plt.close(fig)


# ---------------------------------------------------------------- specdyn budget and compare


@pytest.fixture(scope="module")
def hostile_budget_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile-budget") / "run"
    make_run(root, DEFAULT_TREE, {name: [0.6, 0.2] for name in HOSTILE}, prompts=4, steps=30)
    synthetic_costs().save(root / "costs.json")
    return root


def test_budget_text_shows_hostile_names_inertly(hostile_budget_run, capsys):
    assert main(["budget", str(hostile_budget_run), "--max-nodes", "8", "--max-depth", "3",
                 "--min-observations", "10"]) == 0
    out = capsys.readouterr().out
    assert not RAW_CONTROL.search(out.replace("\t", ""))
    for name in HOSTILE:
        assert f"{visible(name)}: p by rank" in out


def test_compare_markdown_shows_hostile_names_inertly(hostile_budget_run, tmp_path, capsys):
    target = tmp_path / "comparison.md"
    assert main(["compare", str(hostile_budget_run), "--out", str(target)]) == 0
    printed = capsys.readouterr().out
    for md in (printed, target.read_text()):
        assert_inert_markdown(md, HOSTILE)
        assert "## \\[click\\](javascript:alert(1))" in md


# ---------------------------------------------------------------- terminal text


def test_suite_show_and_error_lines_are_inert(tmp_path, capsys):
    suite = tmp_path / "s.jsonl"
    suite.write_text("".join(json.dumps({"id": str(i), "domain": name, "source": name,
                                         "messages": [{"role": "user", "content": "hi"}]}) + "\n"
                             for i, name in enumerate(HOSTILE)))
    assert main(["suite", "show", str(suite)]) == 0
    out = capsys.readouterr().out
    assert not RAW_CONTROL.search(out.replace("\t", "")) and "\\x1b[31mred\\x1b[0m" in out
    assert main(["report", str(tmp_path / "no\nsuch\x1b[2J")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("specdyn: error: ") and "no\\x0asuch\\x1b[2J" in err


def test_closed_stdout_ends_quietly(tmp_path):
    """`specdyn suite show FILE | head -c1`, with a real pipe: no traceback, the SIGPIPE exit status."""
    suite = tmp_path / "big.jsonl"
    suite.write_text("".join(json.dumps({"id": str(i), "domain": f"domain-{i}", "source": "s",
                                         "messages": [{"role": "user", "content": "hi"}]}) + "\n"
                             for i in range(3000)))  # a table far larger than a pipe's buffer
    env = {"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "specdyn.cli", "suite", "show", str(suite)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.read(1) == str(suite)[:1].encode()
    proc.stdout.close()  # like `head -c1` exiting
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == ""
