"""A run made with --domain-trees is read back with each domain's own tree."""

from specdyn.budget.runs import domain_config, run_shape


def test_domain_config_picks_the_domains_paths_file(tmp_path):
    (tmp_path / "code.json").write_text("[[0], [0, 0]]")
    config = {"tree": "static:depth=3,branch=2", "domain_trees": str(tmp_path)}
    assert domain_config(config, "code")["tree"] == f"paths:{tmp_path / 'code.json'}"
    assert run_shape(domain_config(config, "code")).paths == ((0,), (0, 0))
    assert domain_config(config, "chat")["tree"] == "static:depth=3,branch=2"
    assert domain_config({"tree": "static:depth=1,branch=1"}, "code")["tree"] == "static:depth=1,branch=1"


def test_budget_refuses_domains_sharing_a_file_name(tmp_path):
    from types import SimpleNamespace

    import pytest

    from specdyn.budget.output import write_plans
    from specdyn.errors import SpecdynError

    plans = [SimpleNamespace(domain="a b"), SimpleNamespace(domain="a_b")]
    with pytest.raises(SpecdynError, match="same file name a_b.json"):
        write_plans(tmp_path / "out", plans, {}, {})
    assert not (tmp_path / "out").exists()
