"""``specdyn budget --export ENGINE[,ENGINE]``: the recommended trees as serving-engine settings.

- vLLM (``vllm/<domain>.json``): a ``speculative_config`` fragment, ``num_speculative_tokens`` (the number
  of tree nodes) and ``speculative_token_tree`` (the string of rank tuples vLLM parses with
  ``ast.literal_eval`` and sorts breadth-first, e.g. ``"[(0,), (0, 0), (0, 1)]"``). Always exact: vLLM
  verifies the given static tree.
- SGLang (``sglang/<domain>.json``): ``speculative_num_steps`` (the tree depth), ``speculative_eagle_topk``
  (the most children of any node) and ``speculative_num_draft_tokens`` (nodes + 1: SGLang counts the
  last verified token). SGLang's EAGLE-2 tree is not given but chosen at every step by draft confidence
  within these limits (the topk best frontier nodes of a level are expanded with their topk best tokens,
  then the best num_draft_tokens - 1 candidates are kept). The settings are exact when that choice cannot
  differ from the tree: a chain (topk 1), or the full topk-ary tree of depth 1 or 2 with every candidate
  kept; any other tree is labelled approximate.

See ``docs/budget.md`` (section 8) for the sources and for routing requests per domain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from specdyn.errors import SpecdynError
from specdyn.files import write_text_atomic
from specdyn.specs import TreeShape, static_shape


class Engine(Enum):
    VLLM = "vllm"
    SGLANG = "sglang"


class Mapping(Enum):
    """How closely an engine's settings reproduce the tree."""

    EXACT = "exact"
    APPROXIMATE = "approximate"


def parse_engines(text: str) -> list[Engine]:
    """``vllm``, ``sglang`` or both, comma-separated; anything else is a one-line error."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = ", ".join(e.value for e in Engine)
    bad = [n for n in names if n not in {e.value for e in Engine}]
    if bad or not names:
        raise SpecdynError(f"--export: unknown engine {bad[0]!r} (choose from {known})" if bad else f"--export needs an engine ({known})")
    return list(dict.fromkeys(Engine(n) for n in names))


def token_tree(shape: TreeShape) -> str:
    """vLLM's ``speculative_token_tree``: the rank paths as a Python list of tuples, breadth-first."""
    return str([tuple(p) for p in shape.paths])


def vllm_config(shape: TreeShape) -> dict:
    """The ``speculative_config`` keys that carry the tree (add ``method`` and ``model`` for your drafter)."""
    return {"num_speculative_tokens": shape.size, "speculative_token_tree": token_tree(shape)}


def max_children(shape: TreeShape) -> int:
    """The most children any node (or the root) has."""
    return max(len(shape.child_ranks(prefix)) for prefix in ((), *shape.paths))


@dataclass(frozen=True)
class SglangSettings:
    """SGLang's three tree limits for a shape, and whether they reproduce it (see the module docstring)."""

    steps: int
    topk: int
    draft_tokens: int
    mapping: Mapping

    def to_json(self) -> dict:
        settings = {"speculative_num_steps": self.steps, "speculative_eagle_topk": self.topk,
                    "speculative_num_draft_tokens": self.draft_tokens}
        flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in settings.items())
        return {"settings": settings, "flags": flags, "mapping": self.mapping.value, "rule": SGLANG_RULE}


SGLANG_RULE = ("steps = tree depth; topk = most children of any node; draft tokens = nodes + 1 (at most topk + "
               "(steps - 1) * topk^2 + 1, the candidates SGLang scores); exact when SGLang's confidence-chosen tree "
               "cannot differ: a chain (topk 1) or the full topk-ary tree of depth 1 or 2; approximate otherwise")


def sglang_settings(shape: TreeShape) -> SglangSettings:
    topk, steps = max_children(shape), shape.depth
    nodes = min(shape.size, topk + (steps - 1) * topk**2)
    forced = shape.paths == static_shape(steps, topk).paths and (topk == 1 or steps <= 2)
    return SglangSettings(steps, topk, nodes + 1, Mapping.EXACT if forced else Mapping.APPROXIMATE)


def export_trees(out: Path, trees: dict[str, TreeShape], engines: list[Engine]) -> list[Path]:
    """Write ``out/<engine>/<file name>`` for each (file name -> shape) and engine; return the files."""
    written = []
    for engine in engines:
        for name, shape in trees.items():
            doc = vllm_config(shape) if engine is Engine.VLLM else sglang_settings(shape).to_json()
            path = out / engine.value / name
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SpecdynError(f"cannot write export folder {path.parent}: {exc.strerror}") from None
            write_text_atomic(path, json.dumps(doc, indent=2) + "\n")
            written.append(path)
    return written
