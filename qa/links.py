"""Addresses the service gives out: an article in the source viewer, a cited passage in it (with a fingerprint
that tells a link made before the article changed), a timeline event's sentence, and an article's own address."""

from __future__ import annotations

import hashlib
from urllib.parse import quote, urlencode


def source_view_url(doc_id: str) -> str:
    """The article's page in this service's source viewer (its original address, if any, is `original_link`)."""
    return "/sources/" + quote(doc_id, safe="/")


def original_link(meta: dict) -> str | None:
    """The article's own address from its metadata, when it is one a client may link to: only http(s) (a
    javascript: URL in a front matter would run on click)."""
    url = meta.get("source_url")
    return url if isinstance(url, str) and url.lower().startswith(("http://", "https://")) else None


def passage_check(text: str) -> str:
    """A short fingerprint of a cited passage's text: a link made before an article changed can tell."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]


def citation_url(doc_id: str, start: int, end: int, answer: tuple[int, int] | None, passage: str) -> str:
    """The source view scrolled to the cited passage (`passage`, the text from start to end), with the passage and
    the answer highlighted."""
    params = {"start": start, "end": end}
    if answer:
        params |= {"astart": answer[0], "aend": answer[1]}
    params["check"] = passage_check(passage)
    return f"{source_view_url(doc_id)}?{urlencode(params)}#cited"


def event_url(event) -> str:
    """The source view at a timeline event (qa.timeline.TimelineEvent): its sentence, with the date highlighted."""
    return citation_url(event.doc_id, event.sentence_start, event.sentence_end, (event.date.start, event.date.end),
                        event.sentence)
