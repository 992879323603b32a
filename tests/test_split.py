"""Split stage: sentences and passages with exact offsets into the cleaned text."""

from __future__ import annotations

import pytest

from qa.records import Document
from qa.split import MAX_SENTENCE_CHARS, sentence_spans, split_passages


def sentences_of(text: str) -> list[str]:
    return [text[s.start:s.end] for s in sentence_spans(text)]


def doc(text: str) -> Document:
    return Document(doc_id="a.txt", title="", text=text)


LONG_PARAGRAPH = " ".join(
    f"Kalimat nomor {n} menjelaskan kejadian ke-{n} di Jakarta pada hari itu." for n in range(1, 11)
)
ARTICLE = (
    "Rusia dan Korea Utara Makin Mesra\n\n"
    "Para pejabat Rusia membahas 20.000 hingga 50.000 pekerja Korea Utara. Resolusi PBB melarangnya.\n\n"
    "Dr. Victor Cha di Washington mengatakan “sangat tidak mungkin Kim akan memanjakan Putin.” Ia menambahkan "
    "bahwa Pyongyang mencari senjata canggih.\n"
    "Baris baru dalam paragraf yang sama tetap satu paragraf.\n\n"
    + LONG_PARAGRAPH
    + "\n\nAliansi yang dipimpin oleh A.S. antara Washington, Tokyo, dan Seoul menguat. Mr. Kim arrived at 3 p.m. "
    "on Monday. The U.S. economy grew 2.5 percent! Did it? “Yes,” he said.\n\n"
    "Kantor itu di Jl. Sudirman No. 5, Jakarta, dipimpin Prof. Dr. Ir. Budi. Mereka membeli gula, dll. untuk "
    "warga. Ia menjual beras, gula, dll. Lalu pulang."
)


def test_sentence_offsets_point_into_the_text():
    spans = sentence_spans(ARTICLE)
    assert spans, "no sentences"
    for span in spans:
        sentence = ARTICLE[span.start:span.end]
        assert sentence and sentence == sentence.strip()
    assert all(a.end <= b.start for a, b in zip(spans, spans[1:]))
    # Nothing but whitespace lies between sentences: no text is lost.
    gaps = [ARTICLE[a.end:b.start] for a, b in zip(spans, spans[1:])]
    assert all(not gap.strip() for gap in gaps)
    assert ARTICLE[:spans[0].start].strip() == "" and ARTICLE[spans[-1].end:].strip() == ""


@pytest.mark.parametrize("sentence", [
    "Para pejabat Rusia membahas 20.000 hingga 50.000 pekerja Korea Utara.",
    "Dr. Victor Cha di Washington mengatakan “sangat tidak mungkin Kim akan memanjakan Putin.”",
    "Aliansi yang dipimpin oleh A.S. antara Washington, Tokyo, dan Seoul menguat.",
    "Mr. Kim arrived at 3 p.m. on Monday.",
    "The U.S. economy grew 2.5 percent!",
    "Did it?",
    "“Yes,” he said.",
    "Kantor itu di Jl. Sudirman No. 5, Jakarta, dipimpin Prof. Dr. Ir. Budi.",
    "Mereka membeli gula, dll. untuk warga.",
    "Ia menjual beras, gula, dll.",
    "Lalu pulang.",
])
def test_numbers_abbreviations_and_quotes_do_not_split_sentences(sentence):
    assert sentence in sentences_of(ARTICLE)


def test_paragraph_breaks_end_sentences_and_headlines_stand_alone():
    sentences = sentences_of(ARTICLE)
    assert sentences[0] == "Rusia dan Korea Utara Makin Mesra"
    assert "Baris baru dalam paragraf yang sama tetap satu paragraf." in sentences


@pytest.mark.parametrize(("size", "overlap", "max_chars"), [(4, 1, 900), (3, 1, 200), (2, 0, 900), (5, 2, 400),
                                                          (1, 0, 100)])
def test_passage_offsets_and_sentences(size, overlap, max_chars):
    document = doc(ARTICLE)
    passages = split_passages(document, size, overlap, max_chars)
    assert [p.ordinal for p in passages] == list(range(len(passages)))
    for passage in passages:
        assert ARTICLE[passage.start:passage.end] == passage.text
        assert passage.sentences[0].start == passage.start and passage.sentences[-1].end == passage.end
        assert len(passage.sentences) <= size
        for span in passage.sentences:
            assert passage.start <= span.start < span.end <= passage.end
    # Every sentence is in some passage, in order.
    covered = {span for p in passages for span in p.sentences}
    assert covered == set(sentence_spans(ARTICLE))
    starts = [p.start for p in passages]
    assert starts == sorted(starts)


def test_consecutive_passages_in_a_paragraph_overlap_by_one_sentence():
    passages = split_passages(doc(LONG_PARAGRAPH), max_sentences=4, overlap=1, max_chars=900)
    assert len(passages) == 3
    for first, second in zip(passages, passages[1:]):
        assert first.sentences[-1] == second.sentences[0]
        assert len(set(first.sentences) & set(second.sentences)) == 1
    assert [len(p.sentences) for p in passages] == [4, 4, 4]


def test_no_overlap_across_a_paragraph_break():
    text = "Satu. Dua. Tiga.\n\nEmpat. Lima. Enam."
    passages = split_passages(doc(text), max_sentences=3, overlap=1, max_chars=900)
    assert [p.text for p in passages] == ["Satu. Dua. Tiga.", "Empat. Lima. Enam."]


def test_passages_respect_max_chars_unless_one_sentence_is_longer():
    long_sentence = "Kalimat ini sangat panjang karena " + "terus berlanjut dan berlanjut " * 15 + "akhirnya selesai."
    text = LONG_PARAGRAPH + "\n\n" + long_sentence + " Kalimat pendek sesudahnya."
    max_chars = 150
    passages = split_passages(doc(text), max_sentences=4, overlap=1, max_chars=max_chars)
    assert len(long_sentence) > max_chars
    for passage in passages:
        if len(passage.text) > max_chars:
            assert len(passage.sentences) == 1, passage.text
    assert any(p.text == long_sentence for p in passages)
    assert any(len(p.sentences) > 1 for p in passages)


def test_a_sentence_without_end_is_cut_at_spaces_into_pieces_of_at_most_the_limit():
    words = " ".join(f"kata{n}" for n in range(3000))  # a page flattened to one line, no full stop
    text = "Judul\n\n" + words + "\n\n" + "x" * 2500  # and a "word" longer than the limit
    spans = sentence_spans(text)
    pieces = [text[s.start:s.end] for s in spans]
    assert pieces[0] == "Judul" and " ".join(pieces[1:-3]) == words and "".join(pieces[-3:]) == "x" * 2500
    assert max(len(p) for p in pieces) == MAX_SENTENCE_CHARS
    assert all(not p.startswith(" ") and not p.endswith(" ") for p in pieces)
    assert all(p.startswith("kata") and p[-1].isdigit() for p in pieces[1:-3])  # cut between words, never inside one
    passages = split_passages(doc(text), max_sentences=4, overlap=1, max_chars=900)
    assert max(len(p.text) for p in passages) == MAX_SENTENCE_CHARS


def test_passage_offsets_hold_on_the_seed_articles(built_index):
    from qa.files.reader import load_index

    settings, _ = built_index
    index = load_index(settings.index_dir)
    # The stored passages are the ones the splitter makes of each stored article: same offsets, same text.
    for doc_id, document in index.documents.items():
        made = split_passages(document, settings.passage_sentences, settings.passage_overlap, settings.passage_max_chars)
        stored = [p for p in index.passages if p.doc_id == doc_id]
        assert [(p.start, p.end, p.text) for p in stored] == [(p.start, p.end, p.text) for p in made]
    for passage in index.passages:
        for span in passage.sentences:
            assert passage.start <= span.start < span.end <= passage.end
        assert len(passage.text) <= settings.passage_max_chars or len(passage.sentences) == 1
    for doc_id, span in index.sentence_spans:
        sentence = index.documents[doc_id].text[span.start:span.end]
        assert sentence and sentence == sentence.strip()
