"""The ASGI app that `qa serve` runs (one per worker process), configured from the environment.

The bundled model starts loading before the web framework is imported, so that the two overlap (qa.preload)."""

from qa.preload import start_loading

start_loading()

from qa.api import create_app  # noqa: E402 - imported after the model started loading

app = create_app()
