"""Which store an index lives in: the embedded files in settings.index_dir, or PostgreSQL when
settings.database_url is set. The pipeline reads either through the same fields and methods."""

from __future__ import annotations

from qa.config import Settings
from qa.files.build import FileBuildStore
from qa.files.pointer import build_running as files_build_running
from qa.files.pointer import current_generation as files_generation
from qa.files.pointer import index_command as files_index_command
from qa.files.reader import load_index


def uses_database(settings: Settings) -> bool:
    return bool(settings.database_url)


def index_command(settings: Settings) -> str:
    """The command that builds this index: with its folder for the files (QA_DATABASE_URL names the database)."""
    return "qa index" if uses_database(settings) else files_index_command(settings.index_dir)


def where(settings: Settings) -> str:
    """The index's location for messages: a folder, or the database without its password."""
    if uses_database(settings):
        from qa.pg.connect import describe

        return f"postgresql://{describe(settings.database_url)}"
    return str(settings.index_dir)


def close_connections(settings: Settings) -> None:
    """Let go of this process's connections to the store (the database's pool; files hold none open here)."""
    if uses_database(settings):
        from qa.pg.connect import Pool

        Pool.close_all()


def current_generation(settings: Settings) -> str | None:
    if uses_database(settings):
        from qa.pg.pointer import current_generation as pg_generation

        return pg_generation(settings.database_url)
    return files_generation(settings.index_dir)


def build_running(settings: Settings) -> bool:
    """Whether a build of the index runs now (said to users while there is no index yet)."""
    if uses_database(settings):
        from qa.pg.pointer import build_running as pg_build_running

        return pg_build_running(settings.database_url)
    return files_build_running(settings.index_dir)


def open_index(settings: Settings, generation: str | None = None):
    """The current (or the named) generation: a LoadedIndex, or a PgIndex."""
    if uses_database(settings):
        from qa.pg.reader import open_index as open_pg

        return open_pg(settings.database_url, generation)
    return load_index(settings.index_dir, generation)


def build_store(settings: Settings, rebuild: bool):
    """The store's side of a build (qa.indexer): a FileBuildStore, or a DatabaseBuildStore."""
    if uses_database(settings):
        from qa.pg.build import DatabaseBuildStore

        return DatabaseBuildStore(settings, rebuild)
    return FileBuildStore(settings)
