"""Extractive question answering over a folder of news articles."""

import os

# One OpenMP thread per process, and idle threads that sleep, unless the environment says otherwise. The
# embedding engine, faiss and torch each bring their own OpenMP runtime; with one spinning thread per core
# each, they starve one another (and other processes) on a small machine: embedding one question took seconds
# instead of ~10-50 ms on 2 cores under load. Parallelism comes from the request thread pool and from
# --workers processes instead. This must run before those libraries load, hence the package's __init__.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# ...but a thread the engine uses spins briefly before sleeping: one embedding opens about a hundred parallel
# regions, and waking a sleeping thread for each added ~4 ms to a ~11 ms embedding on 2 threads.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

__version__ = "0.1.0"
