"""How much an evaluation figure could move, and comparing two runs question by question."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qa.evaluation.significance import interval, paired_changes, sign_test

PROJECT_DIR = Path(__file__).resolve().parent.parent


def test_the_interval_of_a_hit_rate_is_as_wide_as_its_number_of_questions_allows():
    small = interval([1.0] * 42 + [0.0] * 17)  # 59 questions at 0.712
    large = interval([1.0] * 420 + [0.0] * 170)
    assert small[0] < 0.712 < small[1] and large[0] < 0.712 < large[1]
    assert 0.2 < small[1] - small[0] < 0.3  # about +-0.12
    assert large[1] - large[0] < (small[1] - small[0]) / 2.5
    assert interval([0.5, 0.5, 0.5]) == [0.5, 0.5]
    assert interval([1.0]) is None and interval([]) is None
    assert interval([1.0] * 42 + [0.0] * 17) == small  # seeded: the same report twice
    assert interval([0.2, 0.9, 0.4, 0.7]) == interval([0.2, 0.9, 0.4, 0.7])  # F1 and the like: bootstrap, seeded


def test_a_rate_where_every_question_came_out_alike_still_has_a_width():
    assert interval([1.0, 1.0, 1.0]) == [0.4385, 1.0]  # 3 of 3 right: Wilson's interval
    assert interval([0.0] * 48) == [0.0, 0.0741]


def test_the_sign_test_counts_only_the_questions_that_changed():
    assert sign_test(0, 4) == 0.125  # 4 lost, none gained: 2 x (1/2)^4
    assert sign_test(4, 0) == 0.125
    assert sign_test(3, 3) == 1.0 and sign_test(0, 0) == 1.0
    assert sign_test(10, 0) == pytest.approx(2 / 1024, abs=1e-4)
    assert sign_test(9, 1) == pytest.approx(2 * 11 / 1024, abs=1e-4)


def test_paired_changes_name_the_questions_gained_and_lost():
    change = paired_changes("hit", ["a", "b", "c", "d"], [1, 0, 1, 0], [1, 1, 0, 0])
    assert change.gained == ["b"] and change.lost == ["c"]
    assert change.before == change.after == 0.5 and change.difference == 0.0
    assert change.sign_test_p == 1.0
    f1 = paired_changes("f1", ["a", "b"], [0.5, 0.25], [1.0, 0.25])
    assert f1.gained == [] and f1.sign_test_p is None and f1.difference == 0.25
    with pytest.raises(ValueError, match="same questions"):
        paired_changes("hit", ["a"], [1, 0], [1, 0])


def test_two_runs_that_agree_on_every_question_differ_by_nothing_not_by_a_rate_interval():
    # A difference of 0 on every question is no change; read as a rate of 0 of 48 it would be 0 to 0.074.
    same = paired_changes("hit", [str(i) for i in range(48)], [1.0] * 15 + [0.0] * 33, [1.0] * 15 + [0.0] * 33)
    assert same.difference_interval == [0.0, 0.0] and same.gained == same.lost == []
    one_gained = paired_changes("hit", [str(i) for i in range(48)], [0.0] * 48, [1.0] + [0.0] * 47)
    assert one_gained.difference_interval[0] == 0.0 and one_gained.difference_interval[1] < 0.074


def _report(hits: dict[str, bool], abstained: dict[str, bool]) -> dict:
    rows = [{"id": i, "answerable": True, "hit": h, "exact": h, "f1": float(h), "abstained": False}
            for i, h in hits.items()]
    rows += [{"id": i, "answerable": False, "abstained": a} for i, a in abstained.items()]
    return {"per_question": rows}


def test_compare_evals_prints_what_changed_and_refuses_different_files(tmp_path):
    before = _report({"q1": True, "q2": False, "q3": True, "q4": True}, {"u1": False, "u2": True})
    after = _report({"q1": True, "q2": True, "q3": False, "q4": False}, {"u1": True, "u2": True})
    (tmp_path / "before.json").write_text(json.dumps(before))
    (tmp_path / "after.json").write_text(json.dumps(after))
    script = str(PROJECT_DIR / "benchmarks" / "compare_evals.py")
    run = subprocess.run([sys.executable, script, str(tmp_path / "before.json"), str(tmp_path / "after.json")],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert "answer hit rate: gained q2; lost q3, q4" in run.stdout
    assert "abstained (unanswerable): gained u1; lost -" in run.stdout
    hit_line = next(line for line in run.stdout.splitlines() if line.startswith("answer hit rate "))
    assert hit_line.split()[3:6] == ["4", "0.750", "0.500"]

    (tmp_path / "other.json").write_text(json.dumps(_report({"q9": True}, {})))
    refused = subprocess.run([sys.executable, script, str(tmp_path / "before.json"), str(tmp_path / "other.json")],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "different questions" in refused.stderr
    (tmp_path / "old.json").write_text(json.dumps({"answers": {}}))
    old = subprocess.run([sys.executable, script, str(tmp_path / "old.json"), str(tmp_path / "after.json")],
                         capture_output=True, text=True, timeout=60)
    assert old.returncode == 2 and "per-question rows" in old.stderr
    (tmp_path / "talks.json").write_text(json.dumps({"turns_detail": []}))
    talks = subprocess.run([sys.executable, script, str(tmp_path / "talks.json"), str(tmp_path / "talks.json")],
                           capture_output=True, text=True, timeout=60)
    assert talks.returncode == 2 and "a report of conversations" in talks.stderr
    (tmp_path / "report.txt").write_text("answer hit rate 0.5\n")
    text = subprocess.run([sys.executable, script, str(tmp_path / "report.txt"), str(tmp_path / "after.json")],
                          capture_output=True, text=True, timeout=60)
    assert text.returncode == 2
    assert f"{tmp_path / 'report.txt'} is not a `qa eval --json` report (not JSON)" in text.stderr

