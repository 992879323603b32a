"""How `qa index` embedding throughput scales with worker processes.

    python benchmarks/index_workers.py [--documents 300] [--workers 1,2]

Needs ../shared (train/ and eval/tydiqa_goldp_id_dev.json) beside the project. Indexes the first N distinct
paragraphs of those files (one article each, as benchmarks/scale.py makes them) into a fresh temporary index once
per worker count, and prints passages embedded per second. Run it on an
otherwise idle machine: the workers compete for the same cores as anything else running.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import at_least_one, command_line, counts  # noqa: E402
from scale import real_paragraphs  # noqa: E402

from qa.config import Settings  # noqa: E402
from qa.indexer import build_index  # noqa: E402


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--documents", type=at_least_one, default=300, help="articles indexed per run")
    parser.add_argument("--workers", type=counts, default="1,2", help="worker counts to run, one after the other")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = Path(tmp) / "corpus"
        corpus.mkdir()
        for number, (title, context) in enumerate(real_paragraphs()[:args.documents]):
            (corpus / f"{number:05d}.txt").write_text(f"{title}\n\n{context}\n", encoding="utf-8")
        for workers in args.workers:
            index = Path(tmp) / f"index-{workers}"
            started = time.perf_counter()
            report = build_index(Settings(corpus_dir=corpus, index_dir=index, index_workers=workers))
            seconds = time.perf_counter() - started
            print(f"workers {workers}: {report.embedded_passages} passages, {report.sentences} sentences, "
                  f"embedding {report.embed_seconds:.1f} s = {report.embedded_passages / report.embed_seconds:.1f} "
                  f"passages/s; whole build {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
