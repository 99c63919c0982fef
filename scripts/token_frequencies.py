"""Make the token-frequency list a truncated-vocabulary draft (``--drafter model:vocab=K``) keeps its K tokens from.

The counts come from text that ships with the installed software and has nothing to do with the
evaluation prompts or their outputs, so the list cannot leak the default suite:

- the Python standard library's sources (code, comments, docstrings, and ``pydoc_data/topics.py``, the
  language reference as English text);
- the sources of scientific packages specdyn's dependencies install (numpy, scipy, sympy, statsmodels,
  pandas, networkx, matplotlib: code, and docstrings full of English and mathematics);
- every package's own documentation in ``site-packages``: ``*.dist-info/METADATA`` (READMEs), licence
  texts, ``*.md``, ``*.rst`` and ``*.txt`` files.

Test suites (``test/``, ``tests/``, ``idle_test/``) are left out. The tokenizer's added (special) tokens
always lead the list. The package versions read are recorded in the list's ``source``.

    python scripts/token_frequencies.py                      # the default draft -> <cache>/token_lists/
    python scripts/token_frequencies.py --package            # -> src/specdyn/data/token_lists/ (shipped)
    python scripts/token_frequencies.py --model org/name --limit 65536 --out DIR

The shipped list (src/specdyn/data/token_lists/qwen2.5.json) was made with ``--package`` on Python 3.11.7
with the package versions recorded in its ``source``; other versions give slightly different counts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sysconfig
from importlib.metadata import version
from pathlib import Path

from tqdm import tqdm

from specdyn.cachedir import cache_root
from specdyn.defaults import DEFAULT_DRAFT
from specdyn.files import write_text_atomic
from specdyn.models import load_tokenizer
from specdyn.token_lists import LIST_DIR, PACKAGE_DIR, count_tokens, list_record

SKIP_PARTS = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
PACKAGES = ("numpy", "scipy", "sympy", "statsmodels", "pandas", "networkx", "matplotlib")
DOC_SUFFIXES = {".md", ".rst", ".txt"}


def _sources(root: Path) -> list[Path]:
    """``root``'s .py files, test suites left out."""
    return [p for p in root.rglob("*.py") if not SKIP_PARTS & set(p.relative_to(root).parts)]


def _docs(site: Path) -> list[Path]:
    """Documentation files anywhere in site-packages: METADATA, licences, *.md, *.rst, *.txt."""
    return [p for p in site.rglob("*") if p.is_file() and not SKIP_PARTS & set(p.relative_to(site).parts)
            and (p.suffix in DOC_SUFFIXES or p.name == "METADATA" or p.name.startswith("LICENSE"))]


def corpus_files() -> list[Path]:
    """Every file counted (see the module docstring), in path order."""
    site = Path(sysconfig.get_paths()["purelib"])
    files = _sources(Path(sysconfig.get_paths()["stdlib"])) + _docs(site)
    files += [p for pkg in PACKAGES if (site / pkg).is_dir() for p in _sources(site / pkg)]
    return sorted(set(files))


def package_versions() -> dict[str, str]:
    return {pkg: version(pkg) for pkg in PACKAGES if importlib.util.find_spec(pkg)}


def texts(files: list[Path]):
    for f in tqdm(files, unit="file", desc="counting tokens"):
        yield f.read_text(encoding="utf-8", errors="replace")


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=DEFAULT_DRAFT, help="whose tokenizer (registry name, folder or hub id)")
    ap.add_argument("--name", default="qwen2.5", help="list file name (without .json)")
    ap.add_argument("--limit", type=int, default=65536, help="tokens kept in the list (the largest usable K)")
    ap.add_argument("--package", action="store_true", help=f"write into {PACKAGE_DIR} (the shipped lists)")
    ap.add_argument("--out", help=f"folder to write to (default {cache_root() / LIST_DIR})")
    return ap.parse_args()


def main() -> None:
    args = parse_args()
    tok = load_tokenizer(args.model)
    files = corpus_files()
    counts = count_tokens(lambda t: tok(t, add_special_tokens=False)["input_ids"], texts(files))
    source = {"corpus": "Python standard library sources, the sources of " + ", ".join(PACKAGES) + " and the "
              "documentation files (METADATA, licences, *.md, *.rst, *.txt) of site-packages; test suites excluded",
              "python": platform.python_version(), "packages": package_versions(), "files": len(files),
              "tokens_counted": sum(counts.values()),
              "distinct_tokens": len(counts), "tokenizer_of": args.model,
              "script": "scripts/token_frequencies.py"}
    record = list_record(tok.get_vocab(), args.name, counts, sorted(tok.added_tokens_decoder), source, args.limit)
    out = PACKAGE_DIR if args.package else Path(args.out) if args.out else cache_root() / LIST_DIR
    path = out / f"{args.name}.json"
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json_text(record))
    print(f"wrote {path}: {len(record['tokens'])} tokens from {source['tokens_counted']:,} counted "
          f"({source['distinct_tokens']:,} distinct) in {len(files)} files")


def json_text(record: dict) -> str:
    """One key per line, the long id lists on one line each (compact, diffable)."""
    lines = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False, separators=(',', ':') if isinstance(v, list) else None)}"
             for k, v in record.items()]
    return "{\n" + ",\n".join(lines) + "\n}\n"


if __name__ == "__main__":
    main()
