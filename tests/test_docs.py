"""Docs agree with the code: record field docs, CLI sub-commands and README commands."""

from __future__ import annotations

from pathlib import Path

from specdyn.cli import build_parser
from specdyn.records import NodeRecord, StepRecord, Timing, markdown_table

ROOT = Path(__file__).resolve().parents[1]


def test_records_doc_matches_field_docs():
    text = (ROOT / "docs" / "records.md").read_text()
    for cls in (NodeRecord, StepRecord, Timing):
        assert markdown_table(cls) in text


def test_readme_mentions_every_subcommand_and_ci_runs_its_test_command():
    readme = (ROOT / "README.md").read_text()
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    for name in sub.choices:
        assert f"specdyn {name}" in readme, name
    test_cmd = next(line for line in readme.splitlines() if "pytest" in line).strip().strip("`")
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def test_ci_installs_the_ray_extra_it_tests():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'ray = ["ray[default]' in pyproject
    readme = (ROOT / "README.md").read_text()
    test_cmd = next(line for line in readme.splitlines() if "pytest" in line)
    assert "pip install -e '.[models,test,ray]'" in test_cmd
