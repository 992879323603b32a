"""Shared fixtures: one index of the bundled corpus per test session, built with the real default model."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

PROJECT_DIR = Path(__file__).resolve().parent.parent
CORPUS_DIR = PROJECT_DIR / "corpus"
SHARED_DIR = PROJECT_DIR.parent / "shared"


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


@pytest.fixture(scope="session")
def service(built_index, embedder):
    from qa.service import QAService

    settings, _ = built_index
    return QAService(settings, embedder=embedder)


@pytest.fixture(scope="session")
def client(service):
    from fastapi.testclient import TestClient

    from qa.api import create_app

    with TestClient(create_app(service.settings, service=service)) as test_client:
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
