"""Server time of the costliest requests the API accepts: `python benchmarks/worst_case.py [--repeat 5]`.

Serves the index in QA_INDEX_DIR (default index/) in process and times POST /ask, request to last byte, for
requests within every documented limit that cost the most work: a question as long as allowed, one of characters
that normalise to many letters each (U+FDFA is 18), and a follow-up carrying the most earlier turns. A typical
question is timed beside them for scale. Each request is timed `--repeat` times with the answer cache off; the
median is shown, with the server's own split (embedding, search, reading).
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


def requests(settings: Settings) -> dict[str, dict]:
    longest = settings.max_question_chars
    turns = settings.max_history_turns
    sentence = "Kapan Presiden Rusia Vladimir Putin tiba di Pyongyang untuk bertemu Kim Jong Un? "
    return {
        "a typical question": {"question": "Kapan Putin tiba di Pyongyang?"},
        f"{longest} characters of ordinary text": {"question": (sentence * 10)[:longest]},
        f"{longest} characters that normalise to 18 letters each": {"question": "\ufdfa" * longest},
        f"a follow-up with {turns} turns of such characters": {
            "question": "What did he do there?",
            "history": [{"question": ("A" + "\ufdfa" * longest)[:longest - 10 - n] + "?", "answer": None}
                        for n in range(turns)]},
    }


def main() -> None:
    parser = command_line(__doc__)
    parser.add_argument("--repeat", type=at_least_one, default=5, help="times each request is made")
    args = parser.parse_args()
    settings = Settings(answer_cache_size=0)
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        health = client.get("/health").json()
        if health["status"] != "ok":
            stop(f"{health.get('detail') or 'no index is loaded'} (this benchmark serves the index in QA_INDEX_DIR)")
        for name, body in requests(settings).items():
            times, splits = [], []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.post("/ask", json=body)
                times.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    stop(f"{name}: {response.status_code} {response.text[:200]}")
                splits.append(response.json()["timings_ms"])
            split = {part: statistics.median(s[part] for s in splits) for part in ("embed", "search", "read")}
            print(f"{name:<55} {statistics.median(times):8.1f} ms  (embed {split['embed']:.1f}, search "
                  f"{split['search']:.1f}, read {split['read']:.1f})")


if __name__ == "__main__":
    main()
