"""The instruction put around each benchmark item, per default domain. All prompt wording lives here.

Every template has the same shape: one short, neutral instruction line, a blank line, then the
benchmark item. The result is the single user message of the prompt; the model's own chat template
is applied later, by the engine. The exact text is stored in each prompt's ``messages``.
"""

from __future__ import annotations

from enum import StrEnum


class Domain(StrEnum):
    """Domains of the default suite (user suites may use any domain names)."""

    CODE = "code"
    MATH = "math"
    LOGIC = "logic"
    CHAT = "chat"


TEMPLATES: dict[Domain, str] = {
    Domain.CODE: "Complete the following Python function. Return only the code.\n\n```python\n{prompt}```",
    Domain.MATH: "Solve the following problem step by step, then give the final answer.\n\n{question}",
    Domain.LOGIC: (
        "Read the passage, then answer the question. "
        "Answer with the letter of the correct option and explain briefly.\n\n"
        "Passage: {passage}\n\nQuestion: {question}\n\n{options}"
    ),
    Domain.CHAT: "{turn}",  # MT-Bench first turns are already instructions: used as they are
}


def render(domain: Domain, **fields: str) -> str:
    """The user message for one benchmark item."""
    return TEMPLATES[domain].format(**fields)


def lettered(options: list[str]) -> str:
    """``A. first\\nB. second ...``"""
    return "\n".join(f"{chr(ord('A') + i)}. {text}" for i, text in enumerate(options))
