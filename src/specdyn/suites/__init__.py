"""Prompt suites: the data model and file format, validation, and the default benchmark suite.

Public API::

    Prompt, Role, Domain
    default_suite(per_domain=50, seed=0) -> list[Prompt]
    load_suite(path) -> list[Prompt]          # validates
    write_suite(prompts, path)                # validates, then writes atomically
    validate(prompts)
    summarize(prompts, count_tokens=None) -> list[DomainSummary]
"""

from specdyn.suites.default import BENCHMARKS, default_suite
from specdyn.suites.prompts import Prompt, Role, dumps_suite, load_suite, validate, write_suite
from specdyn.suites.summary import DomainSummary, Stats, summarize
from specdyn.suites.templates import TEMPLATES, Domain

__all__ = [
    "BENCHMARKS", "TEMPLATES", "Domain", "DomainSummary", "Prompt", "Role", "Stats",
    "default_suite", "dumps_suite", "load_suite", "summarize", "validate", "write_suite",
]  # fmt: skip
