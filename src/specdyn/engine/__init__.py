"""The engine: draft trees (:mod:`.tree`), proposers and drafters, the labelled KV cache, verification and
the decoding loop (:mod:`.decoder`). Nothing here knows about run folders, reports or commands."""

from specdyn.engine.decoder import GenerationResult, PromptInput, SpeculativeDecoder, target_greedy

__all__ = ["GenerationResult", "PromptInput", "SpeculativeDecoder", "target_greedy"]
