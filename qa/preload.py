"""Loading the bundled model early, in a thread, while `qa serve` imports its web framework (~1 s): the first answer
comes ~0.5 s sooner after start (docs/benchmarks.md, "Start-up"). Only the bundled model: another one is loaded
by the service itself, for the index that names it."""

from __future__ import annotations

from qa.config import DEFAULT_MODEL, Settings, SettingsError, load_settings
from qa.embed import load_in_background
from qa.files.pointer import built_with


def model_to_preload(settings: Settings) -> str | None:
    """The bundled model when the service will search with it: the index was built with it, or there is no index
    and QA_MODEL names it; None otherwise. A database's index is not opened here: connecting would take the time
    this saves, so QA_MODEL decides."""
    model = (None if settings.database_url else built_with(settings.index_dir)) or settings.model
    return model if model == DEFAULT_MODEL else None


def start_loading() -> None:
    try:
        settings = load_settings()
    except SettingsError:
        return  # create_app says what is wrong
    model = model_to_preload(settings)
    if model is not None:
        load_in_background(model, settings.embed_threads)
