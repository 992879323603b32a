"""Calibrate the reader's confidence and abstention threshold on the held-out split of the training data.

Never on ../shared/eval/ or eval/: those measure the product. The held-out split (10% of paragraphs, by
paragraph, qa.reader.data) becomes a corpus (Indonesian TyDi QA / IDK-MRC paragraphs and XQuAD paragraphs in a
few languages); every held-out question goes through the whole pipeline (retrieval, sentence ranking, reader),
and a logistic regression of "the answer is right" (token F1 >= 0.5) on the reader's margin and the answer
sentence's similarity to the question gives the confidence. The threshold is the operating point the product
promises: the highest at which at most 3% of the held-out Indonesian TyDi QA questions (answerable, the kind
of question the reader is judged on) are abstained; above it the product would refuse answers it gets right.
English questions (qa.language) get their own threshold: the highest at which at most 5% of the held-out English
questions answered right (XQuAD's, over German, Vietnamese and Russian passages) would be refused; the near-topic
unanswerable ones (XQuAD paragraphs without their answers' sentences) show what it buys.
Prints the curve (and, for reference, the threshold that would maximise the share of questions handled right);
--write stores the calibration in the reader's card.

    .venv/bin/python benchmarks/calibrate.py [--write] [--limit N] [--json OUT]
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

import numpy as np

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
from common import SHARED_DIR, at_least_one, command_line, existing_file, file_to_write, stop  # noqa: E402
from qa.answer import gather_evidence  # noqa: E402
from qa.evaluation.metrics import max_token_f1  # noqa: E402
from qa.language import question_language  # noqa: E402
from qa.reader.data import TrainingDataError, held_out_corpus  # noqa: E402
from qa.reader.runtime import CARD_FILE, Calibration, ReaderRuntime  # noqa: E402

RIGHT_F1 = 0.5
MAX_FALSE_ABSTENTION = 0.03  # of held-out answerable Indonesian TyDi QA questions
# English questions over other languages' passages are answered wrong far more often (held-out XQuAD: ~6 in 10
# through the whole pipeline), so refusing a share of all of them says little; their threshold refuses at most
# this share of the ones answered right.
MAX_ENGLISH_RIGHT_REFUSED = 0.05


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, steps: int = 50) -> np.ndarray:
    """Weights (features..., bias) by Newton's method on the log-loss with a small L2 penalty."""
    design = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(design.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-design @ w))
        gradient = design.T @ (p - y) + l2 * w
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + l2 * np.eye(len(w))
        w -= np.linalg.solve(hessian, gradient)
    return w


def highest_threshold(confidence: np.ndarray, most_refused: float) -> float:
    """The highest threshold (in hundredths) at which at most `most_refused` of these confidences fall below it."""
    return max((t for t in np.round(np.arange(0.0, 1.0, 0.01), 2) if (confidence < t).mean() <= most_refused),
               default=0.0)


def print_curve(table: list[dict], best: dict | None = None) -> None:
    print("| threshold | handled right | answerable abstained | answerable wrong | unanswerable answered |")
    print("|---|---|---|---|---|")
    for r in table:
        mark = " (most handled right)" if r is best else ""
        print(f"| {r['threshold']:.2f}{mark} | {r['handled_right']:.3f} | {r['answerable_abstained']:.3f} | "
              f"{r['answerable_wrong']:.3f} | {r['unanswerable_answered']:.3f} |")


def curve(confidence: np.ndarray, right: np.ndarray, answerable: np.ndarray) -> list[dict]:
    rows = []
    for threshold in np.round(np.arange(0.05, 0.96, 0.05), 2):
        answered = confidence >= threshold
        handled = np.where(answerable, answered & right, ~answered)
        rows.append({"threshold": float(threshold),
                     "handled_right": round(float(handled.mean()), 4),
                     "answerable_abstained": round(float((~answered[answerable]).mean()), 4),
                     "answerable_wrong": round(float((answered & ~right)[answerable].mean()), 4),
                     "unanswerable_answered": round(float(answered[~answerable].mean()), 4)})
    return rows


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--data", type=Path, default=SHARED_DIR / "train", help="the training data folder")
    parser.add_argument("--card", type=existing_file, default=CARD_FILE, help="the reader's card (reader.json)")
    parser.add_argument("--limit", type=at_least_one, default=None, help="questions asked at most (a quick look)")
    parser.add_argument("--write", action="store_true", help="store the calibration in the reader's card")
    parser.add_argument("--json", type=file_to_write, help="write every question's features and outcome here")
    args = parser.parse_args()
    if args.write and args.limit:
        parser.error("a calibration written into the card must be fitted on the whole held-out split; drop --limit, "
                     "or drop --write to look at a sample")

    try:
        eval_set, corpus = held_out_corpus(args.data)
    except TrainingDataError as exc:
        stop(str(exc))

    from qa.embed import load_embedder
    from qa.files.reader import load_index

    index = load_index(corpus.settings.index_dir)
    embedder = load_embedder()
    reader = ReaderRuntime(args.card, calibrated=False)
    questions = eval_set.questions
    if args.limit and args.limit < len(questions):
        questions = random.Random(0).sample(questions, args.limit)
    rows = []
    for n, q in enumerate(questions):
        evidence = gather_evidence(index, embedder, reader, q.question, 5, threads=2)
        reading = evidence.reading
        text = index.documents[reading.sentence.doc_id].text[reading.start:reading.end] if reading else None
        f1 = max_token_f1(text, q.answers) if q.answerable else 0.0
        rows.append({"id": q.id, "question": q.question, "answerable": q.answerable, "answer": text,
                     "gold": q.answers, "f1": round(f1, 4),
                     "margin": reading.margin if reading else -50.0,
                     "dense": reading.sentence.dense if reading else 0.0})
        if (n + 1) % 100 == 0:
            print(f"{n + 1} of {len(questions)} questions", file=sys.stderr)
    margin = np.array([r["margin"] for r in rows])
    dense = np.array([r["dense"] for r in rows])
    answerable = np.array([r["answerable"] for r in rows])
    right = np.array([r["f1"] >= RIGHT_F1 for r in rows])
    w = fit_logistic(np.stack([margin, dense], axis=1), right.astype(float))
    fitted = Calibration(margin=w[0], dense=w[1], bias=w[2])
    confidence = np.array([fitted.confidence(m, d) for m, d in zip(margin, dense)])
    table = curve(confidence, right, answerable)
    best = max(table, key=lambda r: r["handled_right"])
    tydi = np.array([r["id"].startswith("tydi-id") for r in rows])
    threshold = highest_threshold(confidence[tydi], MAX_FALSE_ABSTENTION)
    english = np.array([question_language(r["question"]) == "en" for r in rows])
    english_threshold = max(threshold, highest_threshold(confidence[english & right], MAX_ENGLISH_RIGHT_REFUSED))
    kinds = {}
    for r in rows:
        kinds.setdefault(r["id"].rsplit("-", 1)[0], []).append(r)
    print(f"questions: {len(rows)} ({int(answerable.sum())} answerable); by source: "
          + ", ".join(f"{k} {len(v)}" for k, v in kinds.items()))
    print(f"answerable: mean F1 {np.mean([r['f1'] for r in rows if r['answerable']]):.3f} "
          f"(before abstention), right (F1 >= {RIGHT_F1}) {right[answerable].mean():.3f}")
    print(f"confidence = sigmoid({w[0]:.3f} * margin + {w[1]:.3f} * dense + {w[2]:.3f})")
    print()
    print_curve(table, best)
    answered = np.where(english, confidence >= english_threshold, confidence >= threshold)
    for name, group in (("English", english), ("Indonesian", ~english)):
        print(f"{name} questions: {int(group.sum())} ({int(answerable[group].sum())} answerable); curve:")
        print_curve(curve(confidence[group], right[group], answerable[group]))
    near = np.array([r["id"].startswith("xquad-near") for r in rows])
    for name, t in (("Indonesian", threshold), ("English", english_threshold)):
        print(f"at the {name} threshold {t:.2f}, English questions: right answers refused "
              f"{(confidence[english & right] < t).mean():.3f}, answerable refused "
              f"{(confidence[english & answerable] < t).mean():.3f}, near-topic unanswerable abstained "
              f"{(confidence[near] < t).mean():.3f}, other unanswerable abstained "
              f"{(confidence[english & ~answerable & ~near] < t).mean():.3f}")
    print(f"\nthreshold {threshold:.2f} (English questions {english_threshold:.2f}): held-out TyDi QA (Indonesian) "
          f"abstained {(~answered[tydi]).mean():.3f}, "
          f"all answerable abstained {(~answered[answerable]).mean():.3f}, unanswerable answered "
          f"{answered[~answerable].mean():.3f}, handled right "
          f"{np.where(answerable, answered & right, ~answered).mean():.3f}")
    calibration = {"margin": round(float(w[0]), 5), "dense": round(float(w[1]), 5), "bias": round(float(w[2]), 5),
                   "threshold": float(threshold), "english_threshold": float(english_threshold),
                   "questions": len(rows), "answerable": int(answerable.sum()), "curve": table}
    if args.write:  # first: the card is what the run was for
        card = json.loads(args.card.read_text(encoding="utf-8"))
        card["calibration"] = calibration
        args.card.write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"written to {args.card}")
    if args.json:
        args.json.write_text(json.dumps({"calibration": calibration, "rows": rows}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
