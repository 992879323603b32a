"""What a request body was sent as, and whether its percent-encoded fields are text: shared by the API (qa.api)
and the chat form (qa.web)."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

FORM = "application/x-www-form-urlencoded"


def media_type(content_type: str | None) -> str:
    """"Application/JSON; charset=utf-8" -> "application/json"; "" when none was sent."""
    return (content_type or "").split(";")[0].strip().lower()


def fields_are_utf8(encoded: bytes, only: bytes | None = None) -> bool:
    """Whether the values of a query string or urlencoded form (those named `only`, or all) are UTF-8 once
    percent-decoded, and were sent percent-encoded, as they must be: a raw byte over 0x7F would be read as
    Latin-1. Starlette puts U+FFFD in place of bytes that are not, and what is asked would not be what was sent."""
    for pair in encoded.split(b"&"):
        name, _, value = pair.partition(b"=")
        if only is not None and unquote_to_bytes(name.replace(b"+", b" ")) != only:
            continue
        if any(byte > 0x7F for byte in value):
            return False
        try:
            unquote_to_bytes(value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return False
    return True
