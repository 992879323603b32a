"""Sentence-level matching of question words, across English and Indonesian spellings."""

from qa.extract import QuestionMatcher, _sentence_words
from qa.lexical import tokenize


def matches(question: str, sentence: str) -> tuple[float, list[str]]:
    coverage, spans = QuestionMatcher(tokenize(question)).matched_words(_sentence_words(sentence))
    return coverage, [sentence[s:e] for s, e in spans]


def test_question_words_meet_their_indonesian_forms():
    coverage, found = matches("When did Russia veto the sanctions?", "Rusia memveto sanksi itu pada 28 Maret 2024.")
    assert found == ["Rusia", "memveto", "sanksi"]
    assert coverage == 1.0


def test_coverage_is_the_share_of_distinct_question_words_found():
    coverage, found = matches("Kapan Putin mengunjungi Pyongyang?", "Putin tiba di Moskow, bukan Pyongyang.")
    assert found == ["Putin", "Pyongyang"]
    assert coverage == 2 / len(set(tokenize("Kapan Putin mengunjungi Pyongyang?")))


def test_parts_of_a_hyphenated_word_match():
    _, found = matches("Who is Choe?", "Menteri Luar Negeri Choe Son-hui hadir.")
    assert found == ["Choe"]
    _, found = matches("What did Son-hui say?", "Choe Son-hui hadir.")
    assert found == ["Son-hui"]
