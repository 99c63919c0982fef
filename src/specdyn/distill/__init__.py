"""Domain-distilled drafts: fine-tune the draft toward the target on one domain of a run folder (the
target's recorded outputs), as a LoRA adapter, and merge such an adapter into a draft for decoding.

Pipeline: :mod:`.data` (run folder -> checked train/validation split) -> :mod:`.batches` -> :mod:`.losses`
-> :mod:`.train` (loop, checkpoints) -> :mod:`.job` (checks, output folder); :mod:`.adapter` loads the
result for decoding. See docs/distill.md.
"""

from specdyn.distill.adapter import AdapterInfo, adapter_id, apply_adapter, check_adapter_base, read_adapter
from specdyn.distill.job import DistillJob, DistillResult, FolderState, distill, prepare
from specdyn.distill.settings import DistillConfig, TokenLevel

__all__ = ["AdapterInfo", "DistillConfig", "DistillJob", "DistillResult", "FolderState", "TokenLevel",
           "adapter_id", "apply_adapter", "check_adapter_base", "distill", "prepare", "read_adapter"]
