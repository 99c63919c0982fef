"""Defaults that several layers share, defined once: the default model pair, tree and drafter, and the
context length the cost measurement prefills."""

from specdyn.specs import ModelDrafter, StaticTree

DEFAULT_DRAFT = "qwen2.5-coder-0.5b-instruct"
DEFAULT_TARGET = "qwen2.5-coder-1.5b-instruct"
DEFAULT_TREE = StaticTree(depth=3, branch=2)
DEFAULT_DRAFTER = ModelDrafter()
TIMING_CONTEXT = 100  # committed tokens per row in the cache while pass costs are timed
CHEAP_VOCAB = 32768  # tokens a truncated draft head keeps in the cheaper drafters `specdyn budget --measure` times
