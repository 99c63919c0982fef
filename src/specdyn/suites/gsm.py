"""GSM-Symbolic problems from reasoning-gym's generator functions, without installing reasoning-gym.

reasoning-gym's ``gsm_symbolic`` task is 100 functions ``generate_<n>(rng, difficulty)``, each a
parametrised grade-school word problem; upstream marks some as broken (``tasks_need_fix``) and
samples only ``tasks_ok``. The generator modules import only the standard library and two helpers
from ``reasoning_gym.utils`` (itself standard-library only), so specdyn executes exactly these three
source files from the pinned wheel in private module objects: the rest of reasoning-gym (and its
dependencies) is never imported. A problem is fully determined by (generator index, seed):
``generate_<n>(random.Random(seed), 1.0)``, as reasoning-gym does with difficulty 1.0.
"""

from __future__ import annotations

import ast
import builtins
import random
import types
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from specdyn.errors import SpecdynError
from specdyn.suites.sources import REASONING_GYM, read_member

PACKAGE_DIR = "reasoning_gym/arithmetic/gsm_symbolic"
TASK_LIST_FILE = f"{PACKAGE_DIR}/gsm_symbolic.py"
GENERATOR_FILES = (f"{PACKAGE_DIR}/generators_00_49.py", f"{PACKAGE_DIR}/generators_50_99.py")
UTILS_FILE = "reasoning_gym/utils.py"
DIFFICULTY = 1.0  # the only difficulty reasoning-gym supports for this task

Generator = Callable[[random.Random, float], dict[str, Any]]


def _source(member: str) -> str:
    return read_member(REASONING_GYM, member).decode("utf-8")


def _module(name: str, member: str, importer: Callable | None = None) -> types.ModuleType:
    """Execute one file of the wheel as a fresh module (not registered in sys.modules)."""
    module = types.ModuleType(f"specdyn._wheel.{name}")
    module.__file__ = f"{REASONING_GYM.requirement}/{member}"
    if importer is not None:
        module.__dict__["__builtins__"] = {**vars(builtins), "__import__": importer}
    exec(compile(_source(member), module.__file__, "exec"), module.__dict__)  # noqa: S102 (pinned, hash-checked)
    return module


def _importer(utils: types.ModuleType) -> Callable:
    """An ``__import__`` that serves ``reasoning_gym.utils`` from ``utils`` and nothing else of it."""

    def imp(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "reasoning_gym.utils" and fromlist:
            return utils
        if name.split(".")[0] == "reasoning_gym" or level:
            raise ImportError(f"specdyn does not load {name} from reasoning-gym")
        return builtins.__import__(name, globals, locals, fromlist, level)

    return imp


@lru_cache(maxsize=1)
def generators() -> dict[int, Generator]:
    """Generator index -> function, for the generators reasoning-gym marks usable."""
    utils = _module("reasoning_gym_utils", UTILS_FILE)
    found: dict[int, Generator] = {}
    for member in GENERATOR_FILES:
        module = _module(member.rsplit("/", 1)[-1][:-3], member, _importer(utils))
        found.update({int(k[9:]): v for k, v in vars(module).items() if k.startswith("generate_")})
    return {n: found[n] for n in usable_indices()}


def usable_indices() -> list[int]:
    """``tasks_ok`` from reasoning-gym's dataset module, read with ast (the module is not run)."""
    for node in ast.parse(_source(TASK_LIST_FILE)).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "tasks_ok" for t in node.targets):
            return list(ast.literal_eval(node.value))
    raise SpecdynError(f"{REASONING_GYM.requirement}: no tasks_ok list in {TASK_LIST_FILE}")


def generate(index: int, seed: int) -> dict[str, Any]:
    """One problem: ``{"question", "answer", "metadata"}`` as reasoning-gym's generators return it."""
    table = generators()
    if index not in table:
        raise SpecdynError(f"GSM-Symbolic generator {index} is not one of the usable generators")
    return table[index](random.Random(seed), DIFFICULTY)
