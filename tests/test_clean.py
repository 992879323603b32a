"""Clean stage: page furniture and personal data never reach the index; every sentence of the report does.

The seed articles (the bundled corpus/, front matter stripped) carry real furniture: login and sign-up
prompts, ad markers, related-article teasers with their captions, a size picker, captions printed twice and
a reader's e-mail address. The cleaning rules are general; these tests hold them to the real pages.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sentencex import segment

from qa.clean import EMAIL, clean_text
from qa.load import split_front_matter

CORPUS_DIR = Path(__file__).resolve().parent.parent / "corpus"

# Per seed article: the raw lines that are page furniture, and the line from which everything is furniture
# (a related-articles heading, or the reference list that closes a commentary). Everything else is the report.
FURNITURE = {
    "hubungan-rusia-korea-utara-selama-beberapa-dekade.txt": {
        "lines": ["Ikuti AAD Today Online di GoogleNews"],
        "tail_from": "Berita Lainnya",
    },
    "putin-dan-kim-janjikan-hubungan-lebih-erat.txt": {
        "lines": ["Tautan-tautan Akses", "Forum", "XS", "SM", "MD", "LG"],
        "tail_from": None,
    },
    "rusia-dan-korea-utara-makin-mesra.txt": {
        "lines": [
            "Lupa Kata Sandi? Klik di Sini", "atau Masuk melalui", "Belum Memiliki Akun Daftar di Sini",
            "atau Daftar melalui", "Sudah Memiliki Akun Masuk di Sini", "Konfirmasi Email",
            "Kami telah mengirimkan link aktivasi melalui email ke rudihamdani@gmail.com.",
            "Klik link aktivasi dan dapatkan akses membaca 2 artikel gratis non Laput di koran dan Majalah Tempo",
            "Jika Anda tidak menerima email,", "Kirimkan Lagi Sekarang",
            "Reporter", "Editor", "Yudono Yanuar", "image-gnews", "Iklan", "Scroll Untuk Melanjutkan",
            "Pilihan Editor Pasukan Israel Tembak Mati Remaja Palestina di Tepi Barat",
        ],
        "tail_from": "Rekomendasi Artikel",
    },
    "rusia-dan-korut-perdalam-hubungan.txt": {"lines": [], "tail_from": None},
    "transformasi-cepat-hubungan-rusia-korea-utara.txt": {"lines": [], "tail_from": "[1] The Hindu Bureau."},
}


def norm(text: str) -> str:
    return " ".join(text.replace("\u200b", "").split())


def raw_lines(name: str) -> list[str]:
    _, body = split_front_matter((CORPUS_DIR / name).read_text(encoding="utf-8"))
    return [norm(line) for line in body.split("\n") if norm(line)]


def split_seed(name: str) -> tuple[list[str], list[str]]:
    """(report lines, furniture lines) of one seed article, per the FURNITURE table."""
    spec = FURNITURE[name]
    report, furniture, in_tail = [], [], False
    for line in raw_lines(name):
        if spec["tail_from"] and line.startswith(spec["tail_from"]):
            in_tail = True
        (furniture if in_tail or line in spec["lines"] else report).append(line)
    return report, furniture


@pytest.fixture(scope="module")
def passages(built_index):
    from qa.files.reader import load_index

    settings, _ = built_index
    return load_index(settings.index_dir).passages


@pytest.fixture(scope="module")
def index(built_index):
    from qa.files.reader import load_index

    settings, _ = built_index
    return load_index(settings.index_dir)


def test_the_seed_table_matches_the_bundled_corpus():
    assert sorted(FURNITURE) == sorted(p.name for p in CORPUS_DIR.glob("*.txt"))
    for name, spec in FURNITURE.items():
        lines = raw_lines(name)
        for line in spec["lines"]:
            assert line in lines, (name, line)
        if spec["tail_from"]:
            assert any(line.startswith(spec["tail_from"]) for line in lines), name


@pytest.mark.parametrize("name", sorted(FURNITURE))
def test_every_sentence_of_the_article_body_is_in_some_passage(index, name):
    report, _ = split_seed(name)
    texts = [norm(p.text) for p in index.passages if p.doc_id == name]
    assert texts, f"{name} has no passages"
    missing = []
    for line in report:
        for sentence in segment("id", line):
            sentence = norm(sentence)
            if sentence and not any(sentence in text for text in texts):
                missing.append(sentence)
    assert not missing, f"{name}: sentences lost: {missing}"


@pytest.mark.parametrize("word", ["Kata Sandi", "Daftar", "Masuk", "Akun", "link aktivasi", "Konfirmasi Email",
                                  "Iklan", "Scroll Untuk Melanjutkan", "Berita Lainnya", "Rekomendasi Artikel",
                                  "Pilihan Editor", "Video Pilihan", "Konten sponsor", "GoogleNews",
                                  "Tautan-tautan Akses", "image-gnews", "Forum", "Index", "XS", "SM", "MD", "LG"])
def test_no_passage_contains_page_furniture(passages, word):
    pattern = re.compile(rf"\b{re.escape(word)}\b", re.I if " " in word else 0)
    hits = [p.doc_id for p in passages if pattern.search(p.text)]
    assert not hits, f"{word!r} in passages of {hits}"


def test_no_related_article_teaser_or_its_caption_reaches_the_index(index):
    # Every line after a related-articles heading: teaser titles, "8 jam lalu", captions, blurbs.
    all_text = norm(" ".join(doc.text for doc in index.documents.values()))
    for name, spec in FURNITURE.items():
        if spec["tail_from"] is None:
            continue
        _, furniture = split_seed(name)
        for line in furniture:
            assert line not in all_text, f"{name}: furniture reached the index: {line!r}"
    # The Tempo teaser blocks are found by their "... hari lalu" / "... jam lalu" timestamps.
    lines = raw_lines("rusia-dan-korea-utara-makin-mesra.txt")
    teasers = [lines[i - 1] for i, line in enumerate(lines) if re.fullmatch(r"\d+ (jam|hari) lalu", line)]
    assert len(teasers) >= 10
    for teaser in teasers:
        assert not any(teaser in norm(p.text) for p in index.passages), teaser


def test_no_email_address_anywhere_in_the_index(index):
    for doc in index.documents.values():
        assert not EMAIL.search(doc.text) and not EMAIL.search(doc.title)
        assert not any(EMAIL.search(str(value)) for value in doc.meta.values())
    assert not any(EMAIL.search(p.text) for p in index.passages)
    assert not any("rudihamdani" in p.text for p in index.passages)


def test_captions_printed_twice_are_kept_once(index):
    for name in FURNITURE:
        lines = raw_lines(name)
        twice = {a for a, b in zip(lines, lines[1:]) if a == b}
        text = norm(index.documents[name].text)
        for caption in twice:
            assert text.count(caption) == 1, (name, caption)
    for passage in index.passages:
        paragraphs = [norm(p) for p in passage.text.split("\n") if p.strip()]
        assert len(paragraphs) == len(set(paragraphs)), passage.text


def test_seed_titles_come_from_front_matter_and_publisher_is_kept(index):
    doc = index.documents["rusia-dan-korea-utara-makin-mesra.txt"]
    assert doc.title == "Rusia dan Korea Utara Makin Mesra, Punya Musuh Bersama AS"
    assert doc.meta["publisher"] == "Tempo"
    assert doc.text.startswith("Rusia dan Korea Utara Makin Mesra, Punya Musuh Bersama AS")


# General rules on small synthetic pages, English and Indonesian.

ENGLISH_PAGE = """City Council Approves New Budget

Sign in to your account
Create an account
Advertisement
Scroll to continue reading
The city council approved a budget of $4.5 million on Monday after a long debate.
Read more: Mayor unveils plan for parks
Council member Jane Doe said residents could send questions to budget.reader@example.com before Friday.
Photo: The council chamber in session on Monday.
Photo: The council chamber in session on Monday.
Follow us on Google News
The budget takes effect in July, officials said.

Related articles
Mayor unveils plan for parks
3 days ago
Parks department hires new staff for summer programs
"""

INDONESIAN_PAGE = """Harga Beras Naik di Pasar Induk

Iklan
Scroll Untuk Melanjutkan
Harga beras di pasar induk naik menjadi Rp 15.000 per kilogram pada pekan ini.
Baca juga: Pemerintah Impor Beras dari Thailand
Pedagang bernama Budi mengatakan pembeli bisa menghubunginya lewat budi.pedagang@mail.co.id untuk pesanan besar.
Belum punya akun? Daftar sekarang
Lupa kata sandi?
Reporter
Siti Aminah
Kenaikan harga dipicu oleh musim kemarau yang panjang, kata Kepala Dinas Perdagangan.
XS
SM
Berita Terkait
Pemerintah Impor Beras dari Thailand
2 jam lalu
Harga cabai turun menjelang Lebaran
"""


def test_english_page_furniture_is_dropped_and_body_kept():
    text = clean_text(ENGLISH_PAGE)
    assert text.split("\n\n") == [
        "City Council Approves New Budget",
        "The city council approved a budget of $4.5 million on Monday after a long debate.",
        "Council member Jane Doe said residents could send questions to [email] before Friday.",
        "Photo: The council chamber in session on Monday.",
        "The budget takes effect in July, officials said.",
    ]


def test_indonesian_page_furniture_is_dropped_and_body_kept():
    text = clean_text(INDONESIAN_PAGE)
    assert text.split("\n\n") == [
        "Harga Beras Naik di Pasar Induk",
        "Harga beras di pasar induk naik menjadi Rp 15.000 per kilogram pada pekan ini.",
        "Pedagang bernama Budi mengatakan pembeli bisa menghubunginya lewat [email] untuk pesanan besar.",
        "Kenaikan harga dipicu oleh musim kemarau yang panjang, kata Kepala Dinas Perdagangan.",
    ]


@pytest.mark.parametrize("address", ["reader@example.com", "first.last+news@mail.co.id", "a_b-c@sub.domain.org"])
def test_email_inside_a_body_sentence_becomes_a_placeholder(address):
    text = clean_text(f"Pembaca dapat menulis ke {address} untuk koreksi berita ini, kata redaksi.")
    assert text == "Pembaca dapat menulis ke [email] untuk koreksi berita ini, kata redaksi."


def test_a_long_body_paragraph_mentioning_an_account_is_kept():
    sentence = ("Polisi mengatakan pelaku meminta korban memberikan kata sandi rekening banknya melalui telepon, "
                "lalu menguras tabungan korban senilai Rp 250 juta dalam satu malam, dan kasus serupa dilaporkan "
                "di tiga kota lain sepanjang bulan ini.")
    assert len(sentence) > 200
    assert clean_text(sentence) == sentence


def test_a_line_repeated_far_apart_is_kept_both_times():
    # Only a repeat within a few lines is a caption printed twice; a refrain later in the text stays.
    lines = ["Kalimat pembuka berita.", "Rakyat menuntut keadilan.", "Satu.", "Dua.", "Tiga.", "Empat.",
             "Rakyat menuntut keadilan."]
    assert clean_text("\n".join(lines)).split("\n\n") == lines


def test_nothing_but_furniture_cleans_to_empty():
    assert clean_text("Iklan\nScroll Untuk Melanjutkan\nBaca juga: Berita lain\n\nBerita Lainnya\nJudul lain") == ""
