"""`qa eval` on a file of conversations: how well follow-up questions are answered with their history and
without it.

One JSON object a line: `{"id": ..., "lang": ..., "turns": [{"question": ..., "answers": [...], "leans": true}]}`.
`leans` marks a turn that cannot be understood without the earlier ones (a pronoun, an ellipsis); the first
turn never leans. Each conversation is asked as a user would ask it: every turn with the earlier turns and the
answers the service gave them. Each later turn is also asked alone, which is what the service did before it
took history, so the report shows what history changes: on leaning turns (it should help) and on
self-contained later turns (it should not hurt).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa.config import Settings
from qa.evaluation import EvalError
from qa.evaluation.metrics import contains_gold, percentiles
from qa.evaluation.questions import jsonl_objects, parse_json, read_eval_text
from qa.evaluation.run import check_run_options, open_service
from qa.followup import earlier_turn, in_turn
from qa.validation import InvalidQuestion


@dataclass
class ConversationTurn:
    question: str
    answers: list[str]
    leans: bool


@dataclass
class Conversation:
    id: str
    lang: str | None
    turns: list[ConversationTurn]


def is_conversation_file(file: Path) -> bool:
    """True when the file's first JSON line is a conversation (has `turns`)."""
    try:
        _, text = read_eval_text(Path(file))
        first = next((line for line in text.splitlines() if line.strip()), "")
        return isinstance(obj := parse_json(first), dict) and "turns" in obj
    except (EvalError, json.JSONDecodeError):
        return False


def parse_conversations(text: str, name: str) -> list[Conversation]:
    conversations = []
    for where, number, obj in jsonl_objects(text, name):
        turns = obj.get("turns") if isinstance(obj, dict) else None
        if not isinstance(turns, list) or not turns:
            raise EvalError(f"{where}: expected an object with a non-empty `turns` list")
        parsed = []
        for position, turn in enumerate(turns, 1):
            if not isinstance(turn, dict) or not isinstance(turn.get("question"), str) or not turn["question"].strip():
                raise EvalError(f"{where}, turn {position}: `question` must be a non-empty string")
            answers = turn.get("answers")
            if not isinstance(answers, list) or not answers or not all(isinstance(a, str) for a in answers):
                raise EvalError(f"{where}, turn {position}: `answers` must be a non-empty list of strings")
            if not isinstance(turn.get("leans", False), bool):
                raise EvalError(f"{where}, turn {position}: `leans` must be true or false")
            parsed.append(ConversationTurn(turn["question"].strip(), answers, bool(turn.get("leans")) and position > 1))
        lang = obj.get("lang")
        conversations.append(Conversation(str(obj.get("id") or f"line{number}"), lang if isinstance(lang, str) else None,
                                          parsed))
    if not conversations:
        raise EvalError(f"{name} holds no conversations")
    return conversations


def evaluate_conversations(file: Path, settings: Settings, top_k: int | None = None, limit: int | None = None,
                           progress: bool = False) -> dict:
    top_k = check_run_options(settings, top_k, limit)
    _, text = read_eval_text(Path(file))
    conversations = parse_conversations(text, str(file))[:limit]
    service = open_service(settings)
    service.warm()
    from tqdm import tqdm

    rows = []
    for conversation in tqdm(conversations, desc="conversations", unit="conversation", file=sys.stderr,
                             disable=not progress):
        answers = in_turn(lambda q, history: service.ask(q, top_k, history), [t.question for t in conversation.turns],
                          settings.max_history_turns)
        for position, turn in enumerate(conversation.turns, 1):
            try:
                with_history = next(answers)
                alone = service.ask(turn.question, top_k) if position > 1 else with_history
            except InvalidQuestion as exc:
                raise EvalError(f"{file}, conversation {conversation.id}, turn {position}: {exc}") from None
            given, given_alone = earlier_turn(with_history).answer, earlier_turn(alone).answer
            rows.append({
                "id": f"{conversation.id}.{position}", "lang": conversation.lang, "position": position,
                "leans": turn.leans, "question": turn.question, "gold": turn.answers,
                "answer": given, "hit": contains_gold(given, turn.answers),
                "answer_alone": given_alone, "hit_alone": contains_gold(given_alone, turn.answers),
                "context_used": with_history.context_used,
                "ms": with_history.timings_ms.get("total"),
            })
    return conversation_report(str(file), len(conversations), rows)


def _rate(rows: list[dict], key: str) -> dict:
    return {"value": round(float(np.mean([r[key] for r in rows])), 4) if rows else None, "n": len(rows)}


def conversation_report(file: str, conversations: int, rows: list[dict]) -> dict:
    groups = {
        "first turns": [r for r in rows if r["position"] == 1],
        "leaning turns": [r for r in rows if r["leans"]],
        "self-contained later turns": [r for r in rows if r["position"] > 1 and not r["leans"]],
    }
    by_lang: dict[str, list[dict]] = {}
    for row in rows:
        if row["leans"] and row["lang"]:
            by_lang.setdefault(row["lang"], []).append(row)
    return {
        "file": file,
        "format": "conversations",
        "conversations": conversations,
        "turns": len(rows),
        "hit_rate": {name: {"with_history": _rate(group, "hit"), "without_history": _rate(group, "hit_alone")}
                     for name, group in groups.items()},
        "leaning_turns_by_lang": {lang: {"with_history": _rate(group, "hit"), "without_history": _rate(group, "hit_alone")}
                                  for lang, group in sorted(by_lang.items())},
        "context_used_on_leaning_turns": _rate([{"used": bool(r["context_used"])} for r in groups["leaning turns"]],
                                               "used"),
        "context_used_on_self_contained_turns": _rate(
            [{"used": bool(r["context_used"])} for r in groups["self-contained later turns"]], "used"),
        "latency_ms": percentiles([r["ms"] for r in rows if r["ms"] is not None]),
        "turns_detail": rows,
    }


def format_conversation_report(report: dict) -> str:
    def cell(metric: dict) -> str:
        return "n/a" if metric["value"] is None else f"{metric['value']:.3f}"

    count = report["conversations"]
    lines = [f"{report['file']} (conversations): {count} conversation{'' if count == 1 else 's'}, "
             f"{report['turns']} turn{'' if report['turns'] == 1 else 's'}", "",
             f"{'answer hit rate':<28} {'with history':>12} {'without':>8} {'n':>4}"]
    for name, pair in [*report["hit_rate"].items(),
                       *((f"  leaning, {lang}", pair) for lang, pair in report["leaning_turns_by_lang"].items())]:
        lines.append(f"{name:<28} {cell(pair['with_history']):>12} {cell(pair['without_history']):>8} "
                     f"{pair['with_history']['n']:>4}")
    lines.append("")
    lines.append(f"earlier words used on leaning turns: {cell(report['context_used_on_leaning_turns'])}; "
                 f"on self-contained turns: {cell(report['context_used_on_self_contained_turns'])}")
    changed = [r for r in report["turns_detail"] if r["hit"] != r["hit_alone"]]
    if changed:
        lines.append("")
        lines.append("turns that history changed:")
        for row in changed:
            mark = "+" if row["hit"] else "-"
            lines.append(f"  {mark} {row['id']}: {row['question']} -> {row['answer']!r} "
                         f"(alone: {row['answer_alone']!r}; gold {row['gold'][0]!r})")
    return "\n".join(lines)
