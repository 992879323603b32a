"""ASGI layers around the app, for what no route should have to do: safety headers on every response, HEAD
answered as GET, and request bodies over the limit refused before any route reads them."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import JSONResponse


class SafetyHeaders:
    """On every response: no type sniffing, and no framing by other sites (the pages' own CSP says it too; this
    covers /docs and the JSON)."""

    HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY")]

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *self.HEADERS]}
            await send(message)

        await self.app(scope, receive, with_headers)


class HeadAsGet:
    """HEAD answered as GET without its body (uptime checks, `curl -I`): FastAPI's GET routes do not take HEAD."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            return await self.app(scope, receive, send)

        async def headers_only(message):
            if message["type"] == "http.response.body":
                if not message.get("more_body", False):
                    await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send(message)

        await self.app({**scope, "method": "GET"}, receive, headers_only)


class BodyLimit:
    """Refuse request bodies over the limit (413) before the app sees them, declared or chunked.

    The body is read here, at most max_bytes of it, and handed on whole: the limit is small (a question),
    and an app that has started parsing cannot turn "too large" into a clean answer any more.
    """

    def __init__(self, app, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes
        self.max_bytes_in_words = f"{max_bytes // 1024} kB" if max_bytes >= 1024 else f"{max_bytes} bytes"

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            return await self._refuse(scope, receive, send)
        chunks, received, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see that
                return await self.app(scope, _replay([message], receive), send)
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_bytes:
                return await self._refuse(scope, receive, send)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)

    async def _refuse(self, scope, receive, send) -> None:
        app = scope.get("app")
        if scope["method"] == "POST" and scope["path"] == "/" and app is not None:
            # The no-JavaScript chat's form: a page that says so, not JSON in the browser (qa.web).
            response = app.state.form_too_large(Request(scope, receive), self.max_bytes_in_words)
        else:
            said = f"request body is larger than {self.max_bytes} bytes"
            service = getattr(getattr(app, "state", None), "service", None)
            if service is not None:  # what the chat shows a person who pasted a whole article in
                said += f": a question has at most {service.settings.max_question_chars} characters"
            response = JSONResponse({"detail": said}, status_code=413)
        await response(scope, receive, send)


def _replay(messages: list[dict], receive):
    pending = list(messages)

    async def replayed():
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
