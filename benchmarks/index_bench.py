"""Index build benchmark (a script, not a test).

Prints, for the bundled corpus and for the TyDi QA Indonesian dev passages (one document per paragraph context,
titled with its article's title): full build time and passages/s, the incremental rebuild time after a
one-file edit, a run with nothing changed, the index size on disk, and the process's peak memory.

    .venv/bin/python benchmarks/index_bench.py [TYDI_JSON] [--limit N] [--model NAME]

TYDI_JSON defaults to ../shared/eval/tydiqa_goldp_id_dev.json beside the project (SQuAD format).
"""

from __future__ import annotations

import json
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
from common import SHARED_DIR, at_least_one, command_line, disk_bytes, existing_file, stop  # noqa: E402
from qa.config import DEFAULT_MODEL, Settings  # noqa: E402
from qa.embed import load_embedder  # noqa: E402
from qa.evaluation import EvalError  # noqa: E402
from qa.evaluation.questions import Paragraph, parse_json, parse_squad  # noqa: E402
from qa.evaluation.squad_corpus import write_squad_corpus  # noqa: E402
from qa.files.pointer import current_generation  # noqa: E402
from qa.files.schema import GENERATIONS_DIR  # noqa: E402
from qa.indexer import build_index  # noqa: E402

DEFAULT_TYDI = SHARED_DIR / "eval" / "tydiqa_goldp_id_dev.json"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def squad_paragraphs(source: Path) -> list[Paragraph]:
    """The paragraphs of a SQuAD-format file, or a stop that says what the file is instead."""
    try:
        whole = parse_json(source.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        whole = None
    if not isinstance(whole, dict) or "data" not in whole:
        stop(f"{source} is not SQuAD-format JSON (an object with a `data` list of articles): give a file like "
             f"{DEFAULT_TYDI.name}")
    try:
        return parse_squad(whole, str(source)).paragraphs
    except EvalError as exc:
        stop(str(exc))


def bench(name: str, corpus: Path, workdir: Path, embedder) -> None:
    settings = Settings(corpus_dir=corpus, index_dir=workdir / "index", model=embedder.name)
    files = sorted(p for p in corpus.rglob("*") if p.is_file())

    started = time.perf_counter()
    full = build_index(settings, embedder=embedder)
    full_s = time.perf_counter() - started

    edited = files[len(files) // 2]
    edited.write_text(edited.read_text(encoding="utf-8").rstrip("\n")
                      + " Kalimat tambahan ini ditulis oleh tolok ukur.\n", encoding="utf-8")
    started = time.perf_counter()
    incremental = build_index(settings, embedder=embedder)
    incremental_s = time.perf_counter() - started

    started = time.perf_counter()
    nothing = build_index(settings, embedder=embedder)
    nothing_s = time.perf_counter() - started

    generation = settings.index_dir / GENERATIONS_DIR / current_generation(settings.index_dir)
    print(f"\n== {name}: {len(files)} files, {full.passages} passages, {full.sentences} sentences")
    print(f"full build           {full_s:8.2f} s   {full.passages / full_s:7.1f} passages/s   "
          f"{(full.passages + full.sentences) / full_s:7.1f} texts embedded/s (passages + sentences)")
    print(f"one-file edit        {incremental_s:8.2f} s   updated {incremental.updated}, "
          f"{incremental.embedded_passages} passages re-embedded, {len(incremental.unchanged)} unchanged")
    print(f"nothing changed      {nothing_s:8.2f} s   embedded {nothing.embedded_passages}, "
          f"same generation: {nothing.generation == incremental.generation}")
    print(f"index size on disk   {disk_bytes(generation) / 1e6:8.2f} MB  (one generation: SQLite + FAISS + BM25)")
    print(f"peak memory so far   {peak_rss_mb():8.0f} MB  (ru_maxrss of this process)")


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("tydi", nargs="?", type=existing_file, help="TyDi QA SQuAD-format JSON (default: "
                        "../shared/eval/tydiqa_goldp_id_dev.json, skipped when it is not there)")
    parser.add_argument("--limit", type=at_least_one, default=None, help="only the first N TyDi passages")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="embedding model (default: the bundled one)")
    args = parser.parse_args()
    args.tydi = args.tydi or DEFAULT_TYDI
    paragraphs = squad_paragraphs(args.tydi) if args.tydi.is_file() else None

    print(f"python {platform.python_version()} on {platform.machine()}, model {args.model}")
    started = time.perf_counter()
    embedder = load_embedder(args.model)
    print(f"model load           {time.perf_counter() - started:8.2f} s   peak memory {peak_rss_mb():.0f} MB")

    with tempfile.TemporaryDirectory(prefix="qa-index-bench-") as tmp:
        root = Path(tmp)
        shutil.copytree(PROJECT_DIR / "corpus", root / "bundled" / "corpus")
        bench("bundled corpus", root / "bundled" / "corpus", root / "bundled", embedder)

        if paragraphs is None:
            print(f"\n== TyDi: {args.tydi} not found; skipped")
            return
        corpus = root / "tydi" / "corpus"
        # One document per distinct passage, as `qa eval` indexes a SQuAD file; --limit counts documents.
        distinct = list({(p.title, p.context.strip()): p for p in paragraphs}.values())[:args.limit]
        count = len(set(write_squad_corpus(distinct, corpus)))
        bench(f"TyDi QA id dev passages ({args.tydi.name}, {count} contexts)", corpus, root / "tydi", embedder)


if __name__ == "__main__":
    main()
