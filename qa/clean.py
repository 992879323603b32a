"""Clean stage: drop page furniture and personal data, keep every sentence of the article body.

The rules are general patterns of news-site layouts (Indonesian and English), applied line by line:
account prompts, ad markers, reference-list entries, share/follow prompts, size pickers, bylines without content, relative
timestamps of teasers, lines repeated within a few lines (captions printed twice), and everything
after a "related articles" heading. E-mail addresses are redacted wherever they remain.
"""

from __future__ import annotations

import re
from dataclasses import replace

from qa.records import Document

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
EMAIL_PLACEHOLDER = "[email]"

# A line that is only one of these is furniture.
_FURNITURE_LINE = re.compile(
    r"""^(?:
        iklan | advertisement | advertorial | ads? | sponsored | konten\ sponsor.* | video\ pilihan
      | scroll\ (?:untuk|to)\ (?:melanjutkan|continue)(?:\ reading)?
      | baca\ juga\b.* | read\ (?:more|also)\b.* | pilihan\ editor\b.* | editor'?s\ picks?\b.*
      | (?:ikuti|follow)\b.*\b(?:google\ ?news|instagram|twitter|facebook|whatsapp|telegram|tiktok|youtube)\b.*
      | (?:bagikan|share)(?:\ (?:artikel|this|on)\b.*)?
      | image-\w+ | tautan-tautan\ akses | skip\ to\ (?:main\ )?content | forum | index | home | beranda
      | (?:xxs|xs|s|sm|m|md|l|lg|xl|xxl)
      | \d+\ (?:detik|menit|jam|hari|minggu|bulan|tahun)\ (?:yang\ )?lalu
      | \d+\ (?:seconds?|minutes?|hours?|days?|weeks?|months?)\ ago
      | klik\ di\ sini | click\ here
    )[.:!]?$""",
    re.I | re.X,
)

# Account and sign-up prompts anywhere in a short line.
_ACCOUNT_PROMPT = re.compile(
    r"""\b(?:
        lupa\ kata\ sandi | kata\ sandi | masuk\ (?:melalui|di\ sini|dengan) | daftar\ (?:melalui|di\ sini|sekarang)
      | memiliki\ akun | belum\ punya\ akun | konfirmasi\ e-?mail | link\ aktivasi | tautan\ aktivasi
      | menerima\ e-?mail | kirim(?:kan)?\ lagi | berlangganan
      | forgot\ (?:your\ )?password | sign\ (?:in|up) | log\ ?in | create\ an\ account | have\ an\ account
      | subscribe | newsletter | activation\ link | verify\ your\ e-?mail
    )\b""",
    re.I | re.X,
)
_ACCOUNT_PROMPT_MAX_CHARS = 200

# Labels of a byline block whose value sits on the next line ("Reporter", "Editor").
_BYLINE_LABEL = re.compile(r"^(?:reporter|editor|penulis|pewarta|writer|author|fotografer)$", re.I)
_SHORT_NAME = re.compile(r"^[A-Z][\w.'-]*(?:\s+[A-Z][\w.'-]*){0,4}$")

# A heading after which a page lists other articles: the article body has ended.
_SECTION_END = re.compile(
    r"""^(?:berita\ lainnya|berita\ terkait|artikel\ terkait|rekomendasi\ artikel|rekomendasi\ untuk\ anda
      | terpopuler|paling\ banyak\ dibaca|related\ (?:articles|stories|news|content)|more\ stories|most\ popular
      | you\ may\ also\ like|recommended\ for\ you)[.:]?$""",
    re.I | re.X,
)

# An entry of a reference list ("[3] Reuters. (2024, February 20). Title. https://…"): the article's sources,
# not its report; in another language than the article, such entries also crowd out the body in search.
_REFERENCE_ENTRY = re.compile(r"^\[\d{1,3}\]\s.*\bhttps?://\S+$")

_DUPLICATE_WINDOW = 3  # a line equal to one of the last few kept lines is a repeat (captions printed twice)


def normalize_line(line: str) -> str:
    return " ".join(line.replace("\u00a0", " ").replace("\u200b", "").split())


def is_furniture(line: str) -> bool:
    if _FURNITURE_LINE.match(line) or _REFERENCE_ENTRY.match(line):
        return True
    return len(line) <= _ACCOUNT_PROMPT_MAX_CHARS and bool(_ACCOUNT_PROMPT.search(line))


def clean_text(raw: str) -> str:
    """Return the article text with furniture removed; paragraphs are separated by one blank line."""
    kept: list[str] = []
    lines = [normalize_line(line) for line in raw.split("\n")]
    skip_next_name = False
    for line in lines:
        if not line:
            continue
        if skip_next_name:
            skip_next_name = False
            if _SHORT_NAME.match(line) and not _BYLINE_LABEL.match(line):
                continue
        if _SECTION_END.match(line):
            break
        if _BYLINE_LABEL.match(line):
            skip_next_name = True
            continue
        if is_furniture(line):
            continue
        if line in kept[-_DUPLICATE_WINDOW:]:
            continue
        kept.append(line)
    return EMAIL.sub(EMAIL_PLACEHOLDER, "\n\n".join(kept))


def default_title(text: str) -> str:
    """The headline: the first line of the cleaned text, shortened when it is a whole paragraph."""
    first = text.split("\n", 1)[0].strip()
    if len(first) <= 160:
        return first
    return first[:157].rsplit(" ", 1)[0] + "…"


def clean_document(doc: Document) -> Document:
    text = clean_text(doc.text)
    title = EMAIL.sub(EMAIL_PLACEHOLDER, normalize_line(doc.title)) or default_title(text)
    meta = {key: EMAIL.sub(EMAIL_PLACEHOLDER, value) for key, value in doc.meta.items()}
    return replace(doc, text=text, title=title, meta=meta)
