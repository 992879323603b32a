"""Load stage: find article files under the corpus folder and read each into a Document.

Plain text and Markdown may start with a YAML front-matter block for metadata:

    ---
    title: Headline of the article
    source_url: https://example.com/article
    publisher: Example News
    published: 2024-06-19
    ---

HTML goes through trafilatura's main-text extractor, which also supplies title, URL and date.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from qa.records import Document

ARTICLE_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
META_KEYS = ("title", "source_url", "publisher", "published", "author", "source_id")

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)
_MD_HEADING = re.compile(r"^#{1,6}[ \t]+", re.M)
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


class LoadError(Exception):
    """A file that cannot become a document; the message says why, for the user."""


@dataclass
class CorpusFiles:
    articles: list[Path]  # read as articles
    others: list[Path]  # files of other types (a PDF, an image), which are not read


def scan_corpus(corpus_dir: Path) -> CorpusFiles:
    """The files below corpus_dir, recursively, in a stable order; hidden files and folders are left out."""
    files = CorpusFiles([], [])
    for path in sorted(corpus_dir.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(corpus_dir).parts):
            continue
        if path.suffix.lower() in ARTICLE_SUFFIXES and (path.is_file() or path.is_symlink()):
            files.articles.append(path)
        elif path.is_file():
            files.others.append(path)
    return files


def doc_id_for(path: Path, corpus_dir: Path) -> str:
    return path.relative_to(corpus_dir).as_posix()


def read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise LoadError(f"file too large ({size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.1f} MB)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from exc


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def decode_text(data: bytes) -> str:
    if not data.strip():
        raise LoadError("empty file")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # a UTF-16 byte order mark
        raise LoadError("UTF-16 text, not UTF-8: save the file as UTF-8")
    if b"\x00" in data[:8192]:
        raise LoadError("binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoadError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})") from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def split_front_matter(text: str) -> tuple[dict, str]:
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    try:
        meta = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as exc:
        raise LoadError(f"front matter is not valid YAML: {str(exc).splitlines()[0]}") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # a value YAML reads as a date or number but cannot build
        raise LoadError(f"front matter has a value YAML cannot read ({exc}): put it in quotes to keep it as "
                        "text") from exc
    if not isinstance(meta, dict):
        raise LoadError("front matter must be a mapping of 'key: value' lines")
    return {str(k): v for k, v in meta.items()}, text[match.end():]


def markdown_to_text(text: str) -> str:
    text = _MD_HEADING.sub("", text)
    text = _MD_LINK.sub(r"\1", text)
    return _MD_EMPHASIS.sub(r"\2", text)


def html_to_text(html: str) -> tuple[dict, str]:
    import trafilatura

    body = trafilatura.extract(html, include_comments=False, include_tables=False, favor_precision=True)
    if not body or not body.strip():
        raise LoadError("no article text found in the HTML")
    found = trafilatura.extract_metadata(html)
    meta = {}
    if found is not None:
        for key, value in (("title", found.title), ("source_url", found.url),
                           ("publisher", found.sitename), ("published", found.date), ("author", found.author)):
            if value:
                meta[key] = value
    return meta, body


def clean_meta(meta: dict) -> dict:
    """Keep the known keys as plain strings."""
    return {key: str(meta[key]).strip() for key in META_KEYS if meta.get(key) not in (None, "")}


def load_document(path: Path, corpus_dir: Path, max_bytes: int) -> Document:
    """Read one file into a Document with its raw (not yet cleaned) text. Raises LoadError."""
    data = read_bytes(path, max_bytes)
    text = decode_text(data)
    suffix = path.suffix.lower()
    if suffix in (".html", ".htm"):
        meta, text = html_to_text(text)
    else:
        meta, text = split_front_matter(text)
        if suffix in (".md", ".markdown"):
            text = markdown_to_text(text)
    if not text.strip():
        raise LoadError("no text after the front matter")
    meta = clean_meta(meta)
    return Document(
        doc_id=doc_id_for(path, corpus_dir),
        title=meta.pop("title", ""),
        text=text,
        meta=meta,
        sha256=sha256_of(data),
    )
