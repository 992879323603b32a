"""Compare two `qa eval --json` reports of the same question file, question by question.

    .venv/bin/qa eval eval/tuning_qa.jsonl --json > before.json
    ... change something ...
    .venv/bin/qa eval eval/tuning_qa.jsonl --json > after.json
    .venv/bin/python benchmarks/compare_evals.py before.json after.json

For each figure: before, after, the 95% paired bootstrap interval of the difference, and for right/wrong figures
the questions gained and lost with an exact two-sided sign test on them (qa.evaluation.significance). A difference whose
interval holds 0, or whose p is large, is what another set of questions could undo. When only a handful of
questions changed, go by the sign test: a bootstrap interval built from four changed questions is too narrow
(four lost and none gained: the interval stays below 0, but p = 0.125).
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_DIR))

sys.path.insert(0, str(PROJECT_DIR / "benchmarks"))
from common import command_line  # noqa: E402
from qa.evaluation.significance import PairedChange, paired_changes  # noqa: E402

ANSWERABLE = (("answer hit rate", "hit"), ("exact match", "exact"), ("token F1", "f1"),
              ("false abstentions", "abstained"))
UNANSWERABLE = (("abstained (unanswerable)", "abstained"),)


def same_file(first: str, second: str) -> bool:
    """Whether two reports' `file` fields name one question file: the same path, or (one run given a relative
    path, the other an absolute one) paths to the same file here."""
    if os.path.normpath(first) == os.path.normpath(second):
        return True
    try:
        return os.path.samefile(first, second)
    except OSError:
        return False


def rows_by_id(report: dict, name: str) -> dict[str, dict]:
    rows = report.get("per_question") or []
    if not all(isinstance(row, dict) and "id" in row for row in rows):
        raise ValueError(f"{name}: a per-question row without an id: write it with `qa eval FILE --json`")
    repeated = sorted(i for i, n in Counter(str(row["id"]) for row in rows).items() if n > 1)
    if repeated:
        raise ValueError(f"{name} scores several questions under one id ({shown(repeated)}): questions cannot be "
                         "paired; give them distinct ids in the question file and run qa eval again")
    return {str(row["id"]): row for row in rows}


def shown(ids: list[str], most: int = 3) -> str:
    return ", ".join(ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")


def compare(before: dict, after: dict, names: tuple[str, str] = ("the first report", "the second report")
            ) -> list[PairedChange]:
    if not isinstance(before, dict) or not isinstance(after, dict):
        raise ValueError("not a `qa eval --json` report (a JSON object): write both with `qa eval FILE --json`")
    if "turns_detail" in before or "turns_detail" in after:
        raise ValueError("a report of conversations: compare_evals compares runs of a question file (their "
                         "per-question rows); conversation reports list turns, not questions")
    files = before.get("file"), after.get("file")
    if all(isinstance(f, str) for f in files) and not same_file(*files):
        raise ValueError(f"{names[0]} is a run of {files[0]}, {names[1]} of {files[1]}: their questions cannot be "
                         "paired; compare two runs of the same file")
    old, new = rows_by_id(before, names[0]), rows_by_id(after, names[1])
    if not old or not new:
        raise ValueError("a report without per-question rows: write both with a `qa eval --json` of this version")
    if set(old) != set(new):
        only_old, only_new = sorted(set(old) - set(new)), sorted(set(new) - set(old))
        raise ValueError(f"the reports score different questions ({len(only_old) + len(only_new)} not in both; "
                         f"only in {names[0]}: {shown(only_old) or '-'}; only in {names[1]}: {shown(only_new) or '-'}"
                         "): compare runs of the same file")
    changes = []
    for answerable, metrics in ((True, ANSWERABLE), (False, UNANSWERABLE)):
        ids = [i for i in old if old[i]["answerable"] is answerable]
        if not ids:
            continue
        for label, key in metrics:
            changes.append(paired_changes(label, ids, [float(old[i][key]) for i in ids],
                                          [float(new[i][key]) for i in ids]))
    return changes


def show(changes: list[PairedChange]) -> str:
    lines = [f"{'figure':<26} {'n':>4} {'before':>7} {'after':>7} {'change':>7}  {'95% interval':<17} "
             f"{'gained':>6} {'lost':>5} {'sign test p':>11}"]
    for c in changes:
        spread = f"{c.difference_interval[0]:+.3f} to {c.difference_interval[1]:+.3f}" if c.difference_interval else ""
        counts = (f"{len(c.gained):>6} {len(c.lost):>5} {c.sign_test_p:>11.3f}" if c.sign_test_p is not None
                  else f"{'':>6} {'':>5} {'':>11}")
        lines.append(f"{c.metric:<26} {c.questions:>4} {c.before:>7.3f} {c.after:>7.3f} {c.difference:>+7.3f}  "
                     f"{spread:<17} {counts}".rstrip())
    for c in changes:
        if c.gained or c.lost:
            lines.append(f"{c.metric}: gained {', '.join(c.gained) or '-'}; lost {', '.join(c.lost) or '-'}")
    return "\n".join(lines)


def main() -> int:
    parser = command_line(__doc__)
    parser.add_argument("before", type=Path, help="qa eval --json report of the first run")
    parser.add_argument("after", type=Path, help="qa eval --json report of the second run, same file")
    args = parser.parse_args()
    try:
        reports = []
        for path in (args.before, args.after):
            try:
                reports.append(json.loads(path.read_text(encoding="utf-8")))
            except json.JSONDecodeError:
                raise ValueError(f"{path} is not a `qa eval --json` report (not JSON)") from None
        changes = compare(*reports, names=(str(args.before), str(args.after)))
    except (OSError, ValueError) as exc:
        print(f"compare_evals: {exc}", file=sys.stderr)
        return 2
    print(show(changes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
