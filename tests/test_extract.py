"""Sentence-level matching of question words, across English and Indonesian spellings; what is never an answer."""

import pytest

from qa.extract import QuestionMatcher, _sentence_words, is_attribution, is_heading
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


@pytest.mark.parametrize("sentence, span", [
    ("Menurut Interfax, kedua pemimpin menandatangani perjanjian.", "Interfax"),
    ("Menurut Interfax, kedua pemimpin menandatangani perjanjian.", "Menurut Interfax"),
    ("According to Reuters, the deal was signed.", "Reuters"),
    ("Perjanjian itu penting, kata Matsegora kepada wartawan.", "Matsegora"),
    ("Lukin mengatakan perjanjian itu penting.", "Lukin"),
])
def test_the_source_a_sentence_quotes_is_recognised(sentence, span):
    start = sentence.index(span)
    assert is_attribution(sentence, start, start + len(span))


def test_a_name_that_is_what_the_sentence_reports_is_not_an_attribution():
    sentence = "Menurut Interfax, Putin bertemu Kim di Vladivostok."
    for span in ("Putin", "Kim", "Vladivostok"):
        start = sentence.index(span)
        assert not is_attribution(sentence, start, start + len(span))


def test_short_lines_without_a_final_stop_are_headings():
    assert is_heading("Penghindaran sanksi")
    assert is_heading("Kerja sama militer")
    assert not is_heading("Putin tiba.")
    assert not is_heading("Putin dan Kim menandatangani perjanjian kemitraan strategis yang komprehensif")
