"""The induced word lexicon and the code-switched training questions made with it."""

from __future__ import annotations

import random

import numpy as np

from qa.reader.data import Example, TrainingData, epoch_examples
from qa.reader.lexicon import code_switch, induce_lexicon, vocabulary


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
