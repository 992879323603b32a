"""Extractive question answering over a folder of news articles."""

import os

# One OpenMP thread per process, and idle threads that sleep, unless the environment says otherwise. faiss and
# torch each bring their own OpenMP runtime; with one spinning thread per core each, they starve one another
# (and other processes) on a small machine. Parallelism comes from the request thread pool, from --workers
# processes, and from the embedding runtime's own threads (qa.e5). This must run before those
# libraries load, hence the package's __init__.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
