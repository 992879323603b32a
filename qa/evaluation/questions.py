"""Question files for `qa eval`: the JSONL format of the development set and SQuAD v1.1 / v2.0 JSON, read and
checked line by line (a malformed line is named, not a traceback)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


from qa.evaluation import EvalError


@dataclass
class EvalQuestion:
    id: str
    question: str
    answers: list[str]
    answerable: bool = True
    lang: str | None = None
    kind: str | None = None  # what the question asks for (who, when, ...), where the file says
    sources: list[str] = field(default_factory=list)  # dev set: hex source ids
    paragraph: int | None = None  # SQuAD: number of the paragraph (document) that answers it


@dataclass
class Paragraph:
    title: str
    context: str


@dataclass
class EvalSet:
    format: str  # "jsonl" or "squad"
    questions: list[EvalQuestion]
    paragraphs: list[Paragraph] = field(default_factory=list)  # SQuAD only


def read_eval_text(file: Path) -> tuple[bytes, str]:
    if not file.exists():
        raise EvalError(f"{file}: no such file")
    if file.is_dir():
        raise EvalError(f"{file} is a folder; give a JSONL or SQuAD-format JSON file")
    if not file.is_file():  # read more than once (its format, then its questions): a pipe would be empty the second time
        raise EvalError(f"{file} is not a regular file (a pipe or a device): save the questions to a file and give "
                        "its path")
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise EvalError(f"cannot read {file}: {exc.strerror or exc}") from exc
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise EvalError(f"{file} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start})") from exc
    if not text.strip():
        raise EvalError(f"{file} is empty")
    return data, text


def _string_list(value: object, where: str, name: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise EvalError(f"{where}: `{name}` must be a list of strings")
    return [v for v in value if v.strip()]


def _jsonl_question(obj: object, where: str, number: int) -> EvalQuestion:
    if not isinstance(obj, dict):
        raise EvalError(f"{where}: expected a JSON object with a `question`, got {type(obj).__name__}")
    question = obj.get("question")
    if not isinstance(question, str) or not question.strip():
        raise EvalError(f"{where}: `question` must be a non-empty string")
    answerable = obj.get("answerable", True)
    if answerable is None:
        answerable = True
    if not isinstance(answerable, bool):
        raise EvalError(f"{where}: `answerable` must be true or false")
    answers = _string_list(obj.get("answers"), where, "answers")
    if answerable and not answers:
        raise EvalError(f"{where}: an answerable question needs at least one string in `answers` "
                        "(set \"answerable\": false for a question the articles do not answer)")
    if not answerable and answers:
        raise EvalError(f"{where}: a question marked \"answerable\": false has `answers`: remove them, or the "
                        "\"answerable\": false")
    lang, kind = obj.get("lang"), obj.get("kind")
    return EvalQuestion(
        id=str(obj.get("id") or f"line{number}"),
        question=question.strip(),
        answers=answers if answerable else [],
        answerable=answerable,
        lang=lang if isinstance(lang, str) else None,
        kind=kind if isinstance(kind, str) else None,
        sources=_string_list(obj.get("sources"), where, "sources") if answerable else [],
    )


def parse_json(text: str) -> object:
    """json.loads, with nesting too deep for Python's parser reported as a JSONDecodeError like any bad JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def jsonl_objects(text: str, name: str) -> Iterator[tuple[str, int, object]]:
    """(where, line number, parsed value) of every non-blank line; EvalError naming the line that is not JSON."""
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            yield where, number, parse_json(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f"{where}: invalid JSON ({exc.msg} at column {exc.colno})") from None


def parse_jsonl(text: str, name: str = "input") -> EvalSet:
    questions = []
    for where, number, obj in jsonl_objects(text, name):
        questions.append(_jsonl_question(obj, where, number))
    if not questions:
        raise EvalError(f"{name} holds no questions")
    return EvalSet("jsonl", questions)


def parse_squad(obj: dict, name: str = "input") -> EvalSet:
    data = obj.get("data")
    if not isinstance(data, list):
        raise EvalError(f"{name}: `data` must be a list of articles (SQuAD format)")
    paragraphs: list[Paragraph] = []
    questions: list[EvalQuestion] = []
    for a, article in enumerate(data):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise EvalError(f"{name}: data[{a}] must be an object with a `paragraphs` list")
        title = article.get("title")
        title = title.replace("_", " ").strip() if isinstance(title, str) else ""
        for p, para in enumerate(article["paragraphs"]):
            where = f"{name}: data[{a}].paragraphs[{p}]"
            if not isinstance(para, dict) or not isinstance(para.get("context"), str) \
                    or not isinstance(para.get("qas"), list):
                raise EvalError(f"{where} must have a `context` string and a `qas` list")
            if not para["context"].strip():
                raise EvalError(f"{where}: empty `context`")
            paragraphs.append(Paragraph(title, para["context"]))
            for q, qa in enumerate(para["qas"]):
                qwhere = f"{where}.qas[{q}]"
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str) or not qa["question"].strip():
                    raise EvalError(f"{qwhere} must have a non-empty `question` string")
                answers = qa.get("answers") or []
                if not isinstance(answers, list) or not all(isinstance(x, dict) and isinstance(x.get("text"), str)
                                                            for x in answers):
                    raise EvalError(f"{qwhere}: `answers` must be a list of {{\"text\": ...}} objects")
                texts = list(dict.fromkeys(x["text"] for x in answers if x["text"].strip()))
                answerable = not qa.get("is_impossible", False)  # SQuAD 2.0
                if answerable and not texts:
                    raise EvalError(f"{qwhere}: no answer text (SQuAD 2.0 files mark these \"is_impossible\": true)")
                questions.append(EvalQuestion(
                    id=str(qa.get("id") or f"q{len(questions) + 1}"),
                    question=qa["question"].strip(),
                    answers=texts if answerable else [],
                    answerable=answerable,
                    paragraph=len(paragraphs) - 1,
                ))
    if not questions:
        raise EvalError(f"{name} holds no questions")
    return EvalSet("squad", questions, paragraphs)


def load_eval_set(file: Path) -> tuple[EvalSet, bytes]:
    """Read a dev-set JSONL or SQuAD JSON file; EvalError with a clear message for anything else."""
    data, text = read_eval_text(file)
    name = str(file)
    try:
        whole = parse_json(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and "data" in whole:
        return parse_squad(whole, name), data
    if isinstance(whole, dict) and "question" in whole:  # a JSONL file of one line
        return parse_jsonl(text, name), data
    if whole is not None:
        raise EvalError(f"{name} is JSON but in no supported format: expected SQuAD JSON (an object with a `data` "
                        "list), question JSONL (one object with `question` and `answers` a line) or conversation "
                        "JSONL (one object with `turns` a line)")
    first = next((line for line in text.splitlines() if line.strip()), "")
    try:
        parse_json(first)
    except json.JSONDecodeError as exc:
        if first.lstrip().startswith(("{", "[")):
            raise EvalError(f"{name} is not valid JSON or JSONL: line 1: {exc.msg} at column {exc.colno}") from None
        raise EvalError(f"{name} is neither SQuAD JSON nor JSONL (its first line is not JSON)") from None
    return parse_jsonl(text, name), data
