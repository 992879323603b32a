"""Calibration of the abstention threshold (a script, not a test).

Asks the development set (answerable and unanswerable questions) and the project's own set of questions the
bundled articles do not answer (eval/unanswerable.jsonl) with abstention switched off, and prints each
question's confidence, then, for candidate thresholds, how many answerable questions would be abstained
(false abstentions) and how many unanswerable ones would be answered (false answers).

    .venv/bin/python benchmarks/calibrate.py [--index index/] [FILE.jsonl ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

from qa.config import Settings  # noqa: E402
from qa.service import QAService  # noqa: E402

DEFAULT_FILES = [PROJECT_DIR.parent / "shared" / "eval" / "dev_qa.jsonl", PROJECT_DIR / "eval" / "unanswerable.jsonl"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", type=Path, default=DEFAULT_FILES)
    parser.add_argument("--index", type=Path, default=PROJECT_DIR / "index")
    args = parser.parse_args()
    service = QAService(Settings(index_dir=args.index, abstain_threshold=0.0))
    rows = []
    for file in args.files:
        for line in file.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            item = json.loads(line)
            answer = service.ask(item["question"])
            answerable = item.get("answerable", True) and bool(item["answers"])
            correct = answerable and answer.answer is not None and any(
                gold.lower() in answer.answer.lower() for gold in item["answers"])
            rows.append((answer.confidence, answerable, correct, item["question"], answer.answer))
    rows.sort()
    print(f"{'confidence':>10}  {'kind':<12} question -> answer")
    for confidence, answerable, correct, question, answer in rows:
        kind = "unanswerable" if not answerable else ("right" if correct else "wrong")
        print(f"{confidence:10.3f}  {kind:<12} {question[:60]} -> {answer}")
    print(f"\n{'threshold':>9} {'answerable abstained':>21} {'unanswerable answered':>22} {'wrong answers kept':>19}")
    answerable_n = sum(1 for r in rows if r[1])
    unanswerable_n = len(rows) - answerable_n
    for threshold in [x / 20 for x in range(4, 17)]:
        false_abstain = sum(1 for c, a, _, _, _ in rows if a and c < threshold)
        false_answer = sum(1 for c, a, _, _, _ in rows if not a and c >= threshold)
        wrong_kept = sum(1 for c, a, ok, _, _ in rows if a and not ok and c >= threshold)
        print(f"{threshold:9.2f} {false_abstain:>14} of {answerable_n:<4} {false_answer:>15} of {unanswerable_n:<4}"
              f" {wrong_kept:>18}")


if __name__ == "__main__":
    main()
