"""The ASGI app that `qa serve` runs (one per worker process), configured from the environment."""

from qa.api import create_app

app = create_app()
