"""The induced word lexicon and the code-switched training questions made with it."""

from __future__ import annotations

import random

import numpy as np

from qa.reader.data import Example, TrainingData, epoch_examples
from qa.reader.lexicon import code_switch, english_translation, induce_lexicon, passage_switched, switch_words, vocabulary


def unit(*rows):
    vectors = np.array(rows, dtype=np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_vocabulary_is_lower_case_words_most_frequent_first():
    assert vocabulary(["Kapan Rusia memveto?", "kapan 2024 a", "Rusia"]) == ["kapan", "rusia", "memveto"]
    assert vocabulary(["war war war peace"], min_count=2) == ["war"]


def test_lexicon_keeps_close_mutual_neighbours_only():
    indonesian = ["perang", "istri", "orang"]
    english = ["war", "wife", "orange", "people"]
    source = unit([1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 1])
    # "orang" lies halfway between "orange" and "people" (cosine 0.83 with each): too far for either rule.
    target = unit([1, 0.05, 0, 0], [0, 1, 0.3, 0], [0, 0, 1, 0.2], [0, 0, 0.2, 1])
    lexicon = induce_lexicon(indonesian, source, english, target)
    assert lexicon["perang"] == "war"
    assert lexicon["istri"] == "wife"
    assert "orang" not in lexicon


def test_code_switch_replaces_known_lower_case_words_and_keeps_names():
    lexicon = {"kapan": "when", "memveto": "veto", "resolusi": "resolution", "rusia": "russia"}
    question = "Kapan Rusia memveto resolusi itu?"
    assert code_switch(question, lexicon, 1.0, random.Random(0)) == "When Rusia veto resolution itu?"
    assert code_switch(question, lexicon, 0.0, random.Random(0)) == question
    # A name inside the question stays even when the lexicon knows the word.
    assert code_switch("siapa presiden Rusia", {"rusia": "russia"}, 1.0, random.Random(0)) == "siapa presiden Rusia"


def test_an_epoch_with_a_lexicon_adds_switched_copies_of_the_indonesian_questions_only():
    context = "Rusia memveto resolusi itu pada 28 Maret 2024."
    data = TrainingData(
        train={"tydi-id": [Example("kapan rusia memveto resolusi itu?", context, 32, "28 Maret 2024", "tydi-id")],
               "tydi-en": [Example("when did russia veto it?", context, 32, "28 Maret 2024", "tydi-en")]},
        held_out={}, xquad={})
    plain = epoch_examples(data, 0, 13)
    with_lexicon = epoch_examples(data, 0, 13, lexicon={"kapan": "when", "memveto": "veto", "resolusi": "resolution"})
    added = [e for e in with_lexicon if e not in plain]
    assert len(added) == 1 and added[0].source == "tydi-id-switched"
    assert added[0].context == context and context[added[0].answer_start:].startswith("28 Maret 2024")
    assert "kapan" not in added[0].question or "memveto" not in added[0].question


EN_ID = {"sign": "menandatangani", "treaty": "perjanjian", "country": "negara", "the": "sang", "in": "di",
         "visit": "kunjungan", "russia": "rusia"}


def test_english_words_are_found_by_their_stem():
    assert english_translation("signed", EN_ID) == "menandatangani"
    assert english_translation("treaties", EN_ID) == "perjanjian"
    assert english_translation("visiting", EN_ID) == "kunjungan"
    assert english_translation("countries", EN_ID) == "negara"
    assert english_translation("sings", EN_ID) is None
    assert english_translation("is", {"i": "saya"}) is None  # a stem must keep three letters


def test_switch_words_keeps_names_and_unknown_words():
    text = "Russia signed the treaty in Pyongyang"
    assert switch_words(text, EN_ID, 1.0, random.Random(0)) == "Russia menandatangani sang perjanjian di Pyongyang"
    assert switch_words(text, EN_ID, 0.0, random.Random(0)) == text


def test_a_switched_passage_keeps_its_answer_verbatim_where_the_offset_points():
    context = "The two countries signed the treaty in June 2024 during the visit."
    example = Example("When was the treaty signed?", context, context.index("June 2024"), "June 2024", "tydi-en")
    switched = passage_switched(example, EN_ID, 1.0, random.Random(0))
    assert switched.context == "The two negara menandatangani sang perjanjian di June 2024 during sang kunjungan."
    assert switched.context[switched.answer_start:switched.answer_start + 9] == "June 2024"
    assert switched.question == example.question and switched.source == "tydi-en-passage-switched"


def test_an_epoch_with_a_passage_lexicon_adds_switched_copies_of_the_english_passages_only():
    english = "Russia signed the treaty in June 2024."
    indonesian = "Rusia menandatangani perjanjian pada Juni 2024."
    data = TrainingData(
        train={"tydi-en": [Example("When was the treaty signed?", english, 28, "June 2024", "tydi-en"),
                           Example("Who is the king?", "No king here.", None, None, "tydi-en")],
               "tydi-id": [Example("Kapan perjanjian itu ditandatangani?", indonesian, 37, "Juni 2024", "tydi-id")]},
        held_out={}, xquad={})
    plain = epoch_examples(data, 0, 13)
    added = [e for e in epoch_examples(data, 0, 13, passage_lexicon=EN_ID) if e not in plain]
    assert [e.source for e in added] == ["tydi-en-passage-switched"]
    # 70% of the known words are switched (WORD_SHARE): each word is itself or its translation.
    original, switched = english.rstrip(".").split(), added[0].context.rstrip(".").split()
    assert len(switched) == len(original) and switched != original
    assert all(s == o or s == english_translation(o, EN_ID) for s, o in zip(switched, original))
    assert added[0].context[added[0].answer_start:].startswith("June 2024")
