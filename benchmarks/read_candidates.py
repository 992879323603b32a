"""Collect, for every question of a question file, what the reader says about each of the top retrieved passages,
so that ways of choosing among them (how many passages, how much retrieval weighs, what abstains) can be
compared offline without reading again.

For each question: the retrieved hits (fused, dense and lexical scores) and, for each of the top `--depth`
passages read alone (as `read_answer` reads one), every sentence's best span with its score, the passage's
"no answer" score and the sentence's cosine with the question; and, for a question file about the bundled
articles, which passages and sentences hold a gold answer. Only the tuning set and the held-out split of the
training data are meant to go through it (never ../shared/eval/ or eval/heldout_*: those measure the product).

    PYTHONPATH=. python benchmarks/read_candidates.py eval/tuning_qa.jsonl eval/tuning_unanswerable.jsonl --out X.json
    PYTHONPATH=. python benchmarks/read_candidates.py --held-out --out Y.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from qa.answer import SUPPORT_DEPTH  # noqa: E402
from qa.config import Settings  # noqa: E402
sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
from common import SHARED_DIR, at_least_one, command_line, existing_file, file_to_write, stop  # noqa: E402
from qa.evaluation import EvalError  # noqa: E402
from qa.evaluation.metrics import contains_gold  # noqa: E402
from qa.evaluation.questions import load_eval_set  # noqa: E402
from qa.reader.data import TrainingDataError, held_out_corpus  # noqa: E402
from qa.reader.read import tidy_span  # noqa: E402
from qa.reader.runtime import ReaderRuntime  # noqa: E402
from qa.retrieve import retrieve  # noqa: E402
from qa.sentences import rank_sentences  # noqa: E402


def collect(index, embedder, reader, questions, depth: int, gold_docs=None) -> list[dict]:
    rows = []
    for n, q in enumerate(questions):
        question = " ".join(q.question.split())
        started = time.perf_counter()
        vector = embedder.encode_queries([question], threads=2)[0]
        hits = retrieve(index, vector, question, max(depth, SUPPORT_DEPTH))
        ranked = rank_sentences(index, hits, vector)
        by_row = {s.row: s for s in ranked}
        passages = []
        for hit in hits[:depth]:
            passage = index.passages[hit.passage_row]
            sentences = [by_row[r] for r in index.passage_sentence_rows[hit.passage_row] if r in by_row]
            parts = [(s.start - passage.start, s.end - passage.start) for s in sentences]
            spans = reader.read(question, passage.text, 2, parts)
            cands = []
            for sentence, span in zip(sentences, spans):
                if span is None:
                    continue
                start = passage.start + span.start - sentence.start
                end = passage.start + span.end - sentence.start
                start, end = tidy_span(sentence.text, start, end)
                text = sentence.text[start:end] if start < end else ""
                cands.append({"text": text, "score": span.score, "null": span.null, "dense": sentence.dense,
                              "sentence_gold": contains_gold(sentence.text, q.answers) if q.answerable else False})
            passages.append({"passage": hit.passage_row, "doc": passage.doc_id, "score": hit.score,
                             "dense": hit.dense, "lexical": hit.lexical,
                             "gold_doc": bool(gold_docs and passage.doc_id in gold_docs(q)),
                             "has_gold": contains_gold(passage.text, q.answers) if q.answerable else False,
                             "candidates": cands})
        rows.append({"id": q.id, "question": question, "answerable": q.answerable, "gold": q.answers,
                     "lang": q.lang, "kind": q.kind, "passages": passages,
                     "ms": round((time.perf_counter() - started) * 1000, 1)})
        if (n + 1) % 100 == 0:
            print(f"{n + 1} of {len(questions)}", file=sys.stderr, flush=True)
    return rows


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("files", nargs="*", type=existing_file,
                        help="question files (JSONL) about the articles of the index in QA_INDEX_DIR")
    parser.add_argument("--held-out", action="store_true",
                        help="also the held-out split of the training data in --data")
    parser.add_argument("--data", type=Path, default=SHARED_DIR / "train", help="the training data folder")
    parser.add_argument("--depth", type=at_least_one, default=5, help="passages read per question")
    parser.add_argument("--out", type=file_to_write, required=True, help="the JSON file to write")
    args = parser.parse_args()
    if not args.files and not args.held_out:
        parser.error("give question files, --held-out, or both")

    from qa.embed import load_embedder
    from qa.files.reader import load_index

    embedder = load_embedder()
    reader = ReaderRuntime()
    rows = []
    if args.held_out:
        try:
            eval_set, corpus = held_out_corpus(args.data)
        except TrainingDataError as exc:
            stop(str(exc))
        index = load_index(corpus.settings.index_dir)
        paragraph_doc = corpus.doc_ids
        rows += collect(index, embedder, reader, eval_set.questions, args.depth,
                        lambda q: {paragraph_doc[q.paragraph]} if q.answerable else set())
    if args.files:
        index = load_index(Settings().index_dir)
        for file in args.files:
            try:
                eval_set, _ = load_eval_set(file)
            except EvalError as exc:
                stop(str(exc))

            def gold(q, index=index):
                return {d for d, doc in index.documents.items()
                        if str(doc.meta.get("source_id", "")).lower() in {s.lower() for s in q.sources}}
            rows += collect(index, embedder, reader, eval_set.questions, args.depth, gold)
    args.out.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    print(f"{len(rows)} questions written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
