"""`qa eval`: metric functions, input formats, and one end-to-end run on a tiny SQuAD file."""

from __future__ import annotations

import json
import re

import pytest

from qa.confidence import confidence_words
from qa.evaluation import EvalError
from qa.evaluation.metrics import (contains_gold, exact_match, first_gold_rank, max_token_f1, normalize_answer,
                                   percentiles, ranked_documents, recall_at, reciprocal_rank, token_f1)
from qa.evaluation.questions import load_eval_set
from qa.evaluation.report import format_report
from qa.evaluation.run import evaluate_file

# --------------------------------------------------------------------------------------------------
# Metrics


def test_normalize_answer_lowercases_and_strips_punctuation():
    assert normalize_answer("  28 Maret, 2024. ") == "28 maret 2024"
    assert normalize_answer("«Rajin–Khasan»") == "rajinkhasan"  # unicode punctuation too, SQuAD-style removal


def test_token_f1_exact_partial_and_none():
    assert token_f1("28 Maret 2024", "28 maret 2024") == 1.0
    # prediction 4 tokens, gold 3, overlap 3: precision 3/4, recall 1 -> 6/7
    assert token_f1("pada 28 Maret 2024", "28 Maret 2024") == pytest.approx(6 / 7)
    assert token_f1("Vladivostok", "Pyongyang") == 0.0
    assert token_f1(None, "Pyongyang") == 0.0
    assert token_f1("", "") == 1.0
    assert token_f1("!!!", "Pyongyang") == 0.0


def test_token_f1_counts_repeated_tokens_once_each():
    # prediction "a a a" vs gold "a b": overlap 1, precision 1/3, recall 1/2 -> 0.4
    assert token_f1("a a a", "a b") == pytest.approx(0.4)


def test_max_token_f1_takes_best_gold_and_zero_when_abstained():
    golds = ["19 Juni 2024", "19/6"]
    assert max_token_f1("19/6", golds) == 1.0
    assert max_token_f1("Juni 2024", golds) == pytest.approx(0.8)
    assert max_token_f1(None, golds) == 0.0
    assert max_token_f1("apa saja", []) == 0.0


def test_contains_gold_is_case_and_whitespace_insensitive():
    assert contains_gold("pada 28  MARET 2024 lalu", ["28 Maret 2024"])
    assert contains_gold("Alexander Matsegora", ["Vladivostok", "matsegora"])
    assert not contains_gold("Maret 2024", ["28 Maret 2024"])
    assert not contains_gold(None, ["x"])
    assert not contains_gold("anything", ["", "   "])


def test_a_gold_counts_only_as_whole_words():
    assert not contains_gold("kunjungan kedua Putin", ["dua"])
    assert not contains_gold("sejak 1970", ["70"])
    assert contains_gold("dua kali", ["dua"]) and contains_gold("70 tahun", ["70"])
    assert contains_gold("jalur Rajin-Khasan.", ["Rajin-Khasan"])
    assert contains_gold("pada tahun 1990-an", ["1990"])
    assert contains_gold("Kremlin dan (Korea Utara", ["(Korea Utara"])


def test_exact_match():
    assert exact_match("Vladivostok.", ["vladivostok"])
    assert not exact_match("di Vladivostok", ["Vladivostok"])
    assert not exact_match(None, ["Vladivostok"])


def test_ranked_documents_keeps_first_appearance():
    assert ranked_documents(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]


def test_recall_and_mrr_from_gold_rank():
    ranking = ["d1", "d2", "d3", "d4", "d5", "d6"]
    assert first_gold_rank(ranking, {"d1"}) == 1
    assert first_gold_rank(ranking, {"d6", "d3"}) == 3
    assert first_gold_rank(ranking, {"x"}) is None
    assert recall_at(1, 1) == 1.0 and recall_at(3, 1) == 0.0 and recall_at(3, 5) == 1.0
    assert recall_at(None, 5) == 0.0
    assert reciprocal_rank(1) == 1.0
    assert reciprocal_rank(4) == 0.25
    assert reciprocal_rank(11) == 0.0  # beyond the MRR@10 cutoff
    assert reciprocal_rank(None) == 0.0


def test_percentiles():
    result = percentiles([float(v) for v in range(1, 101)])
    assert result["p50"] == pytest.approx(50.5)
    assert result["p99"] == pytest.approx(99.01)
    assert result["mean"] == pytest.approx(50.5)
    assert percentiles([])["p50"] is None


# --------------------------------------------------------------------------------------------------
# Input formats


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_detects_jsonl(tmp_path):
    lines = [
        {"id": "a", "lang": "en", "question": "When?", "answers": ["1994"], "sources": ["0a3e"]},
        {"id": "b", "lang": "id", "question": "Siapa?", "answers": [], "sources": [], "answerable": False},
        {"id": "c", "question": "Where?", "answers": ["Vladivostok"], "sources": [], "answerable": True},
    ]
    path = _write(tmp_path, "dev.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    eval_set, _ = load_eval_set(path)
    assert eval_set.format == "jsonl"
    assert [q.id for q in eval_set.questions] == ["a", "b", "c"]
    assert [q.answerable for q in eval_set.questions] == [True, False, True]
    assert eval_set.questions[0].sources == ["0a3e"]


def test_detects_single_line_jsonl(tmp_path):
    path = _write(tmp_path, "one.jsonl", json.dumps({"question": "When?", "answers": ["1994"]}))
    eval_set, _ = load_eval_set(path)
    assert eval_set.format == "jsonl" and len(eval_set.questions) == 1


def test_detects_squad(tmp_path):
    squad = {"version": "1.1", "data": [{"title": "Jakarta", "paragraphs": [
        {"context": "Jakarta adalah ibu kota.", "qas": [
            {"id": "q1", "question": "Apa ibu kota?", "answers": [{"text": "Jakarta", "answer_start": 0},
                                                                    {"text": "Jakarta", "answer_start": 0}]}]}]}]}
    eval_set, _ = load_eval_set(_write(tmp_path, "squad.json", json.dumps(squad)))
    assert eval_set.format == "squad"
    assert eval_set.questions[0].answers == ["Jakarta"]  # duplicates merged
    assert eval_set.questions[0].paragraph == 0
    assert eval_set.paragraphs[0].title == "Jakarta"


def test_squad_v2_impossible_questions_are_unanswerable(tmp_path):
    squad = {"data": [{"title": "T", "paragraphs": [{"context": "Teks.", "qas": [
        {"id": "q1", "question": "Apa?", "answers": [], "is_impossible": True}]}]}]}
    eval_set, _ = load_eval_set(_write(tmp_path, "v2.json", json.dumps(squad)))
    assert eval_set.questions[0].answerable is False


def test_missing_file(tmp_path):
    with pytest.raises(EvalError, match="no such file"):
        load_eval_set(tmp_path / "nope.jsonl")


def test_folder_is_rejected(tmp_path):
    with pytest.raises(EvalError, match="is a folder"):
        load_eval_set(tmp_path)


def test_empty_file(tmp_path):
    with pytest.raises(EvalError, match="empty"):
        load_eval_set(_write(tmp_path, "empty.jsonl", "\n  \n"))


def test_invalid_json(tmp_path):
    with pytest.raises(EvalError, match="not valid JSON"):
        load_eval_set(_write(tmp_path, "broken.json", '{"data": [ {"title": '))


def test_invalid_json_on_a_later_jsonl_line(tmp_path):
    text = json.dumps({"question": "When?", "answers": ["1994"]}) + "\n{oops\n"
    with pytest.raises(EvalError, match="line 2: invalid JSON"):
        load_eval_set(_write(tmp_path, "dev.jsonl", text))


def test_json_nested_too_deeply_is_named_as_such(tmp_path):
    from qa.evaluation.conversations import is_conversation_file

    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(EvalError, match="^.*deep.jsonl is not valid JSON or JSONL: line 1: nested too deeply"):
        load_eval_set(_write(tmp_path, "deep.jsonl", deep + "\n"))
    second = json.dumps({"question": "When?", "answers": ["1994"]}) + "\n" + deep + "\n"
    with pytest.raises(EvalError, match="line 2: invalid JSON \\(nested too deeply"):
        load_eval_set(_write(tmp_path, "deep2.jsonl", second))
    assert not is_conversation_file(_write(tmp_path, "deep3.jsonl", deep + "\n"))


def test_json_in_neither_format(tmp_path):
    with pytest.raises(EvalError, match="in no supported format: expected SQuAD JSON .* or conversation JSONL"):
        load_eval_set(_write(tmp_path, "other.json", json.dumps({"questions": []})))
    with pytest.raises(EvalError, match="in no supported format: expected SQuAD JSON .* or conversation JSONL"):
        load_eval_set(_write(tmp_path, "list.json", json.dumps([1, 2, 3])))


def test_plain_text_is_neither_format(tmp_path):
    with pytest.raises(EvalError, match="neither SQuAD JSON nor JSONL"):
        load_eval_set(_write(tmp_path, "notes.txt", "When did Putin arrive?\n"))


def test_jsonl_line_without_question(tmp_path):
    text = json.dumps({"question": "When?", "answers": ["1994"]}) + "\n" + json.dumps({"answers": ["x"]}) + "\n"
    with pytest.raises(EvalError, match="line 2: `question` must be a non-empty string"):
        load_eval_set(_write(tmp_path, "dev.jsonl", text))


def test_jsonl_answerable_without_answers(tmp_path):
    with pytest.raises(EvalError, match="at least one string in `answers`"):
        load_eval_set(_write(tmp_path, "dev.jsonl", json.dumps({"question": "When?", "answers": []})))


def test_jsonl_unanswerable_with_answers_is_refused_as_contradictory(tmp_path):
    line = json.dumps({"question": "When?", "answers": ["2020"], "answerable": False})
    with pytest.raises(EvalError, match="marked \"answerable\": false has `answers`"):
        load_eval_set(_write(tmp_path, "dev.jsonl", line))


def test_a_conversation_turn_whose_leans_is_not_true_or_false_is_refused(tmp_path):
    from qa.evaluation.conversations import parse_conversations

    text = json.dumps({"turns": [{"question": "Siapa?", "answers": ["x"]},
                                 {"question": "Dia?", "answers": ["y"], "leans": "yes"}]})
    with pytest.raises(EvalError, match="turn 2: `leans` must be true or false"):
        parse_conversations(text, "talk.jsonl")


def test_squad_with_bad_structure(tmp_path):
    with pytest.raises(EvalError, match="`data` must be a list"):
        load_eval_set(_write(tmp_path, "bad.json", json.dumps({"data": {"title": "x"}})))
    with pytest.raises(EvalError, match="context"):
        load_eval_set(_write(tmp_path, "bad2.json", json.dumps({"data": [{"title": "x", "paragraphs": [{"qas": []}]}]})))


def test_dev_set_without_an_index_says_run_qa_index(tmp_path):
    from qa.config import Settings

    path = _write(tmp_path, "dev.jsonl", json.dumps({"question": "When?", "answers": ["1994"]}))
    settings = Settings(corpus_dir=tmp_path / "corpus", index_dir=tmp_path / "no-index")
    with pytest.raises(EvalError, match=r"build it with `qa index --index .+`$"):
        evaluate_file(path, settings, top_k=5, limit=None, progress=False, cache_dir=tmp_path / "cache")


# --------------------------------------------------------------------------------------------------
# End to end on a tiny SQuAD file

TINY_SQUAD = {
    "version": "1.1",
    "data": [
        {"title": "Candi Borobudur", "paragraphs": [{
            "context": "Borobudur adalah sebuah candi Buddha yang terletak di Magelang, Jawa Tengah. "
                       "Candi ini didirikan oleh wangsa Syailendra sekitar abad ke-9.",
            "qas": [{"id": "t1", "question": "Di mana letak Candi Borobudur?",
                     "answers": [{"text": "Magelang", "answer_start": 54}]}]}]},
        {"title": "Danau Toba", "paragraphs": [{
            "context": "Danau Toba adalah danau vulkanik terbesar di Indonesia. "
                       "Danau ini terletak di Sumatera Utara dan memiliki pulau Samosir di tengahnya.",
            "qas": [{"id": "t2", "question": "Pulau apa yang ada di tengah Danau Toba?",
                     "answers": [{"text": "Samosir", "answer_start": 113}]}]}]},
        {"title": "Gunung: \"Merapi\"", "paragraphs": [{  # a title that needs quoting in YAML
            "context": "Gunung Merapi adalah gunung berapi paling aktif di Indonesia. "
                       "Letusan besar terakhirnya terjadi pada tahun 2010.",
            "qas": [{"id": "t3", "question": "Kapan letusan besar terakhir Gunung Merapi?",
                     "answers": [{"text": "2010", "answer_start": 107}]}]}]},
    ],
}

METRICS = {
    "retrieval": {"recall@1", "recall@5", "mrr@10", "answer_passage_recall@1", "answer_passage_recall@5"},
    "answers": {"answer_hit_rate", "sentence_containment", "token_f1", "exact_match", "citation_accuracy",
                "abstention_accuracy", "false_abstention_rate"},
}


def test_evaluate_tiny_squad_end_to_end(tmp_path, embedder):
    from qa.config import Settings

    path = _write(tmp_path, "tiny.json", json.dumps(TINY_SQUAD, ensure_ascii=False))
    settings = Settings(corpus_dir=tmp_path / "unused-corpus", index_dir=tmp_path / "unused-index")
    cache = tmp_path / "cache"
    report = evaluate_file(path, settings, top_k=5, limit=None, progress=False, cache_dir=cache)

    assert report["format"] == "squad"
    assert report["questions"]["evaluated"] == 3 and report["questions"]["answerable"] == 3
    for section, names in METRICS.items():
        assert set(report[section]) == names
    assert report["retrieval"]["recall@5"] == {"value": 1.0, "n": 3, "ci95": [0.4385, 1.0]}
    assert report["retrieval"]["recall@1"]["n"] == 3
    # One paragraph per document here, so the passage that holds the answer is the gold document's.
    assert report["retrieval"]["answer_passage_recall@5"] == {"value": 1.0, "n": 3, "ci95": [0.4385, 1.0]}
    assert all(row["answer_passage_rank"] == row["gold_rank"] for row in report["per_question"])
    for name in ("answer_hit_rate", "sentence_containment", "token_f1", "false_abstention_rate"):
        assert report["answers"][name]["n"] == 3
    # Three easy questions, one paragraph each: every one answered, and answered right.
    assert [row["hit"] for row in report["per_question"]] == [True, True, True]
    assert report["answers"]["answer_hit_rate"]["value"] == 1.0
    assert report["answers"]["false_abstention_rate"]["value"] == 0.0
    for name, metric in report["answers"].items():
        if metric["n"] >= 2:
            low, high = metric["ci95"]
            assert low <= metric["value"] <= high, name
    assert report["answers"]["abstention_accuracy"] == {"value": None, "n": 0, "ci95": None}
    rows = report["per_question"]
    assert len(rows) == 3 and all(row["answerable"] for row in rows)
    assert sum(row["hit"] for row in rows) / 3 == pytest.approx(report["answers"]["answer_hit_rate"]["value"], abs=1e-4)
    # The answers given, grouped by the words the chat shows for their confidence, and how many were right.
    by_words = report["right_by_confidence_words"]
    answered = [row for row in rows if not row["abstained"]]
    assert sum(metric["n"] for metric in by_words.values()) == len(answered) > 0
    for words, metric in by_words.items():
        group = [row for row in answered if confidence_words(row["confidence"])[0] == words]
        assert metric["n"] == len(group)
        assert metric["value"] == pytest.approx(sum(row["hit"] for row in group) / len(group), abs=1e-4)
    assert set(report["latency_ms"]) >= {"p50", "p95", "p99", "mean"}
    assert report["latency_ms"]["p50"] > 0
    assert {"embed", "search", "read", "total"} <= set(report["timings_mean_ms"])
    assert report["corpus"]["documents"] == 3 and report["corpus"]["reused"] is False
    assert report["settings"]["index_dir"].startswith(str(cache))
    # The failures listed are the questions answered wrong, or answered where they should have been abstained.
    failed = {row["id"] for row in report["per_question"]
              if (not row["hit"] if row["answerable"] else not row["abstained"])}
    assert {row["id"] for row in report["failures"]} == failed
    json.dumps(report)  # JSON-ready

    # The corpus documents carry the article title (quoted safely) and the cleaned context.
    titles = set()
    for doc_file in sorted(cache.glob("*/corpus/*.txt")):
        from qa.load import split_front_matter

        meta, text = split_front_matter(doc_file.read_text(encoding="utf-8"))
        titles.add(meta["title"])
    assert titles == {"Candi Borobudur", "Danau Toba", 'Gunung: "Merapi"'}

    text = format_report(report)
    for label in ("passage recall@1", "passage recall@5", "MRR@10", "answer in a passage @1", "answer hit rate",
                  "sentence containment",
                  "token F1", "citation accuracy", "abstention accuracy", "false-abstention rate", "p50", "p95",
                  "p99", "answers right, by confidence words"):
        assert label in text

    # A second run reuses the cached index instead of embedding again, and --limit takes the first N.
    again = evaluate_file(path, settings, top_k=5, limit=2, progress=False, cache_dir=cache)
    assert again["corpus"]["reused"] is True
    assert again["settings"]["generation"] == report["settings"]["generation"]
    assert again["questions"]["total_in_file"] == 3 and again["questions"]["evaluated"] == 2


def test_jsonl_scores_are_broken_down_by_language_and_kind(built_index, tmp_path):
    settings, _ = built_index
    lines = [
        {"id": "a", "lang": "id", "kind": "when", "question": "Kapan Rusia memveto resolusi Dewan Keamanan PBB?",
         "answers": ["28 Maret 2024"], "sources": ["0a3e3fb498370d12"]},
        {"id": "b", "lang": "en", "kind": "who", "question": "Who won the 2022 FIFA World Cup?", "answers": [],
         "answerable": False},
    ]
    path = tmp_path / "kinds.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    report = evaluate_file(path, settings, top_k=5)
    by_lang, by_kind = report["breakdown"]["lang"], report["breakdown"]["kind"]
    assert by_lang["id"] == {"questions": 1, "answerable": 1, "answer_hit_rate": 1.0, "exact_match": 1.0,
                             "token_f1": 1.0}
    assert by_lang["en"] == {"questions": 1, "unanswerable": 1, "abstention_accuracy": 1.0}
    assert set(by_kind) == {"when", "who"}
    text = format_report(report)
    assert "by lang:" in text and "by kind:" in text and "  when " in text


def test_a_line_the_service_refuses_is_named_and_left_out_and_a_gold_in_no_article_is_named(built_index, tmp_path):
    settings, _ = built_index
    lines = [
        {"id": "ok", "question": "Kapan Rusia memveto resolusi Dewan Keamanan PBB?", "answers": ["28 Maret 2024"]},
        {"id": "surrogate", "question": "Siapa \ud800 Duta Besar Rusia?", "answers": ["Alexander Matsegora"]},
        {"id": "long", "question": "Kapan? " * 200, "answers": [], "answerable": False},
        {"id": "nowhere", "question": "Siapa Budi Santoso?", "answers": ["Budi Santoso"]},
    ]
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in lines), encoding="utf-8")
    report = evaluate_file(path, settings, top_k=5)
    assert report["questions"]["evaluated"] == 2 and report["questions"]["not_asked"] == 2
    assert [row["id"] for row in report["per_question"]] == ["ok", "nowhere"]
    assert report["answers"]["abstention_accuracy"]["n"] == 0  # a refused line is no abstention
    warned = " ".join(report["warnings"])
    assert "surrogate: not asked, the service refuses it (question is not valid Unicode text" in warned
    assert "long: not asked, the service refuses it (question is too long (1399 characters" in warned
    assert "nowhere: no gold answer occurs in any article, so it cannot be answered right" in warned
    assert "ok:" not in warned


def test_a_cached_squad_index_of_another_index_format_is_not_reused(monkeypatch):
    """The store's format is part of the cache key: an index this version cannot open is built again."""
    from qa.config import Settings
    from qa.evaluation.squad_corpus import squad_cache_key
    from qa.files import schema

    settings = Settings()
    before = squad_cache_key(b'{"data": []}', settings)
    monkeypatch.setattr(schema, "INDEX_FORMAT", schema.INDEX_FORMAT + 1)
    assert squad_cache_key(b'{"data": []}', settings) != before


def test_a_conversation_file_gets_the_same_option_checks_and_a_bad_turn_is_named(tmp_path, built_index):
    from qa.evaluation.conversations import evaluate_conversations

    settings, _ = built_index
    file = tmp_path / "talk.jsonl"
    long_turn = "Lalu " + "apa lagi " * 80 + "?"
    file.write_text(json.dumps({"id": "c1", "turns": [
        {"question": "Siapa Duta Besar Rusia untuk Korea Utara?", "answers": ["Alexander Matsegora"]},
        {"question": long_turn, "answers": ["x"], "leans": True}]}) + "\n", encoding="utf-8")
    with pytest.raises(EvalError, match=r"^--top-k must be between 1 and 50$"):
        evaluate_conversations(file, settings, top_k=0)
    with pytest.raises(EvalError, match=r"^--limit must be at least 1$"):
        evaluate_conversations(file, settings, limit=0)
    with pytest.raises(EvalError, match=rf"^{re.escape(str(file))}, conversation c1, turn 2: question is too long"):
        evaluate_conversations(file, settings)


def test_a_conversation_file_is_scored_turn_by_turn_with_and_without_history(tmp_path, built_index):
    from qa.evaluation.conversations import evaluate_conversations

    settings, _ = built_index
    file = tmp_path / "talk.jsonl"
    file.write_text(json.dumps({"id": "c1", "lang": "id", "turns": [
        {"question": "Siapa Duta Besar Rusia untuk Korea Utara?", "answers": ["Alexander Matsegora"]},
        {"question": "Siapa menurut dia akan berkunjung ke Pyongyang?", "answers": ["Vladimir Putin"], "leans": True}]})
        + "\n", encoding="utf-8")
    report = evaluate_conversations(file, settings)
    assert (report["format"], report["conversations"], report["turns"]) == ("conversations", 1, 2)
    first, second = report["turns_detail"]
    assert (first["answer"], first["hit"], first["context_used"]) == ("Alexander Matsegora", True, [])
    assert second["leans"] and second["hit"] and "Alexander Matsegora" in second["context_used"]
    assert report["hit_rate"]["leaning turns"]["with_history"] == {"value": 1.0, "n": 1}
    assert report["hit_rate"]["leaning turns"]["without_history"]["n"] == 1
    assert report["context_used_on_leaning_turns"] == {"value": 1.0, "n": 1}


def test_a_conversation_longer_than_the_history_limit_is_asked_as_clients_ask_it(tmp_path, built_index):
    """Each turn goes with the latest `max_history_turns` before it, as the chat and `qa ask --after` send them;
    a long conversation used to be refused at its turn past the limit."""
    from qa.evaluation.conversations import evaluate_conversations

    settings, _ = built_index
    file = tmp_path / "talk.jsonl"
    turns = [{"question": "Siapa Duta Besar Rusia untuk Korea Utara?", "answers": ["Alexander Matsegora"]}] * 3
    file.write_text(json.dumps({"id": "c1", "turns": turns}) + "\n", encoding="utf-8")
    report = evaluate_conversations(file, settings.model_copy(update={"max_history_turns": 1}))
    assert report["turns"] == 3
    assert [t["answer"] for t in report["turns_detail"]] == ["Alexander Matsegora"] * 3
