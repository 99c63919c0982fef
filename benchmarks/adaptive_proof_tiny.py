"""Tiny stand-ins for `benchmarks/adaptive_proof.sh` (TINY=1): a tiny random Qwen2 pair with the byte
tokenizer (tests/tiny.py) and two short suites (fit, held-out eval) whose four domains alternate.

    python benchmarks/adaptive_proof_tiny.py OUT     # writes OUT/models/{draft,target}, OUT/fit.jsonl, OUT/eval.jsonl
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from tiny import save_tiny_pair  # noqa: E402

from specdyn.suites import Prompt, write_suite  # noqa: E402

DOMAINS = {"code": "def {w}(x):\n    return", "math": "{n} + {n} * {n} =", "logic": "If {w} then not {w}; so",
           "chat": "tell me about {w}"}


def suite(first: int, per_domain: int, rng: random.Random) -> list[Prompt]:
    """``per_domain`` prompts per domain (ids from ``first``), domains alternating."""
    words = ["cache", "tree", "river", "lamp", "seven", "orbit", "quartz", "maple"]
    return [Prompt(f"{d}/{first + i}", d, "tiny", [{"role": "user", "content": template.format(
                w=rng.choice(words), n=rng.randrange(100))}])
            for i in range(per_domain) for d, template in DOMAINS.items()]


def main(out: Path) -> None:
    save_tiny_pair(out / "models")
    rng = random.Random(0)
    write_suite(suite(0, 3, rng), out / "fit.jsonl")
    write_suite(suite(100, 2, rng), out / "eval.jsonl")  # other ids: held out


if __name__ == "__main__":
    main(Path(sys.argv[1]))
