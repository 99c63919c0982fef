"""Distillation data, batches and losses without any model: split, truncation, hashing, positions, order."""

from __future__ import annotations

import math

import pytest
import torch

from specdyn.distill.batches import collate, step_indices
from specdyn.distill.data import Example, split, truncate
from specdyn.distill.losses import position_losses
from specdyn.distill.settings import DistillConfig, TokenLevel, validate
from specdyn.errors import SpecdynError


def examples(n: int) -> list[Example]:
    return [Example(f"d/{i}", tuple(range(i % 5 + 2)), tuple(range(100, 103 + i % 3))) for i in range(n)]


def test_split_is_seeded_disjoint_and_sized():
    data = examples(50)
    a, b, c = split(data, 0, 64), split(data, 0, 64), split(data, 1, 64)
    assert a == b and a.data_hash == b.data_hash
    assert {e.prompt_id for e in a.val} != {e.prompt_id for e in c.val} and a.data_hash != c.data_hash
    assert len(a.val) == 10 and len(a.train) == 40
    assert {e.prompt_id for e in a.train} | {e.prompt_id for e in a.val} == {e.prompt_id for e in data}
    assert not {e.prompt_id for e in a.train} & {e.prompt_id for e in a.val}
    assert len(split(examples(3), 0, 64).val) == 2  # at least two held out


def test_data_hash_covers_every_token():
    data = examples(20)
    changed = list(data)
    changed[7] = Example(data[7].prompt_id, data[7].prompt_ids, data[7].output_ids[:-1] + (999,))
    assert split(data, 0, 64).data_hash != split(changed, 0, 64).data_hash
    assert split(data, 0, 64).data_hash != split(data, 0, 4).data_hash  # truncation changes the tokens used


def test_truncate_cuts_the_prompt_start_then_the_output_end():
    e = Example("x", (1, 2, 3, 4, 5), (6, 7, 8))
    assert truncate(e, 8) == e
    assert truncate(e, 6) == Example("x", (3, 4, 5), (6, 7, 8))
    assert truncate(e, 3) == Example("x", (5,), (6, 7))
    assert split([e] * 1 + [Example(f"y{i}", (1, 2), (3,)) for i in range(3)], 0, 6).truncated == 1


def test_collate_predicts_exactly_the_output_tokens():
    batch = collate([Example("a", (1, 2, 3), (4, 5)), Example("b", (7,), (8, 9, 10, 11))], pad_id=0)
    assert batch.input_ids.tolist() == [[1, 2, 3, 4, 5], [7, 8, 9, 10, 11]]
    assert batch.labels.tolist() == [4, 5, 8, 9, 10, 11] and batch.n_predicted == 6
    assert batch.predict.tolist() == [[False, False, True, True, False], [True, True, True, True, False]]
    padded = collate([Example("a", (1,), (2,)), Example("b", (1, 2), (3, 4))], pad_id=0)
    assert padded.attention_mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]] and padded.labels.tolist() == [2, 3, 4]


def test_data_order_is_a_fresh_permutation_every_epoch_and_a_function_of_the_step():
    n, bs = 7, 3
    stream = [i for step in range(14) for i in step_indices(n, bs, seed=5, step=step)]
    epochs = [stream[k : k + n] for k in range(0, len(stream), n)]
    assert all(sorted(e) == list(range(n)) for e in epochs) and len(set(map(tuple, epochs))) > 1
    assert step_indices(n, bs, 5, 9) == stream[27:30]
    assert step_indices(n, bs, 6, 0) != step_indices(n, bs, 5, 0) or step_indices(n, bs, 6, 1) != step_indices(n, bs, 5, 1)


def test_token_level_losses():
    torch.manual_seed(0)
    d, t = torch.randn(6, 11), torch.randn(6, 11)
    batch = collate([Example("a", (1,), (2, 3, 4, 5, 6, 7))])
    p, q = t.softmax(-1), d.softmax(-1)
    kl = position_losses(d, batch, TokenLevel.KL, t)
    assert torch.allclose(kl, (p * (p.log() - q.log())).sum(-1), atol=1e-6) and (kl > 0).all()
    tvd = position_losses(d, batch, TokenLevel.TVD, t)
    assert torch.allclose(tvd, 1 - torch.minimum(p, q).sum(-1), atol=1e-6)
    assert position_losses(t, batch, TokenLevel.KL, t).abs().max() < 1e-6
    ce = position_losses(d, batch, TokenLevel.NONE)
    assert math.isclose(float(ce[0]), float(-q[0, 2].log()), rel_tol=1e-5)
    wider = torch.cat([d, torch.full((6, 3), -50.0)], dim=-1)  # a padded vocabulary compares the shared ids
    assert torch.allclose(position_losses(wider, batch, TokenLevel.TVD, t), tvd, atol=1e-5)


@pytest.mark.parametrize("field, value, flag", [
    ("steps", 0, "--steps"), ("rank", 0, "--rank"), ("batch_size", 0, "--batch-size"), ("micro_batch", 0, "--micro-batch"),
    ("min_prompts", 2, "--min-prompts"), ("max_length", 4, "--max-length"), ("lr", 0.0, "--lr"), ("dtype", "float16", "--dtype"),
])
def test_bad_settings(field, value, flag):
    with pytest.raises(SpecdynError, match=flag):
        validate(DistillConfig("d", "x", "y", **{field: value}))
