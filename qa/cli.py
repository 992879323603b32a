"""The `qa` command: index, ask, serve and eval here; train-reader and export-reader from qa/reader/cli.py."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from qa.command_line import EXIT_OK, EXIT_SKIPPED, fail, folder_path, stopped_as_by_ctrl_c
from qa.config import (EMPTY_HOST, Settings, SettingsError, load_settings, unknown_variables, url_host,
                       web_pages_missing)
from qa.reader import cli as reader_commands

app = typer.Typer(
    help="Answer questions from a folder of news articles, quoting them verbatim.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help: rich's boxes cut long option values and print "<bool>" after flags that take no value.
    rich_markup_mode=None,
)

def _print_version(asked: bool) -> None:
    if asked:
        from qa import __version__

        typer.echo(f"qa {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                               help="Print the version and exit")] = False) -> None:
    """Answer questions from a folder of news articles, quoting them verbatim."""


CorpusOpt = Annotated[Optional[Path], typer.Option("--corpus", parser=folder_path, metavar="<path>", help="Folder of articles (env QA_CORPUS_DIR; default: the checkout's corpus/)")]
IndexOpt = Annotated[Optional[Path], typer.Option("--index", parser=folder_path, metavar="<path>", help="Index folder (env QA_INDEX_DIR; default: the checkout's index/)")]
_MODEL = "sentence-transformers model name or folder (env QA_MODEL; default: the bundled multilingual-e5-small)"
ModelOpt = Annotated[Optional[str], typer.Option("--model", help=f"Model that index builds embed with: a {_MODEL}. Questions are searched with the model the loaded index was built with")]
EvalModelOpt = Annotated[Optional[str], typer.Option("--model", help=f"Model to embed with: a {_MODEL}. A SQuAD file's passages are indexed with it; the index a question file runs on must have been built with it (else exit 2)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines")]

NOT_READ_SHOWN = 10  # files of other types named by `qa index`; --json lists them all


def make_settings(corpus: Path | None = None, index: Path | None = None, model: str | None = None,
                  as_json: bool = False, **extra) -> Settings:
    values = {k: v for k, v in {"corpus_dir": corpus, "index_dir": index, "model": model, **extra}.items() if v is not None}
    for warning in unknown_variables(dict(os.environ)):
        typer.secho(f"warning: {warning}", err=True, fg=typer.colors.YELLOW)
    try:
        settings = load_settings(**values)
    except SettingsError as exc:
        fail(str(exc), as_json=as_json)
    if index is not None and settings.database_url:
        fail(f"--index {index} names a folder, but QA_DATABASE_URL is set, so the index is in PostgreSQL: "
             "leave out --index, or unset QA_DATABASE_URL to use the folder", as_json=as_json)
    return settings


@app.command("index")
def index_command(corpus: CorpusOpt = None, index: IndexOpt = None, model: ModelOpt = None, as_json: JsonOpt = False,
                  wait: Annotated[float, typer.Option(show_default=False, help="Seconds to wait for another "
                                                           "running build (default: 0, fail at once)")] = 0.0,
                  workers: Annotated[Optional[int], typer.Option(
                      min=1, max=64, help="Processes that embed, one thread each (env QA_INDEX_WORKERS; default: "
                                          "one per core from 100 documents to embed)")] = None,
                  rebuild: Annotated[bool, typer.Option(help="Embed every article again; in a database, also "
                                                             "replaces a store of an older schema version")] = False) -> None:
    """Build or update the index from the corpus folder. Only changed articles are re-embedded (a renamed or moved
    one is not).

    Exit code 0: all files indexed; 1: some files were skipped (listed); 2: nothing was built.

    Files other than .txt, .md and .html (and .markdown, .htm) are named as not read; they do not change it.
    """
    from tqdm import tqdm

    from qa.embed import ModelLoadError
    from qa.index_rows import BuildError
    from qa.indexer import build_index, some_of
    from qa.load import ARTICLE_SUFFIXES, shown_path

    if not (math.isfinite(wait) and wait >= 0):
        fail(f"--wait must be a number of seconds, 0 or more, not {wait}", as_json=as_json)
    settings = make_settings(corpus, index, model, as_json, index_workers=workers)
    bar = None

    def progress(done: int, total: int, name: str) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="file", desc="indexing", disable=as_json or not sys.stderr.isatty() and total < 50,
                       file=sys.stderr)
        bar.set_postfix_str(name[-40:], refresh=False)
        bar.update(1)

    with stopped_as_by_ctrl_c() as stopped_by:
        try:
            report = build_index(settings, progress=progress, lock_timeout=wait, rebuild=rebuild)
        except (BuildError, ModelLoadError) as exc:
            fail(str(exc), as_json=as_json)
        except KeyboardInterrupt:
            bar_close(bar)  # before the message, which would land inside the bar's line
            fail("interrupted: the index in use is the last build that finished", stopped_by.exit_code,
                 as_json=as_json)
        finally:
            bar_close(bar)
    if as_json:
        typer.echo(json.dumps(report.as_dict(), ensure_ascii=False, indent=2))
    else:
        for skipped in report.skipped:
            typer.secho(f"skipped {shown_path(skipped.path)}: {skipped.reason}", err=True, fg=typer.colors.YELLOW)
        if report.not_read:
            typer.secho(f"not read (only {', '.join(ARTICLE_SUFFIXES)} files are articles): "
                        f"{some_of(report.not_read, NOT_READ_SHOWN)}", err=True,
                        fg=typer.colors.YELLOW)
        if report.full_rebuild:
            typer.echo(f"full rebuild ({report.rebuild_reason})")
        typer.echo(report.summary())
        from qa.backend import where

        typer.echo(f"index: {where(settings)} (generation {report.generation})")
    raise typer.Exit(EXIT_SKIPPED if report.skipped else EXIT_OK)


def bar_close(bar) -> None:
    if bar is not None:
        bar.close()  # a second close does nothing


def _print_answer(answer) -> None:
    from qa.confidence import confidence_note, confidence_words

    if answer.context_used:
        typer.secho(f"(read with {', '.join(answer.context_used)} from earlier)", dim=True)
    if answer.abstained:
        typer.secho("The sources don't say.", bold=True)
        if answer.citations:
            typer.echo("No passage answers this clearly enough to quote. These come closest:")
    else:
        typer.secho(answer.answer, bold=True)
        if answer.normalized:
            typer.echo(f"  ({answer.normalized['type']}: {answer.normalized['value']})")
        typer.echo(f"  \u201c{answer.sentence}\u201d")
        words, _ = confidence_words(answer.confidence)
        typer.echo(f"  confidence {answer.confidence:.2f} ({words.lower()})")
        if note := confidence_note(answer.confidence):
            typer.secho(f"  {note}", fg=typer.colors.YELLOW)
        typer.echo("Sources:")
    for number, citation in enumerate(answer.citations, 1):
        typer.echo(f"  [{number}] {citation.title} ({citation.doc_id}, characters {citation.start}-{citation.end})")


@app.command("ask")
def ask_command(question: Annotated[str, typer.Argument(metavar="QUESTION",
                                                        help="The question, in English or Indonesian")],
                index: IndexOpt = None,
                top_k: Annotated[Optional[int], typer.Option("--top-k", help="Passages cited at most: the most promising of the first 3 retrieved is read, and the answer cites those of the first 20 (or --top-k, if more) that quote its words near the question (default: QA_TOP_K_DEFAULT, 5)")] = None,
                after: Annotated[Optional[list[str]], typer.Option(
                    "--after", metavar="QUESTION", help="An earlier question of the conversation, for a follow-up such as \"Who did "
                                    "he meet there?\"; repeat it for each, oldest first (they are answered first; each question is read with at most the "
                                    "QA_MAX_HISTORY_TURNS latest before it, 5 by default)")] = None,
                as_json: JsonOpt = False) -> None:
    """Answer one question from the index (the same JSON as POST /ask with --json).

    Example: qa ask "When did Putin arrive in Pyongyang?". A question that begins with "-" goes
    after "--": qa ask -- "-5 derajat?".

    Exit code 0: answered, or "the sources don't say"; 2: the question or the index cannot be used (said why).
    """
    import logging

    from qa.answer import NO_WORDS
    from qa.language import has_words
    from qa.followup import in_turn
    from qa.service import QAService, ServiceUnavailable
    from qa.validation import InvalidQuestion, top_k_out_of_range

    service_log = logging.getLogger("qa")
    if not service_log.handlers:  # a problem the service would log is the error said below: say it once
        service_log.addHandler(logging.NullHandler())
    service = QAService(make_settings(None, index, None, as_json))  # the index says which model searches it
    if top_k is not None and (problem := top_k_out_of_range(top_k, service.settings, "--top-k")):
        fail(problem, as_json=as_json)
    try:
        service.validate(question, service.settings.top_k_default)  # empty, too long: said as the API says it
    except InvalidQuestion as exc:
        fail(str(exc), as_json=as_json)
    if not as_json and not has_words(question):  # the API (and --json) abstains; a person is told why
        fail(NO_WORDS)
    try:
        # Each question is asked with the latest QA_MAX_HISTORY_TURNS turns before it.
        answers = in_turn(lambda q, history: service.ask(q, top_k, history), [*(after or []), question],
                          service.settings.max_history_turns)
        for number in range(1, len(after or []) + 1):
            try:
                next(answers)
            except InvalidQuestion as exc:  # said of the --after question, not of the one asked
                fail(f"--after #{number}: {exc}", as_json=as_json)
        answer = next(answers)
    except (InvalidQuestion, ServiceUnavailable) as exc:
        fail(str(exc), as_json=as_json)
    if as_json:
        from qa.schemas import answer_out

        typer.echo(answer_out(answer).model_dump_json(indent=2))
    else:
        _print_answer(answer)


def show_service_log() -> None:
    """The service's own messages (the index it serves, --watch rebuilds and skipped files) on stderr, in
    uvicorn's format beside uvicorn's."""
    import logging

    from uvicorn.logging import DefaultFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    logger = logging.getLogger("qa")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False


@app.command("serve")
def serve_command(corpus: CorpusOpt = None, index: IndexOpt = None, model: ModelOpt = None,
                  host: Annotated[Optional[str], typer.Option(
                      help="Address to listen on (env QA_HOST; default: 127.0.0.1, this machine only)")] = None,
                  port: Annotated[Optional[int], typer.Option(
                      min=0, max=65_535, help="Port to listen on (env QA_PORT; default: 8000; 0: any free port)")] = None,
                  workers: Annotated[int, typer.Option(min=1, max=64, help="Worker processes sharing the index")] = 1,
                  watch: Annotated[bool, typer.Option(help="Bring the index up to date with the corpus at start, then "
                                                           "rebuild it when corpus files change")] = False) -> None:
    """Serve the web chat, /ask, the source viewer and the timeline until stopped (Ctrl+C).

    Exit code 2 when it cannot start: a setting does not fit, the port is in use, the reader's model files are
    missing, damaged or not calibrated, or web/ is not beside the package.
    """
    import uvicorn

    from qa.reader.runtime import CARD_NAME, ReaderModelError, check_calibrated, load_arrays

    settings = make_settings(corpus, index, model)
    if host is not None and not host.strip():
        fail(f"--host {EMPTY_HOST}")
    host = settings.host if host is None else host
    port = settings.port if port is None else port
    try:  # a missing, damaged or uncalibrated reader is named now, not at the first question
        card, _ = load_arrays(settings.reader_dir / CARD_NAME)
        check_calibrated(card, settings.reader_dir / CARD_NAME)
    except ReaderModelError as exc:
        fail(str(exc))
    if missing := web_pages_missing():
        fail(missing)
    # Workers are separate processes: they read the settings from the environment.
    os.environ.update({"QA_HOST": host, "QA_CORPUS_DIR": str(settings.corpus_dir), "QA_INDEX_DIR": str(settings.index_dir),
                       "QA_MODEL": settings.model, "QA_READER_DIR": str(settings.reader_dir)})
    # The socket is made here, not by uvicorn: a port in use is then said before anything claims to be serving, and
    # uvicorn's own shared socket for workers is not marked as TCP, so asyncio would leave Nagle's algorithm on and
    # every keep-alive answer would wait ~40 ms for a delayed ACK; a socket made with IPPROTO_TCP gets TCP_NODELAY.
    import socket

    from uvicorn.supervisors import Multiprocess

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    show_service_log()
    if watch:
        from qa.watch import start_watcher

        start_watcher(settings)
    from qa import backend

    typer.echo(f"serving on http://{url_host(host)}:{sock.getsockname()[1]}/ (index: {backend.where(settings)})")
    try:
        has_index = backend.current_generation(settings) is not None
    except Exception:  # a database that cannot be reached: the service says so in its log and on /health
        has_index = True
    if not has_index:
        if not watch:
            coming = f"questions get 503 until `{backend.index_command(settings)}` builds one"
        elif settings.corpus_dir.is_dir():
            coming = "--watch is building one; questions get 503 until it is done"
        else:
            coming = f"--watch builds one once {settings.corpus_dir} holds articles; questions get 503 until then"
        typer.secho(f"note: there is no index in {backend.where(settings)} yet: {coming}", err=True,
                    fg=typer.colors.YELLOW)
    config = uvicorn.Config("qa.server:app", host=host, port=port, workers=workers, log_level="info")
    if workers <= 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    sock.set_inheritable(True)
    backend.close_connections(settings)  # the workers open their own; this process only supervises them
    Multiprocess(config, sockets=[sock]).run()


@app.command("eval")
def eval_command(file: Annotated[Path, typer.Argument(help="A question JSONL, a SQuAD-format JSON or a JSONL of "
                                                            "conversations")],
                 index: IndexOpt = None, model: EvalModelOpt = None,
                 top_k: Annotated[Optional[int], typer.Option("--top-k", help="Retrieved passages per question, as in qa ask (default: QA_TOP_K_DEFAULT, 5)")] = None,
                 as_json: JsonOpt = False,
                 limit: Annotated[Optional[int], typer.Option(help="Only the first N questions (of a conversation "
                                                                   "file: conversations)")] = None) -> None:
    """Measure retrieval and answers on a question file; a SQuAD file's passages are indexed as a corpus of their
    own (kept under QA_EVAL_CACHE_DIR and reused while the file is unchanged).
    A JSONL file of conversations (objects with `turns`) measures follow-up questions with and without history.

    A question JSONL has one object a line: "question", its right "answers" (verbatim),
    and optionally "id", "lang", "kind", "sources" (the articles' source ids), and
    "answerable": false for a question the articles do not answer.

    A conversation JSONL has one object a line with "turns": a list of {"question", "answers"}, in order,
    each later turn with "leans": true when it needs the earlier ones ("Who did he meet there?"); the report
    gives leaning turns apart, asked with their history and without it.

    Exit code 0: measured; 2: the file or the index cannot be used.
    """
    from qa.evaluation import EvalError
    from qa.evaluation.conversations import evaluate_conversations, format_conversation_report, is_conversation_file
    from qa.evaluation.report import format_report
    from qa.evaluation.run import evaluate_file

    conversations = is_conversation_file(file)
    run, show = (evaluate_conversations, format_conversation_report) if conversations else (evaluate_file, format_report)
    with stopped_as_by_ctrl_c() as stopped_by:
        try:
            report = run(file, make_settings(None, index, model, as_json), top_k=top_k, limit=limit,
                         progress=not as_json and sys.stderr.isatty())
        except EvalError as exc:
            fail(str(exc), as_json=as_json)
        except KeyboardInterrupt:
            fail("interrupted: nothing was measured", stopped_by.exit_code, as_json=as_json)
    typer.echo(json.dumps(report, ensure_ascii=False, indent=2) if as_json else show(report))


reader_commands.register(app)  # train-reader, export-reader


if __name__ == "__main__":
    app()
