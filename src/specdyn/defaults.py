"""Defaults that several layers share, defined once: the default model pair and tree."""

DEFAULT_DRAFT = "qwen2.5-coder-0.5b-instruct"
DEFAULT_TARGET = "qwen2.5-coder-1.5b-instruct"
DEFAULT_TREE = "static:depth=3,branch=2"
