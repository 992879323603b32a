"""How `qa index` embedding throughput scales with worker processes.

    python benchmarks/index_workers.py [--documents 300] [--workers 1,2]

Indexes the first N distinct paragraphs of ../shared/train/ (one article each, as benchmarks/scale.py makes
them) into a fresh temporary index once per worker count, and prints passages embedded per second. Run it on an
otherwise idle machine: the workers compete for the same cores as anything else running.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale import real_paragraphs  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.indexer import build_index  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=300)
    parser.add_argument("--workers", default="1,2")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for number, (title, context) in enumerate(real_paragraphs()[:args.documents]):
            (corpus / f"{number:05d}.txt").write_text(f"{title}\n\n{context}\n", encoding="utf-8")
        for workers in (int(w) for w in args.workers.split(",")):
            index = Path(tmp) / f"index-{workers}"
            started = time.perf_counter()
            report = build_index(Settings(corpus_dir=corpus, index_dir=index, index_workers=workers))
            seconds = time.perf_counter() - started
            print(f"workers {workers}: {report.embedded_passages} passages, {report.sentences} sentences, "
                  f"embedding {report.embed_seconds:.1f} s = {report.embedded_passages / report.embed_seconds:.1f} "
                  f"passages/s; whole build {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
