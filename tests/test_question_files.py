"""The project's own question files in eval/: each loads in `qa eval`, ids are unique across them, and each gold
answer can be quoted verbatim from the cleaned text of an article it cites, so a miss in their figures is the
product's and never a typo in the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from qa.clean import clean_document
from qa.config import Settings
from qa.evaluation.conversations import parse_conversations
from qa.evaluation.questions import load_eval_set
from qa.load import load_document, scan_corpus

ROOT = Path(__file__).resolve().parent.parent
CONVERSATION_FILE = ROOT / "eval" / "followup_qa.jsonl"
QUESTION_FILES = sorted(p for p in (ROOT / "eval").glob("*.jsonl") if p != CONVERSATION_FILE)
KINDS = {"who", "when", "where", "how_many", "what", "which", "why"}


@pytest.fixture(scope="module")
def article_text() -> dict[str, str]:
    corpus = ROOT / "corpus"
    documents = [clean_document(load_document(path, corpus, Settings().max_file_bytes))
                 for path in scan_corpus(corpus).articles]
    return {d.meta["source_id"]: d.text for d in documents}


def test_there_are_question_files():
    assert {p.name for p in QUESTION_FILES} >= {"fresh_qa.jsonl", "fresh2_qa.jsonl", "heldout_qa.jsonl",
                                                "fresh2_unanswerable.jsonl", "unanswerable.jsonl"}


@pytest.mark.parametrize("path", QUESTION_FILES, ids=lambda p: p.name)
def test_question_file_is_well_formed(path, article_text):
    questions = load_eval_set(path)[0].questions
    assert questions and len({q.id for q in questions}) == len(questions)
    assert len({q.question.casefold() for q in questions}) == len(questions), "a question asked twice"
    for q in questions:
        assert q.lang in {"en", "id"}, q.id
        assert q.kind is None or q.kind in KINDS, q.id
        assert all(s in article_text for s in q.sources), f"{q.id} cites an article not in corpus/"
        if q.answerable:
            assert q.answers and q.sources, q.id
            missing = [a for a in q.answers if not any(a in article_text[s] for s in q.sources)]
            assert not missing, f"{q.id}: {missing} not in the cleaned text of {q.sources}"
        else:
            assert not q.answers, q.id


def test_ids_are_unique_across_files_conversations_included():
    ids = [q.id for path in QUESTION_FILES for q in load_eval_set(path)[0].questions]
    ids += [c.id for c in parse_conversations(CONVERSATION_FILE.read_text(encoding="utf-8"), CONVERSATION_FILE.name)]
    assert len(ids) == len(set(ids))
