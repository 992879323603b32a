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
import datetime
import hashlib
import os
import re
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from qa.records import Document

ARTICLE_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm")
META_KEYS = ("title", "source_url", "publisher", "published", "author", "source_id")

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(?:(.*?)\r?\n)?(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S)
_OPENS_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(?:%s)[ \t]*:" % "|".join(META_KEYS))
_HTML_TAG = re.compile(r"<[^>]*>")


class LoadError(Exception):
    """A file that cannot become a document; the message says why, for the user."""


class FileGone(LoadError):
    """The file was there when the corpus was listed and is not now: deleted or moved away meanwhile."""


@dataclass
class CorpusFiles:
    articles: list[Path]  # read as articles
    others: list[Path]  # files of other types (a PDF, an image), which are not read
    # Files and folders that cannot be read at all, as (path relative to the corpus, why); a folder's path ends in
    # "/". A folder listed here may hold articles indexed before: they are kept, not taken as deleted, so the path
    # is as the document ids have it (shown_path when printed), except a name that cannot be a document id (not
    # UTF-8, a line break): spelt out at once.
    unreadable: list[tuple[str, str]] = field(default_factory=list)


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def shown_path(relative: str) -> str:
    """A relative path as a user can read it: bytes of a file name that is not UTF-8, and control characters (a
    line break or a terminal's escape in a name), written as \\xNN."""
    readable = os.fsencode(relative).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", readable)


def walk(top: Path, onerror: Callable[[OSError], None] | None = None) -> Iterator[tuple[str, list[str], list[str]]]:
    """os.walk's top-down walk (links to folders named among the folders, not followed), without its recursion:
    Python 3.11's os.walk calls itself once per level, so a tree a thousand folders deep was a RecursionError.
    The caller may remove names from the folder list to leave them out."""
    pending = [os.fspath(top)]
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = list(listing)
        except OSError as exc:
            if onerror is not None:
                onerror(exc)
            continue
        subfolders, names, links = [], [], set()
        for entry in entries:
            try:
                is_folder = entry.is_dir()
            except OSError:
                is_folder = False
            (subfolders if is_folder else names).append(entry.name)
            if is_folder and entry.is_symlink():
                links.add(entry.name)
        yield folder, subfolders, names
        pending.extend(os.path.join(folder, name) for name in reversed(subfolders) if name not in links)


def is_utf8(name: str) -> bool:
    """Whether a text can be written as UTF-8: not if it holds a lone surrogate (a byte of a file name that is not
    UTF-8, as Python keeps it, or a "\\ud800" escape in JSON)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


_LINE_BREAK = re.compile(r"[\n\r]")


def _unusable_name(name: str) -> str | None:
    """Why a file or folder name cannot be a document id, or None: one that is not UTF-8, or that holds a line
    break, which no link to the article could carry (the service's paths stop at one)."""
    if not is_utf8(name):
        return "name is not UTF-8: rename it"
    if (line_break := _LINE_BREAK.search(name)) is not None:
        return f"name holds a line break (\\x{ord(line_break.group()):02x}): rename it"
    return None


def scan_corpus(corpus_dir: Path) -> CorpusFiles:
    """The files below corpus_dir, recursively, in a stable order; hidden files and folders are left out. A folder
    that cannot be listed, a link to a folder and a name that cannot be a document id are reported, not silently
    dropped."""
    files = CorpusFiles([], [])
    found: list[Path] = []

    def cannot_list(error: OSError) -> None:
        relative = Path(error.filename).relative_to(corpus_dir).as_posix()
        files.unreadable.append((relative + "/", f"cannot list the folder: {error.strerror or error}"))

    for folder, subfolders, names in walk(corpus_dir, onerror=cannot_list):
        here = Path(folder)
        for name in sorted(subfolders):
            relative = (here / name).relative_to(corpus_dir).as_posix()
            if name.startswith("."):
                subfolders.remove(name)
            elif (unusable := _unusable_name(name)) is not None:
                subfolders.remove(name)
                files.unreadable.append((shown_path(relative) + "/", f"folder {unusable}"))
            elif _is_link(here / name):  # the walk does not follow it
                files.unreadable.append((relative + "/", "a link to a folder, not followed: copy the folder in, "
                                                         "or link its files one by one"))
        for name in names:
            if name.startswith("."):
                continue
            if name.lower().endswith(ARTICLE_SUFFIXES) and (unusable := _unusable_name(name)) is not None:
                relative = (here / name).relative_to(corpus_dir).as_posix()
                files.unreadable.append((shown_path(relative), f"file {unusable}"))
                continue
            found.append(here / name)  # a file of another type is named among those not read, whatever its name
    for path in sorted(found):
        if path.suffix.lower() not in ARTICLE_SUFFIXES:
            files.others.append(path)
        elif (kind := _not_a_file(path)) is None:
            files.articles.append(path)
        else:
            files.unreadable.append((path.relative_to(corpus_dir).as_posix(), f"not a file but {kind}: it is not read"))
    files.unreadable.sort()
    return files


def _is_link(path: Path) -> bool:
    try:
        return path.is_symlink()
    except OSError:  # in a folder that can be listed but not searched: the walk names the folder it cannot open
        return False


def _not_a_file(path: Path) -> str | None:
    """What a path that is no regular file is, itself or at the end of its link ("a pipe", "a device"): reading one
    could wait forever or never end. None for a file, and for a link that leads nowhere or a file in a folder that
    cannot be searched: reading those says what is wrong."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return None
    return _kind_of(mode)


def _kind_of(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    return ("a pipe" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a folder" if stat.S_ISDIR(mode) else
            "something else")


def doc_id_for(path: Path, corpus_dir: Path) -> str:
    return path.relative_to(corpus_dir).as_posix()


def read_bytes(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, at most max_bytes of them. Opened without waiting (a pipe put where the file was would
    otherwise block until something writes to it) and checked to be a regular file once open, so that what is
    read is what was checked."""
    try:
        # Not O_NONBLOCK's wait for a writer; not a terminal that took the file's place as this process's own.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError as exc:
        if not os.path.lexists(path):
            raise FileGone("the file is gone") from exc
        try:
            target = os.readlink(path)
        except OSError:  # not itself the link: a link in the folders above it leads nowhere
            raise LoadError(f"cannot read file: {exc.strerror or exc}") from exc
        raise LoadError(f"a link to {target}, which does not exist: point it at the article or remove it") from exc
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from exc
    try:
        status = os.fstat(descriptor)
        if (kind := _kind_of(status.st_mode)) is not None:
            raise LoadError(f"not a file but {kind}: it is not read")
        if status.st_size > max_bytes:
            raise LoadError(_too_large(status.st_size, max_bytes))
        with open(descriptor, "rb", closefd=False) as handle:
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise LoadError(f"cannot read file: {exc.strerror or exc}") from exc
    finally:
        os.close(descriptor)
    if len(data) > max_bytes:  # it grew while being read
        raise LoadError(_too_large(len(data), max_bytes))
    return data


def _too_large(size: int, max_bytes: int) -> str:
    mb, limit = f"{size / 1e6:.2f} MB", f"{max_bytes / 1e6:.2f} MB"
    if mb == limit:  # just over: in bytes, so that the two differ
        mb, limit = f"{size:,} bytes", f"{max_bytes:,} bytes"
    return f"file too large ({mb}; the limit is {limit}, set by QA_MAX_FILE_BYTES)"


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
        # A value left open ("[broken", '"unclosed') is found faulty on a later line: named where it starts. Any
        # other problem, where YAML noticed it (a block mapping's context is its first key, lines before).
        opened = str(getattr(exc, "context", "") or "").startswith(("while parsing a flow", "while scanning a quoted"))
        mark = getattr(exc, "context_mark", None) if opened else None
        mark = mark or getattr(exc, "problem_mark", None)
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
    return {k: v for k, v in meta.items() if isinstance(k, str)}, text[match.end():]


def markdown_to_text(text: str) -> str:
    """The words of a Markdown article (CommonMark with tables, by markdown-it-py), one block a paragraph:
    headings, paragraphs, list items and quotes as their text (a numbered item with its number), a table row as
    its cells joined by " | " with no separator rows, an image as its alt text; emphasis, link targets, bullets
    and HTML tags dropped."""
    from markdown_it import MarkdownIt

    blocks: list[str] = []
    row: list[str] | None = None
    number = ""  # an ordered item's number, kept: "2024. Tahun yang berat" is a year, read as an item
    for token in MarkdownIt("commonmark").enable("table").parse(text):
        if token.type == "list_item_open" and token.info:
            number = f"{token.info}{token.markup} "
        elif token.type == "tr_open":
            row = []
        elif token.type == "tr_close" and row is not None:
            blocks.append(" | ".join(cell for cell in row if cell))
            row = None
        elif token.type == "inline":
            words = _inline_text(token.children or [])
            if row is not None:
                row.append(words.strip())
            else:
                blocks.append(number + words)
                number = ""
        elif token.type in ("fence", "code_block"):
            blocks.append(token.content)
        elif token.type == "html_block":
            blocks.append(_HTML_TAG.sub("", token.content))
    return "\n\n".join(block.strip() for block in blocks if block.strip()) + "\n"


def _inline_text(children) -> str:
    parts = []
    for child in children:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append("\n")
        elif child.type == "image":
            parts.append(_inline_text(child.children or []))
    return "".join(parts)


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


_SCALARS = (str, int, float, bool, datetime.date)
MAX_META_ITEMS = 20  # of a list value ("author: [A, B]")


def clean_meta(meta: dict) -> dict:
    """The known keys as plain strings: a value, or a short list of values joined with commas. A key holding
    anything else (a mapping such as Hugo's "author: {name: …}", a longer or nested list) is left out, not turned
    into text: nested YAML aliases spell out to gigabytes (14 lines did), and the article reads without it."""
    cleaned = {}
    for key in META_KEYS:
        value = meta.get(key)
        if isinstance(value, list) and len(value) <= MAX_META_ITEMS and all(
                isinstance(v, _SCALARS) or v is None for v in value):
            value = ", ".join(str(v).strip() for v in value if v is not None)
        if isinstance(value, _SCALARS) and (text := _NOT_TEXT.sub("", str(value)).strip()):
            cleaned[key] = text
    return cleaned


# What a YAML escape can put in a value but no text holds: NUL ("\0", which PostgreSQL refuses) and a lone
# surrogate ("\ud800", which cannot be written as UTF-8 and breaks the tokenizer).
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")


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
