"""The engine: draft trees (:mod:`.tree`), proposers and drafters, the labelled KV cache, verification and
the decoding loop (:mod:`.decoder`). Nothing here knows about run folders, reports or commands."""

from specdyn.engine.decoder import GenerationResult, PromptInput, SpeculativeDecoder
from specdyn.engine.reference import target_greedy, target_sample
from specdyn.sampling_spec import Children, Sampling

__all__ = ["Children", "GenerationResult", "PromptInput", "Sampling", "SpeculativeDecoder", "target_greedy",
           "target_sample"]
