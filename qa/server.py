"""The ASGI app that `qa serve` runs (one per worker process), configured from the environment.

The bundled model starts loading before the web framework is imported, so that the two overlap: the first
answer comes ~0.5 s sooner after start (docs/benchmarks.md, "Start-up")."""

from qa.config import DEFAULT_MODEL, SettingsError, load_settings
from qa.embed import load_in_background


def _start_loading_the_model() -> None:
    try:
        settings = load_settings()
    except SettingsError:
        return  # create_app says what is wrong
    if settings.model == DEFAULT_MODEL:  # another model is loaded by the service, for the index that names it
        load_in_background(settings.model, settings.embed_threads)


_start_loading_the_model()

from qa.api import create_app  # noqa: E402 - imported after the model started loading

app = create_app()
