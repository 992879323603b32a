"""Fuzz the HTTP API from its own OpenAPI schema with schemathesis: no 5xx, no response outside the schema.

Runs in-process against the ASGI app over a tiny index (the real model), with a bounded number of examples
per operation. Select it alone with `pytest -m fuzz`; set FUZZ_EXAMPLES for a longer run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance

from qa.api import create_app
from qa.config import Settings
from qa.indexer import build_index
from qa.service import QAService

pytestmark = pytest.mark.fuzz

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
TOKEN = "fuzz-admin-token"

ARTICLES = {
    "jembatan.txt": "---\ntitle: Jembatan Merah Putih di Ambon\nsource_url: https://example.com/jembatan\n---\n"
                    "Jembatan Merah Putih di Ambon diresmikan pada 4 April 2016. Jembatan itu memiliki panjang "
                    "1.140 meter.\n",
    "berita/kopi.md": "---\ntitle: Festival Kopi Gayo\npublished: 2024-06-19\n---\n"
                      "# Festival Kopi Gayo\n\nFestival Kopi Gayo digelar di Takengon. Festival itu diikuti oleh "
                      "120 petani kopi.\n",
}


# The schema is read from the app at import; the app loads its index lazily, so the index is only built (in
# the fixture below) when the test runs. The admin token is set so that the fuzzer reaches the token check.
ROOT = Path(tempfile.gettempdir()) / f"qa-fuzz-{os.getpid()}-{uuid.uuid4().hex[:8]}"
# host: as if served to the network, so that any name is answered: schemathesis addresses its requests to
# "testserver" (the host check has tests of its own in test_api.py).
SETTINGS = Settings(corpus_dir=ROOT / "corpus", index_dir=ROOT / "index", admin_token=TOKEN, host="0.0.0.0")
APP = create_app(SETTINGS)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@pytest.fixture(scope="module")
def fuzz_index(embedder):
    for rel, text in ARTICLES.items():
        (SETTINGS.corpus_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (SETTINGS.corpus_dir / rel).write_text(text, encoding="utf-8")
    build_index(SETTINGS, embedder=embedder)
    service = QAService(SETTINGS, embedder=embedder)
    service.warm()
    APP.state.service = service
    yield
    shutil.rmtree(ROOT, ignore_errors=True)


@pytest.mark.usefixtures("fuzz_index")
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_schema(case):
    """Every built-in check: no 5xx, documented status codes and content types, bodies that match the schema,
    invalid input rejected and valid input accepted."""
    if case.path == "/api/timeline":
        # A year range given backwards ("from" after "to") is valid to the schema, which cannot compare two
        # parameters, and gets a 422 that says so; everything else the schema allows must be accepted.
        response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
        if response.status_code == 422:
            detail = response.json()["detail"]
            assert "is after to" in detail or "must be a year such as 1950" in detail, response.text
    else:
        response = case.call_and_validate()
    assert response.status_code < 500, response.text
