"""Typed specs: canonical text, limits known without expanding a tree, strict parsing, recorded form."""

from __future__ import annotations

import time

import pytest

from specdyn.errors import SpecdynError
from specdyn.specs import (
    MAX_TREE_NODES, DomainTrees, DynamicTree, EarlyExitDrafter, LookupDrafter, ModelDrafter, PathsTree, StaticTree,
    domain_filename, parse_domain_trees, parse_drafter, parse_tree, tree_from_record, tree_record,
)


@pytest.mark.parametrize("text, spec", [
    ("static:depth=3,branch=2", StaticTree(3, 2)),
    ("dynamic:nodes=16,depth=5,topk=4", DynamicTree(16, 5, 4)),
])
def test_tree_text_is_canonical(text, spec):
    assert parse_tree(text) == spec and spec.text == text and parse_tree(spec.text) == spec
    assert parse_tree(text.replace(",", " , ").replace("=", " = ")) == spec  # spaces around keys are fine


def test_drafter_text_is_canonical():
    for spec in (ModelDrafter(), LookupDrafter(2), EarlyExitDrafter(8)):
        assert parse_drafter(spec.text) == spec
    assert ModelDrafter().text == "model" and LookupDrafter().text == "lookup:ngram=3"


def test_limits_without_expanding():
    assert StaticTree(3, 2).max_nodes == 14 and StaticTree(3, 2).max_depth == 3
    assert DynamicTree(16, 5, 4).max_nodes == 16 and DynamicTree(16, 5, 4).shape is None
    assert StaticTree(1, 200).max_nodes == 200 and StaticTree(2, 31).max_nodes == 31 + 31**2
    start = time.perf_counter()
    for text in ("static:depth=1000,branch=255", "static:depth=1024,branch=2", f"static:depth=1,branch={10**40}",
                 "dynamic:nodes=1024,depth=65536,topk=255", "static:depth=" + "9" * 5000 + ",branch=2"):
        with pytest.raises(SpecdynError):
            parse_tree(text)
    assert time.perf_counter() - start < 1.0  # nothing was built
    assert StaticTree(MAX_TREE_NODES, 1).max_nodes == MAX_TREE_NODES  # a 1024-node chain is fine


@pytest.mark.parametrize("text, message", [
    ("static:depth=3,depth=4,branch=2", "key 'depth' is given twice"),
    ("static:depth=3,branch=2,topk=1", "expected exactly static:depth=D,branch=B"),
    ("static:depth=2.5,branch=2", "expected key=integer pairs"),
    ("static:depth=" + "9" * 5000 + ",branch=2", "far too large"),
    ("dynamic:nodes=0,depth=2,topk=2", "needs nodes >= 1"),
    ("dynamic:nodes=2,depth=2,topk=256", "needs topk <= 255"),
    ("static:depth=11,branch=2", "more than 1024 nodes"),
    ("chain:depth=3", "unknown tree 'chain'"),
])
def test_malformed_trees(text, message):
    with pytest.raises(SpecdynError, match=message.replace("(", r"\(").replace(".", r"\.")):
        parse_tree(text)


def test_paths_tree_is_read_once_and_recorded(tmp_path):
    f = tmp_path / "t.json"
    f.write_text("[[1], [0], [0, 0]]")
    tree = parse_tree(f"paths:{f}")
    assert isinstance(tree, PathsTree) and tree.source == f.resolve() and tree.shape.paths == ((0,), (1,), (0, 0))
    record = tree_record(tree)
    f.unlink()
    assert tree_from_record(record, "manifest") == tree  # the file is not read again
    assert tree_record(StaticTree(1, 2)) == {"spec": "static:depth=1,branch=2", "paths": [[0], [1]]}
    assert tree_record(DynamicTree(4, 2, 2))["paths"] is None


def test_domain_trees(tmp_path):
    assert parse_domain_trees("") is None
    (tmp_path / "code.json").write_text("[[0], [0, 0]]")
    (tmp_path / "budget.json").write_text('{"not": "a tree"}')  # budget's summary is skipped
    trees = DomainTrees.load(str(tmp_path))
    assert set(trees.files) == {"code.json"} and trees.tree_for("code").shape.size == 2 and trees.tree_for("chat") is None
    (tmp_path / "notes.json").write_text('{"x": 1}')
    with pytest.raises(SpecdynError, match="notes.json"):
        DomainTrees.load(str(tmp_path))


def test_domain_filename():
    assert domain_filename("code") == "code.json" and domain_filename("a b/c") == "a_b_c.json"
    assert domain_filename("budget") == "budget_domain.json" and domain_filename("..") == "domain.json"
