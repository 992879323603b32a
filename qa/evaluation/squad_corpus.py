"""A SQuAD file's passages as a corpus (one document per distinct paragraph), indexed into a cache folder keyed by
the file's sha256 and the index settings, so that a second run on the same file embeds nothing."""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


from qa.config import Settings, user_cache_dir
from qa.evaluation import EvalError
from qa.evaluation.questions import EvalSet, Paragraph

# Bump when the way a SQuAD file becomes a corpus changes, so cached indexes are rebuilt.
SQUAD_CORPUS_VERSION = 1
READY_FILE = "ready.json"


def default_cache_dir(settings: Settings) -> Path:
    return settings.eval_cache_dir.expanduser() if settings.eval_cache_dir else user_cache_dir("eval")


def squad_cache_key(data: bytes, settings: Settings) -> str:
    from qa.files.schema import INDEX_FORMAT
    from qa.indexer import PIPELINE_VERSION

    wanted = {
        "file_sha256": hashlib.sha256(data).hexdigest(),
        "corpus_version": SQUAD_CORPUS_VERSION,
        "pipeline_version": PIPELINE_VERSION,
        "index_format": INDEX_FORMAT,  # a cached index this version cannot open is built again, not reused
        "model": settings.model,
        "passage_sentences": settings.passage_sentences,
        "passage_overlap": settings.passage_overlap,
        "passage_max_chars": settings.passage_max_chars,
    }
    return hashlib.sha256(json.dumps(wanted, sort_keys=True).encode()).hexdigest()[:24]


def _document_text(paragraph: Paragraph) -> str:
    import yaml

    front = yaml.safe_dump({"title": paragraph.title}, allow_unicode=True, default_flow_style=False, width=10_000)
    return f"---\n{front}---\n{paragraph.context.strip()}\n"


def write_squad_corpus(paragraphs: Sequence[Paragraph], corpus_dir: Path) -> list[str]:
    """One .txt file per distinct (title, context); returns the doc_id of every paragraph, in order."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    names: dict[tuple[str, str], str] = {}
    doc_ids = []
    for paragraph in paragraphs:
        key = (paragraph.title, paragraph.context.strip())
        if key not in names:
            name = f"p{len(names) + 1:05d}.txt"
            names[key] = name
            path = corpus_dir / name
            content = _document_text(paragraph)
            if not path.is_file() or path.read_text(encoding="utf-8") != content:
                path.write_text(content, encoding="utf-8")
        doc_ids.append(names[key])
    wanted = set(names.values())
    for stale in corpus_dir.glob("*.txt"):
        if stale.name not in wanted:
            stale.unlink()
    return doc_ids


@dataclass
class SquadCorpus:
    settings: Settings  # corpus_dir and index_dir point into the cache
    cache_dir: Path
    doc_ids: list[str]  # per paragraph
    reused: bool
    documents: int
    skipped: list[dict]
    build_seconds: float


def prepare_squad_corpus(eval_set: EvalSet, data: bytes, settings: Settings, cache_root: Path,
                         progress: bool) -> SquadCorpus:
    """Write and index the passages of a SQuAD file into the cache, or reuse the cached index."""
    from filelock import FileLock, Timeout

    from qa.embed import ModelLoadError
    from qa.files.pointer import current_generation
    from qa.index_rows import BuildError
    from qa.indexer import build_index

    cache_dir = cache_root / squad_cache_key(data, settings)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EvalError(f"cannot create the eval cache folder {cache_dir}: {exc.strerror or exc} "
                        "(set QA_EVAL_CACHE_DIR to a writable folder)") from exc
    # The passages of a SQuAD file are indexed into the cache folder, never into the database the product serves.
    corpus_settings = settings.model_copy(update={"corpus_dir": cache_dir / "corpus", "index_dir": cache_dir / "index",
                                                  "database_url": None})
    lock = FileLock(str(cache_dir / "prepare.lock"))
    try:
        lock.acquire(timeout=3600)
    except Timeout:
        raise EvalError(f"another eval is still preparing {cache_dir}") from None
    try:
        doc_ids = write_squad_corpus(eval_set.paragraphs, corpus_settings.corpus_dir)
        ready = cache_dir / READY_FILE
        if ready.is_file() and current_generation(corpus_settings.index_dir):
            info = json.loads(ready.read_text(encoding="utf-8"))
            return SquadCorpus(corpus_settings, cache_dir, doc_ids, True, info.get("documents", 0),
                               info.get("skipped", []), 0.0)
        bar = None

        def on_file(done: int, total: int, name: str) -> None:
            nonlocal bar
            if bar is None:
                from tqdm import tqdm

                bar = tqdm(total=total, unit="paragraph", desc="indexing paragraphs", file=sys.stderr)
            bar.update(1)

        try:
            report = build_index(corpus_settings, progress=on_file if progress else None, lock_timeout=600)
        except (BuildError, ModelLoadError) as exc:
            raise EvalError(f"could not index the passages of the SQuAD file: {exc}") from exc
        finally:
            if bar is not None:
                bar.close()
        skipped = [{"path": s.path, "reason": s.reason} for s in report.skipped]
        documents = len(report.added) + len(report.updated) + len(report.unchanged)
        ready.write_text(json.dumps({"documents": documents, "skipped": skipped, "generation": report.generation,
                                     "seconds": round(report.seconds, 1)}, indent=2), encoding="utf-8")
        return SquadCorpus(corpus_settings, cache_dir, doc_ids, False, documents, skipped, report.seconds)
    finally:
        lock.release()
