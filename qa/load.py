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

import codecs
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from qa.records import Document

ARTICLE_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
META_KEYS = ("title", "source_url", "publisher", "published", "author", "source_id")

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(?:(.*?)\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_OPENS_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?:%s)[ \t]*:" % "|".join(META_KEYS))
_MD_HEADING = re.compile(r"^#{1,6}[ \t]+", re.M)
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1")


class LoadError(Exception):
    """A file that cannot become a document; the message says why, for the user."""


@dataclass
class CorpusFiles:
    articles: list[Path]  # read as articles
    others: list[Path]  # files of other types (a PDF, an image), which are not read
    # Files and folders that cannot be read at all, as (path relative to the corpus, why); a folder's path ends in
    # "/". A folder listed here may hold articles indexed before: they are kept, not taken as deleted.
    unreadable: list[tuple[str, str]] = field(default_factory=list)


def shown_path(relative: str) -> str:
    """A relative path as a user can read it: bytes of a file name that is not UTF-8 written as \\xNN."""
    return os.fsencode(relative).decode("utf-8", "backslashreplace")


def is_utf8(name: str) -> bool:
    """Whether a text can be written as UTF-8: not if it holds a lone surrogate (a byte of a file name that is not
    UTF-8, as Python keeps it, or a "\\ud800" escape in JSON)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def scan_corpus(corpus_dir: Path) -> CorpusFiles:
    """The files below corpus_dir, recursively, in a stable order; hidden files and folders are left out. A folder
    that cannot be listed, a link to a folder and a name that is not UTF-8 are reported, not silently dropped."""
    files = CorpusFiles([], [])
    found: list[Path] = []

    def cannot_list(error: OSError) -> None:
        relative = Path(error.filename).relative_to(corpus_dir).as_posix()
        files.unreadable.append((shown_path(relative) + "/", f"cannot list the folder: {error.strerror or error}"))

    for folder, subfolders, names in os.walk(corpus_dir, onerror=cannot_list):
        here = Path(folder)
        for name in sorted(subfolders):
            relative = (here / name).relative_to(corpus_dir).as_posix()
            if name.startswith("."):
                subfolders.remove(name)
            elif not is_utf8(name):
                subfolders.remove(name)
                files.unreadable.append((shown_path(relative) + "/", "folder name is not UTF-8: rename it"))
            elif _is_link(here / name):  # os.walk does not follow it
                files.unreadable.append((relative + "/", "a link to a folder, not followed: copy the folder in, "
                                                         "or link its files one by one"))
        for name in names:
            if name.startswith("."):
                continue
            if not is_utf8(name):
                relative = (here / name).relative_to(corpus_dir).as_posix()
                if name.lower().endswith(ARTICLE_SUFFIXES):
                    files.unreadable.append((shown_path(relative), "file name is not UTF-8: rename it"))
                continue
            found.append(here / name)
    for path in sorted(found):
        if path.suffix.lower() not in ARTICLE_SUFFIXES:
            files.others.append(path)
        elif _may_be_a_file(path):
            files.articles.append(path)
    files.unreadable.sort()
    return files


def _is_link(path: Path) -> bool:
    try:
        return path.is_symlink()
    except OSError:  # in a folder that can be listed but not searched: os.walk names the folder it cannot open
        return False


def _may_be_a_file(path: Path) -> bool:
    """Not a pipe or a device (reading one could wait forever). A link that leads nowhere and a file in a folder
    that cannot be searched count: reading them says what is wrong."""
    try:
        return path.is_file() or path.is_symlink()
    except OSError:
        return True


def doc_id_for(path: Path, corpus_dir: Path) -> str:
    return path.relative_to(corpus_dir).as_posix()


def read_bytes(path: Path, max_bytes: int) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from exc
    if size > max_bytes:
        raise LoadError(f"file too large ({size / 1e6:.2f} MB; the limit is {max_bytes / 1e6:.2f} MB, set by "
                        "QA_MAX_FILE_BYTES)")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from exc


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_DECLARED_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([A-Za-z0-9_.:-]+)""", re.I)


def declared_charset(html: bytes) -> str | None:
    """The encoding an HTML page declares in its first kilobytes (<meta charset=…>), when Python knows it as a
    text encoding (not one of its bytes-to-bytes codecs such as "base64" or "rot13")."""
    found = _DECLARED_CHARSET.search(html[:4096])
    if not found:
        return None
    try:
        name = codecs.lookup(found.group(1).decode("ascii")).name
        b"a".decode(name)
    except (LookupError, UnicodeDecodeError):
        return None
    return name


def decode_text(data: bytes, html: bool = False) -> str:
    """UTF-8 text with plain line ends; an HTML page that is not UTF-8 is read in the encoding it declares."""
    if not data.strip():
        raise LoadError("empty file")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # a UTF-16 byte order mark
        raise LoadError("UTF-16 text, not UTF-8: save the file as UTF-8")
    if b"\x00" in data[:8192]:
        raise LoadError("binary file, not text")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        charset = declared_charset(data) if html else None  # looked for only when UTF-8 does not fit
        if charset and charset != "utf-8":
            try:
                return _normalized(data.decode(charset))
            except UnicodeDecodeError:
                pass
        raise LoadError(f"not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start}): save the file as "
                        "UTF-8") from exc
    return _normalized(text)


def _normalized(text: str) -> str:
    # A stray NUL further in (past the binary check) is no character of an article.
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")


def split_front_matter(text: str) -> tuple[dict | None, str]:
    """The front matter's keys (None when the text has none) and the text after it."""
    match = _FRONT_MATTER.match(text)
    if not match:
        if _OPENS_FRONT_MATTER.match(text):
            raise LoadError("front matter is not closed: end it with a line '---' before the article's text")
        return None, text
    try:
        meta = yaml.safe_load(match.group(1) or "") or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 2} of the file, " if mark is not None else ""  # + the '---' line, from 1
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise LoadError(f"front matter is not valid YAML ({where}{problem}): put a value that holds ': ' or "
                        "starts with [ { or \" in quotes") from exc
    except (ValueError, TypeError, OverflowError) as exc:  # a value YAML reads as a date or number but cannot build
        raise LoadError(f"front matter has a value YAML cannot read ({exc}): put it in quotes to keep it as "
                        "text") from exc
    except RecursionError as exc:
        raise LoadError("front matter is nested too deeply: keep each value on one level ('key: value')") from exc
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
    # Not extensive: a date is taken only from the page's markup (meta tags, <time>, the URL), never guessed from
    # the first date in the text, which is usually the event's, not the article's.
    found = trafilatura.extract_metadata(html, extensive=False)
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
    suffix = path.suffix.lower()
    text = decode_text(data, html=suffix in (".html", ".htm"))
    if suffix in (".html", ".htm"):
        meta, text = html_to_text(text)
    else:
        meta, text = split_front_matter(text)
        if suffix in (".md", ".markdown"):
            text = markdown_to_text(text)
    if not text.strip():
        raise LoadError("no text after the front matter" if meta is not None else "no text")
    meta = clean_meta(meta or {})
    return Document(
        doc_id=doc_id_for(path, corpus_dir),
        title=meta.pop("title", ""),
        text=text,
        meta=meta,
        sha256=sha256_of(data),
    )
