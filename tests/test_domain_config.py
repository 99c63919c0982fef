"""A run made with --domain-trees is read back with each domain's own tree."""

from types import SimpleNamespace

import pytest

from specdyn.budget.output import write_plans
from specdyn.config import RunConfig
from specdyn.errors import SpecdynError
from specdyn.specs import PathsTree, StaticTree


def test_tree_for_picks_the_domains_paths_file(tmp_path):
    (tmp_path / "code.json").write_text("[[0], [0, 0]]")
    config = RunConfig(tree="static:depth=3,branch=2", domain_trees=str(tmp_path))
    code = config.tree_for("code")
    assert isinstance(code, PathsTree) and code.text == f"paths:{tmp_path.resolve() / 'code.json'}"
    assert code.shape.paths == ((0,), (0, 0))
    assert config.tree_for("chat") == StaticTree(3, 2)
    assert RunConfig(tree="static:depth=1,branch=1").tree_for("code").text == "static:depth=1,branch=1"


def test_budget_refuses_domains_sharing_a_file_name(tmp_path):
    plans = [SimpleNamespace(domain="a b"), SimpleNamespace(domain="a_b")]
    with pytest.raises(SpecdynError, match="same file name a_b.json"):
        write_plans(tmp_path / "out", plans, {}, {})
    assert not (tmp_path / "out").exists()
