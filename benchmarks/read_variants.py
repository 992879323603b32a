"""Compare ways of choosing the answer among the reader's candidates collected by benchmarks/read_candidates.py:
how many passages are read, how much retrieval's score weighs, and the diagnosis of the failures.

    PYTHONPATH=. python benchmarks/read_variants.py CANDIDATES.json [--diagnose]
"""

from __future__ import annotations

import json
import math
import sys
from collections import Counter
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
from common import command_line, existing_file, stop  # noqa: E402
from qa.evaluation.metrics import contains_gold, max_token_f1  # noqa: E402
from qa.reader.runtime import CARD_FILE, Calibration, read_card  # noqa: E402


def promising(row: dict, considered: int = 3, weight: float = 0.5) -> list[dict]:
    """The first `considered` passages ordered as qa.reader.read.passages_to_read orders them: the cosine of
    their best sentence plus `weight` x their retrieval score (relative to the best)."""
    top = row["passages"][0]["score"] if row["passages"] else 0.0
    return sorted(row["passages"][:considered], reverse=True,
                  key=lambda p: max((c["dense"] for c in p["candidates"]), default=-1.0) + weight * (p["score"] - top))


def choose(row: dict, passages: int, weight: float, feature: str = "score", order: str = "retrieval"):
    """The chosen candidate (with its passage) among the first `passages` passages, or None. `order`:
    "retrieval" (retrieval's ranking) or "promise" (the reader's passage choice, read.passages_to_read)."""
    best, chosen = -math.inf, None
    ranked = row["passages"] if order == "retrieval" else promising(row, max(3, passages))
    top = max((p[feature] for p in ranked[:passages]), default=0.0)
    for rank, p in enumerate(ranked[:passages]):
        for c in p["candidates"]:
            if not c["text"]:
                continue
            value = c["score"] - c["null"] + weight * (p[feature] - top)
            if value > best:
                best, chosen = value, (c, p, rank)
    return chosen


def outcome(row: dict, chosen) -> dict:
    if chosen is None:
        return {"text": None, "hit": False, "f1": 0.0, "margin": -50.0, "dense": 0.0}
    c, p, rank = chosen
    text = c["text"]
    return {"text": text, "hit": row["answerable"] and contains_gold(text, row["gold"]),
            "f1": max_token_f1(text, row["gold"]) if row["answerable"] else 0.0,
            "margin": c["score"] - c["null"], "dense": c["dense"], "rank": rank, "passage_score": p["score"],
            "top_score": row["passages"][0]["score"], "sentence_gold": c["sentence_gold"], "passage": p}


def summary(rows: list[dict], passages: int, weight: float, calibration: Calibration, feature: str = "score",
            order: str = "retrieval") -> dict:
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]
    outs = {r["id"]: outcome(r, choose(r, passages, weight, feature, order)) for r in rows}

    def conf(o):
        return calibration.confidence(o["margin"], o["dense"]) if o["text"] else 0.0
    answered = {i: conf(o) >= calibration.threshold for i, o in outs.items()}
    tydi = [r for r in answerable if r["id"].startswith("tydi-id")]
    result = {
        "hit_before_abstention": sum(outs[r["id"]]["hit"] for r in answerable) / max(1, len(answerable)),
        "hit": sum(outs[r["id"]]["hit"] and answered[r["id"]] for r in answerable) / max(1, len(answerable)),
        "f1_before_abstention": sum(outs[r["id"]]["f1"] for r in answerable) / max(1, len(answerable)),
        "f1": sum(outs[r["id"]]["f1"] * answered[r["id"]] for r in answerable) / max(1, len(answerable)),
        "false_abstention": sum(not answered[r["id"]] for r in answerable) / max(1, len(answerable)),
        "unanswerable_abstained": (sum(not answered[r["id"]] for r in unanswerable) / len(unanswerable)
                                   if unanswerable else None),
    }
    if tydi:
        result["tydi_id_f1"] = sum(outs[r["id"]]["f1"] * answered[r["id"]] for r in tydi) / len(tydi)
        result["tydi_id_false_abstention"] = sum(not answered[r["id"]] for r in tydi) / len(tydi)
    return result


def diagnose(rows: list[dict], order: str = "retrieval") -> None:
    answerable = [r for r in rows if r["answerable"]]
    at = Counter()
    categories = Counter()
    for r in answerable:
        ranks = [i for i, p in enumerate(r["passages"]) if any(c["sentence_gold"] for c in p["candidates"])]
        first = ranks[0] + 1 if ranks else None
        for k in (1, 2, 3, 5):
            at[k] += first is not None and first <= k
        o = outcome(r, choose(r, 1, 0.0, order=order))
        read = o.get("passage")
        if o["hit"]:
            category = "right"
        elif first is None:
            category = "gold sentence not in top 5 passages"
        elif not any(c["sentence_gold"] for c in read["candidates"]):
            category = f"gold sentence first in passage {first} (not read)" if first <= 3 else \
                "gold sentence only in passages 4-5 (not read)"
        elif o["sentence_gold"]:
            category = "right sentence, wrong span"
        else:
            category = "gold in passage read, reader chose another sentence"
        categories[category] += 1
        if category != "right":
            golds_read = [c for c in read["candidates"] if c["sentence_gold"]] if read else []
            gold_margin = max((c["score"] - c["null"] for c in golds_read), default=None)
            print(f"{r['id']} [{r['lang']}/{r['kind']}] {category}\n   Q: {r['question']}\n   gold: {r['gold']}"
                  f"\n   answer: {o['text']!r} (margin {o['margin']:.1f}, gold-sentence best margin in the passage read: "
                  f"{'-' if gold_margin is None else f'{gold_margin:.1f}'})")
            if first and category.startswith("gold sentence first"):
                p = r["passages"][first - 1]
                best = max(p["candidates"], key=lambda c: c["score"] - c["null"])
                print(f"   passage {first}'s own answer: {best['text']!r} (margin {best['score'] - best['null']:.1f}, "
                      f"retrieval {p['score'] - r['passages'][0]['score']:+.3f})")
    n = len(answerable)
    print(f"\n{n} answerable; gold sentence in top-1/2/3/5 passages: "
          + " / ".join(f"{at[k] / n:.3f}" for k in (1, 2, 3, 5)))
    for category, count in categories.most_common():
        print(f"  {category}: {count}")


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("candidates", type=existing_file, help="the JSON file benchmarks/read_candidates.py wrote")
    parser.add_argument("--diagnose", action="store_true", help="also sort the failures by cause")
    parser.add_argument("--feature", default="score", choices=["score", "dense"],
                        help="retrieval score the weight applies to: the fused score or the dense cosine")
    parser.add_argument("--order", default="promise", choices=["retrieval", "promise"],
                        help="which passages are read first: retrieval's ranking or the reader's choice")
    args = parser.parse_args()
    try:
        rows = json.loads(args.candidates.read_text(encoding="utf-8"))
    except ValueError:
        stop(f"{args.candidates} is not JSON: give the file benchmarks/read_candidates.py --out wrote")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) and "passages" in r for r in rows):
        stop(f"{args.candidates} holds no questions of benchmarks/read_candidates.py")
    calibration = Calibration.of(read_card(CARD_FILE))
    if args.diagnose:
        diagnose(rows, args.order)
    print("\n| passages | weight | hit/F1 before abstention | hit/F1 | false abstention | unanswerable abstained |")
    for passages in (1, 2, 3, 5):
        for weight in ((0.0,) if passages == 1 else (0.0, 2.0, 20.0, 50.0, 100.0, 200.0)):
            s = summary(rows, passages, weight, calibration, args.feature, args.order)
            extra = (f" | TyDi-id F1 {s['tydi_id_f1']:.3f} FA {s['tydi_id_false_abstention']:.3f}"
                     if "tydi_id_f1" in s else "")
            ua = "-" if s["unanswerable_abstained"] is None else f"{s['unanswerable_abstained']:.3f}"
            print(f"| {passages} | {weight:g} | {s['hit_before_abstention']:.3f} / {s['f1_before_abstention']:.3f} | "
                  f"{s['hit']:.3f} / {s['f1']:.3f} | {s['false_abstention']:.3f} | {ua}{extra} |")


if __name__ == "__main__":
    main()
