"""The ASGI app that `qa serve` runs (one per worker process), configured from the environment."""

import os

# One OpenMP thread per serving process, unless the environment says otherwise. The embedding engine,
# faiss and torch each bring their own OpenMP runtime; with their default of one thread per core, a
# process's idle threads spin against each other, against other workers and against anything else on the
# machine, and embedding one question took ~3.5 s instead of ~50 ms on this 2-core machine under load. Requests
# run in parallel in the thread pool (and in --workers processes) instead. Must be set before those
# libraries load, which is why it is here, before the app is imported.
os.environ.setdefault("OMP_NUM_THREADS", "1")

from qa.api import create_app  # noqa: E402

app = create_app()
