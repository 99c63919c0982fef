"""Distilled adapters for decoding: merge an adapter (read and checked before any model loads by
:mod:`specdyn.adapter_spec`) into a loaded draft."""

from __future__ import annotations

import dataclasses
import warnings

from specdyn.adapter_spec import ADAPTER_FILES, DISTILL_FILE, AdapterInfo, adapter_id, check_adapter_base, read_adapter

__all__ = ["ADAPTER_FILES", "DISTILL_FILE", "AdapterInfo", "adapter_id", "apply_adapter", "check_adapter_base", "read_adapter"]


def apply_adapter(draft, info: AdapterInfo):
    """A copy of the LoadedModel ``draft`` whose model has the adapter merged into its weights (plain
    module, no peft wrapper at decode time). ``draft.model`` itself is changed: do not reuse it."""
    from peft import PeftModel

    check_adapter_base(info, draft.name, draft.weights_id)
    dtype = next(draft.model.parameters()).dtype
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # peft calls a transformers API deprecated for v6
        merged = PeftModel.from_pretrained(draft.model, info.path).merge_and_unload()
    return dataclasses.replace(draft, model=merged.to(dtype).eval())
