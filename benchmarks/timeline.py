"""Server time of the timeline: `python benchmarks/timeline.py [--requests 200]`.

Serves the index in QA_INDEX_DIR (default index/) in process and times GET /timeline and GET /api/timeline,
unfiltered and filtered, from the request to the last byte. The first request also builds the timeline from
the loaded index (once per index generation); it is reported on its own.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import at_least_one, command_line, stop  # noqa: E402
from qa.api import create_app  # noqa: E402
from qa.config import Settings  # noqa: E402


def timed(client: TestClient, url: str) -> float:
    started = time.perf_counter()
    response = client.get(url)
    elapsed = (time.perf_counter() - started) * 1000
    response.raise_for_status()
    return elapsed


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--requests", type=at_least_one, default=200, help="requests timed per page")
    args = parser.parse_args()
    with TestClient(create_app(Settings()), base_url="http://127.0.0.1") as client:
        health = client.get("/health").json()
        if health["status"] != "ok":
            stop(f"{health.get('detail') or 'no index is loaded'} (this benchmark serves the index in QA_INDEX_DIR)")
        first = timed(client, "/timeline")
        events = client.get("/api/timeline").json()["total"]
        print(f"{events} events; first /timeline (builds the timeline): {first:.1f} ms")
        article = client.get("/api/sources").json()[0]["doc_id"]
        for url in ("/timeline", "/api/timeline", f"/timeline?article={article}&from=1990&to=2010"):
            times = sorted(timed(client, url) for _ in range(args.requests))
            p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
            print(f"{url[:60]:<60} p50 {statistics.median(times):6.2f} ms  p99 {p99:6.2f} ms")


if __name__ == "__main__":
    main()
