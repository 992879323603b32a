"""Web pages (chat and source viewer), rendered with Jinja2 from web/."""

from __future__ import annotations

from fastapi import FastAPI


def mount(app: FastAPI) -> None:
    """Add the page routes and static files to the app."""
