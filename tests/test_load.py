"""Load stage: which files become documents, their ids, metadata and text, and a clear error for bad input."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from qa.clean import clean_document
from qa.load import LoadError, load_document, scan_corpus, shown_path, walk

BODY = "Harga beras di Jakarta naik menjadi Rp 15.000 per kilogram pada pekan ini.\n"
MAX_BYTES = 1_000_000

HTML_PAGE = """<!DOCTYPE html>
<html lang="id"><head><meta charset="utf-8">
<title>Banjir Melanda Kota Contoh | Harian Contoh</title>
<meta property="og:url" content="https://contoh.example/berita/banjir">
<meta property="og:site_name" content="Harian Contoh">
<meta name="date" content="2024-03-05">
</head><body>
<nav><ul><li><a href="/">Beranda</a></li><li><a href="/politik">Menu Politik Nasional</a></li>
<li><a href="/masuk">Masuk akun pembaca setia</a></li></ul></nav>
<div class="ad">Pasang iklan murah di sini sekarang juga</div>
<article><h1>Banjir Melanda Kota Contoh</h1>
<p>Banjir besar melanda Kota Contoh pada Selasa pagi setelah hujan deras mengguyur selama dua belas jam.</p>
<p>Wali kota mengatakan sekitar 20.000 warga harus mengungsi ke gedung sekolah dan masjid terdekat.</p>
<p>Petugas pemadam kebakaran dan relawan membantu mengevakuasi warga lanjut usia dengan perahu karet.</p>
</article>
<footer><p>Hak cipta 2024 Harian Contoh. Semua hak dilindungi undang-undang. Kebijakan privasi redaksi.</p></footer>
</body></html>
"""


def load(corpus: Path, rel: str):
    return load_document(corpus / rel, corpus, MAX_BYTES)


def test_finds_txt_md_and_html_recursively_in_a_stable_order(make_corpus):
    corpus, _ = make_corpus({
        "b.txt": BODY,
        "a.md": BODY,
        "news/2024/c.html": HTML_PAGE,
        "news/d.HTM": HTML_PAGE,
        "notes.pdf": b"%PDF-1.4",
        "data.json": "{}",
        ".hidden.txt": BODY,
        ".git/e.txt": BODY,
    })
    files = scan_corpus(corpus)
    found = [p.relative_to(corpus).as_posix() for p in files.articles]
    assert found == ["a.md", "b.txt", "news/2024/c.html", "news/d.HTM"]
    assert found == [p.relative_to(corpus).as_posix() for p in scan_corpus(corpus).articles]
    assert [p.relative_to(corpus).as_posix() for p in files.others] == ["data.json", "notes.pdf"]


def test_doc_id_is_the_relative_path_with_forward_slashes(make_corpus):
    corpus, _ = make_corpus({"dunia/asia/korea.txt": "Judul\n\n" + BODY})
    assert load(corpus, "dunia/asia/korea.txt").doc_id == "dunia/asia/korea.txt"


def test_doc_id_and_hash_are_stable_across_loads_and_corpus_locations(make_corpus, tmp_path):
    corpus, _ = make_corpus({"a/b.txt": "Judul\n\n" + BODY})
    first = load(corpus, "a/b.txt")
    moved = tmp_path / "elsewhere"
    corpus.rename(moved)
    second = load(moved, "a/b.txt")
    assert (first.doc_id, first.sha256) == (second.doc_id, second.sha256)


def test_front_matter_gives_title_url_publisher_and_date(make_corpus):
    corpus, _ = make_corpus({"a.txt": (
        "---\n"
        "title: Harga Beras Naik\n"
        "source_url: https://contoh.example/beras\n"
        "publisher: Harian Contoh\n"
        "published: 2024-06-19\n"
        "---\n"
        "Harga beras naik di pasar\n\n" + BODY
    )})
    doc = load(corpus, "a.txt")
    assert doc.title == "Harga Beras Naik"
    assert doc.meta == {"source_url": "https://contoh.example/beras", "publisher": "Harian Contoh",
                        "published": "2024-06-19"}
    assert "---" not in doc.text and "source_url" not in doc.text
    assert doc.text.startswith("Harga beras naik di pasar")


def test_title_defaults_to_the_headline(make_corpus):
    corpus, _ = make_corpus({
        "plain.txt": "Harga Beras Naik di Pasar Induk\n\n" + BODY,
        "meta.txt": "---\npublisher: Harian Contoh\n---\nBanjir di Kota Contoh\n\n" + BODY,
        "heading.md": "# Gempa Guncang Pulau Contoh\n\n" + BODY,
    })
    assert clean_document(load(corpus, "plain.txt")).title == "Harga Beras Naik di Pasar Induk"
    assert clean_document(load(corpus, "meta.txt")).title == "Banjir di Kota Contoh"
    assert clean_document(load(corpus, "heading.md")).title == "Gempa Guncang Pulau Contoh"


def test_markdown_markup_is_removed_but_its_text_kept(make_corpus):
    corpus, _ = make_corpus({"a.md": (
        "## Judul Berita\n\nMenurut **Menteri Keuangan**, anggaran naik. Lihat [laporan resmi](https://x.example/r).\n"
    )})
    text = load(corpus, "a.md").text
    assert "Judul Berita" in text and "#" not in text
    assert "Menurut Menteri Keuangan, anggaran naik." in text
    assert "Lihat laporan resmi." in text and "https://" not in text


def test_markdown_lists_tables_emphasis_and_images_are_read_as_their_words(make_corpus):
    corpus, _ = make_corpus({"a.md": (
        "# Kapal *Angara*\n\n- Kapal _Angara_ berlayar dari Rajin.\n* Muatannya ![peti kemas](p.png) amunisi.\n\n"
        "| Kolom | Nilai |\n|---|---|\n| Tonase | 5.000 ton |\n\n> Kutipan `pejabat` itu.\n"
    )})
    doc = clean_document(load(corpus, "a.md"))
    assert doc.title == "Kapal Angara"
    for words in ["Kapal Angara berlayar dari Rajin.", "Muatannya peti kemas amunisi.", "Tonase | 5.000 ton",
                  "Kutipan pejabat itu."]:
        assert words in doc.text
    assert not any(mark in doc.text for mark in ("*", "_", "- ", "|---", "| Tonase", "![", ">"))


def test_a_markdown_paragraph_that_opens_with_a_year_keeps_it():
    from qa.load import markdown_to_text

    # CommonMark reads "2024. …" as item 2024 of a numbered list: the number is the year, and stays.
    assert markdown_to_text("2024. Tahun yang berat bagi Rusia.\n") == "2024. Tahun yang berat bagi Rusia.\n"
    assert markdown_to_text("1) Satu.\n2) Dua.\n") == "1) Satu.\n\n2) Dua.\n"


def test_an_html_page_without_a_date_in_its_markup_has_no_published_date(make_corpus):
    page = HTML_PAGE.replace('<meta name="date" content="2024-03-05">', "").replace(
        "pada Selasa pagi", "pada 9 September 2025")
    corpus, _ = make_corpus({"banjir.html": page})
    doc = load(corpus, "banjir.html")
    assert "9 September 2025" in doc.text and "published" not in doc.meta  # the event's date is no publication date


def test_windows_line_endings_and_bom_are_normalised(make_corpus):
    corpus, _ = make_corpus({"a.txt": "\ufeffJudul\r\n\r\nKalimat pertama.\r\nKalimat kedua.\r\n".encode("utf-8")})
    text = load(corpus, "a.txt").text
    assert "\r" not in text and not text.startswith("\ufeff")
    assert text.startswith("Judul\n\nKalimat pertama.")


def test_html_goes_through_the_main_text_extractor(make_corpus):
    corpus, _ = make_corpus({"banjir.html": HTML_PAGE})
    doc = clean_document(load(corpus, "banjir.html"))
    for sentence in (
        "Banjir besar melanda Kota Contoh pada Selasa pagi setelah hujan deras mengguyur selama dua belas jam.",
        "Wali kota mengatakan sekitar 20.000 warga harus mengungsi ke gedung sekolah dan masjid terdekat.",
        "Petugas pemadam kebakaran dan relawan membantu mengevakuasi warga lanjut usia dengan perahu karet.",
    ):
        assert sentence in doc.text
    for furniture in ("Menu Politik Nasional", "Masuk akun pembaca", "Pasang iklan", "Hak cipta", "<p>", "<nav"):
        assert furniture not in doc.text
    assert doc.title == "Banjir Melanda Kota Contoh"
    assert doc.meta["source_url"] == "https://contoh.example/berita/banjir"
    assert doc.meta["publisher"] == "Harian Contoh"
    assert doc.meta["published"] == "2024-03-05"


@pytest.mark.parametrize(("content", "expected"), [
    (b"", "empty file"),
    (b"  \n\n\t \n", "empty file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00", "binary file"),
    ("Judul\n\nHarga naik 10 persen.\n".encode("latin-1") + b"Caf\xe9 tutup.\n", "not valid UTF-8"),
    ("Judul\n\nHarga naik.\n".encode("utf-16"), r"UTF-16 text, not UTF-8: save the file as UTF-8"),
    (b"---\ntitle: [tidak ditutup\npublished: 2024-01-02\n---\nIsi berita.\n",
     r"front matter is not valid YAML \(line 2 of the file, "),  # the line the list opens on, not the next
    (b"---\ntitle: Judul\nauthor: A\n- x\n---\nIsi berita.\n", r"front matter is not valid YAML \(line 4 of the file, "),
    (b"---\n- satu\n- dua\n---\nIsi berita.\n", "front matter must be a mapping"),
    (b"---\npublished: 2024-02-30\n---\nIsi berita.\n", r"front matter has a value YAML cannot read \(day is out "
                                                       r"of range for month\): put it in quotes"),
    (b"---\ntitle: Hanya Judul\n---\n\n", "no text after the front matter"),
    (b"---\ntitle: Judul: dengan titik dua\n---\nIsi berita.\n",
     r"^front matter is not valid YAML \(line 2 of the file, mapping values are not allowed here\): put a value "
     r"that holds ': ' or starts with \[ \{ or \" in quotes$"),
    (b"---\ntitle: Tanpa Penutup\npublished: 2024-01-02\nIsi berita.\n",
     "^front matter is not closed: end it with a line '---' before the article's text$"),
    (b"\xef\xbb\xbf\xc2\xa0\xc2\xa0\n", "^no text$"),  # a byte-order mark and non-breaking spaces
    (b"---\ntitle: " + b"[" * 2000 + b"]" * 2000 + b"\n---\nIsi berita.\n",
     r"^front matter is nested too deeply: keep each value on one level \('key: value'\)$"),
], ids=["empty", "whitespace-only", "binary", "not-utf8", "utf16", "bad-yaml", "bad-yaml-line", "yaml-not-mapping", "bad-date",
        "only-front-matter", "colon-in-title", "unclosed", "bom-only", "nested"])
def test_bad_file_gives_a_clear_load_error(make_corpus, content, expected):
    corpus, _ = make_corpus({"bad.txt": content})
    with pytest.raises(LoadError, match=expected):
        load(corpus, "bad.txt")


def test_invalid_utf8_message_says_where(make_corpus):
    corpus, _ = make_corpus({"bad.txt": b"Kalimat biasa. \xff\xfe lalu rusak."})
    with pytest.raises(LoadError) as info:
        load(corpus, "bad.txt")
    assert "0xff" in str(info.value) and "offset 15" in str(info.value)


def test_huge_file_is_refused_without_reading_it(make_corpus):
    corpus, _ = make_corpus({"huge.txt": "Judul\n\n" + "Kalimat yang panjang sekali. " * 2_000})
    with pytest.raises(LoadError, match=r"^file too large \(0\.06 MB; the limit is 0\.01 MB, set by QA_MAX_FILE_BYTES\)$"):
        load_document(corpus / "huge.txt", corpus, max_bytes=10_000)


def test_a_file_just_over_the_limit_says_so_in_bytes(make_corpus):
    corpus, _ = make_corpus({"pas.txt": "Judul\n\n" + "x" * 9_994})
    with pytest.raises(LoadError, match=r"^file too large \(10,001 bytes; the limit is 10,000 bytes, set by "
                                        r"QA_MAX_FILE_BYTES\)$"):
        load_document(corpus / "pas.txt", corpus, max_bytes=10_000)


def test_html_without_article_text_is_refused(make_corpus):
    corpus, _ = make_corpus({"empty.html": (
        "<html><head><title>Beranda</title></head><body><nav><ul><li><a href='/'>Beranda</a></li>"
        "<li><a href='/politik'>Politik</a></li></ul></nav><footer>Hak cipta 2024</footer></body></html>"
    )})
    with pytest.raises(LoadError, match="no article text found in the HTML"):
        load(corpus, "empty.html")


def test_unreadable_file_gives_load_error_not_oserror(make_corpus):
    # Tests run as root, where chmod 000 does not stop reading: a dangling symlink and a folder behind an
    # article-like name give real OS errors instead.
    corpus, _ = make_corpus({"good.txt": "Judul\n\n" + BODY})
    os.symlink(corpus / "missing-target.txt", corpus / "dangling.txt")
    (corpus / "real-folder").mkdir()
    os.symlink(corpus / "real-folder", corpus / "folder-link.txt")
    scan = scan_corpus(corpus)
    assert [p.name for p in scan.articles] == ["dangling.txt", "good.txt"]
    assert [path for path, _ in scan.unreadable] == ["folder-link.txt/"]  # a link to a folder, named as such
    with pytest.raises(LoadError, match=rf"^a link to {re.escape(str(corpus / 'missing-target.txt'))}, which does not "
                                        "exist: point it at the article or remove it$"):
        load(corpus, "dangling.txt")
    with pytest.raises(LoadError, match="not a file but a folder: it is not read"):
        load(corpus, "folder-link.txt")


def test_empty_front_matter_is_front_matter_and_a_late_nul_is_dropped(make_corpus):
    body = "Kalimat berita yang biasa saja. " * 300  # past the first 8 kB, where a NUL means a binary file
    corpus, _ = make_corpus({"a.txt": f"---\n---\nJudul\n\n{body}Isi\x00 berita.\n".encode()})
    doc = load(corpus, "a.txt")
    assert doc.text == f"Judul\n\n{body}Isi berita.\n" and doc.meta == {}


def test_a_nul_or_a_lone_surrogate_written_as_a_yaml_escape_is_left_out_of_the_title(make_corpus, embedder):
    # Valid YAML, but no text: PostgreSQL refuses a NUL in a text field, and "\ud800" cannot be written as UTF-8.
    from qa.config import Settings
    from qa.indexer import build_index

    corpus, index = make_corpus({"a.md": '---\ntitle: "Judul\\0 aneh \\ud800"\nauthor: "Budi\\0"\n---\n'
                                         "Kafe Tugu dibuka pada tahun 1960.\n"})
    doc = load(corpus, "a.md")
    assert (doc.title, doc.meta) == ("Judul aneh", {"author": "Budi"})
    report = build_index(Settings(corpus_dir=corpus, index_dir=index), embedder=embedder)
    assert report.added == ["a.md"] and report.skipped == []


def test_an_html_page_in_the_encoding_it_declares_is_read(make_corpus):
    page = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1252">'
            "<title>Kafe di Kota</title></head><body><article><h1>Kafe di Kota</h1><p>Kafe Tugu dibuka pada tahun "
            "1960 dan menyajikan caf\u00e9 au lait yang terkenal di seluruh kota. Pengunjung datang dari berbagai "
            "daerah untuk mencicipinya setiap akhir pekan.</p></article></body></html>")
    corpus, _ = make_corpus({"kafe.html": page.encode("cp1252"), "tanpa.html": page.replace(
        "; charset=windows-1252", "").encode("cp1252")})
    assert "café au lait" in load(corpus, "kafe.html").text
    with pytest.raises(LoadError, match="not valid UTF-8"):  # declares nothing: UTF-8 is assumed
        load(corpus, "tanpa.html")


@pytest.mark.parametrize("codec", ["rot13", "base64", "zlib"])
def test_a_declared_codec_that_is_no_text_encoding_is_ignored(make_corpus, codec):
    page = f'<html><head><meta charset="{codec}"><title>Kafe</title></head><body><p>Caf\u00e9.</p></body></html>'
    corpus, _ = make_corpus({"kafe.html": page.encode("cp1252")})
    with pytest.raises(LoadError, match="not valid UTF-8"):
        load(corpus, "kafe.html")


def test_front_matter_closed_with_dots_is_front_matter(make_corpus):
    corpus, _ = make_corpus({"a.md": "---\ntitle: Judul Pandoc\n...\nIsi berita.\n"})
    doc = load(corpus, "a.md")
    assert (doc.title, doc.text) == ("Judul Pandoc", "Isi berita.\n")


def test_pipes_and_devices_and_links_to_them_are_named_and_never_read(make_corpus):
    corpus, _ = make_corpus({"good.txt": "Judul\n\n" + BODY})
    os.mkfifo(corpus / "pipa.txt")
    os.symlink(corpus / "pipa.txt", corpus / "ke-pipa.txt")
    os.symlink("/dev/zero", corpus / "nol.txt")  # endless: read whole, it would fill the memory
    scan = scan_corpus(corpus)
    assert [p.name for p in scan.articles] == ["good.txt"]
    assert scan.unreadable == [("ke-pipa.txt", "not a file but a pipe: it is not read"),
                               ("nol.txt", "not a file but a device: it is not read"),
                               ("pipa.txt", "not a file but a pipe: it is not read")]
    # One put in a file's place after the corpus was listed: refused once open, without waiting for a writer.
    with pytest.raises(LoadError, match="^not a file but a pipe: it is not read$"):
        load(corpus, "pipa.txt")
    with pytest.raises(LoadError, match="^not a file but a device: it is not read$"):
        load(corpus, "nol.txt")


def test_front_matter_that_would_spell_out_to_gigabytes_is_left_out_and_the_article_read(make_corpus):
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"] + [
        f"a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    bomb = "---\n" + "\n".join(levels) + "\ntitle: [*a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8, *a8]\n" \
           "author: {name: Ani, email: ani@contoh.example}\npublisher: Harian Contoh\n---\nIsi berita.\n"
    corpus, _ = make_corpus({"bom.md": bomb})
    doc = load(corpus, "bom.md")  # 60 s and 3 GB when the title was turned into text
    assert (doc.title, doc.meta, doc.text) == ("", {"publisher": "Harian Contoh"}, "Isi berita.\n")


def test_a_short_list_in_front_matter_is_joined(make_corpus):
    corpus, _ = make_corpus({"a.md": "---\nauthor: [Ani, null, Budi]\ntitle: Judul\n---\nIsi berita.\n"})
    assert load(corpus, "a.md").meta["author"] == "Ani, Budi"


def test_a_tree_deeper_than_python_recurses_is_scanned(make_corpus):
    corpus, _ = make_corpus({"good.txt": "Judul\n\n" + BODY})
    deep = corpus  # Python 3.11's os.walk (and Path.mkdir(parents=True)) recurse once per level: RecursionError
    for _ in range(1100):
        deep = deep / "d"
        deep.mkdir()
    (deep / "dalam.txt").write_text("Judul\n\n" + BODY, encoding="utf-8")
    try:
        assert [p.relative_to(corpus).as_posix() for p in scan_corpus(corpus).articles] == \
            ["/".join(["d"] * 1100) + "/dalam.txt", "good.txt"]
        assert sum(1 for _ in walk(corpus)) == 1101
    finally:  # taken down level by level: pytest's own clean-up of old temporary folders recurses too
        (deep / "dalam.txt").unlink()
        while deep != corpus:
            deep.rmdir()
            deep = deep.parent


def test_control_characters_of_a_file_name_are_spelt_out():
    assert shown_path("berita\nbaru\x1b[31m.txt") == "berita\\x0abaru\\x1b[31m.txt"
    assert shown_path("kopi \u00e9.txt") == "kopi \u00e9.txt"
