"""The `kws` command line. Heavy libraries (torch, librosa, matplotlib) are imported inside the
commands that need them, so `kws --help` answers at once."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import typer

from .errors import KwsError, UserError
from .recipes import RECIPES

RECIPE_NAMES = list(RECIPES)

app = typer.Typer(
    help="Keyword spotting with the convnet that first learns to see digits.\n\n"
    "A 1-second clip becomes a log-mel image; the chapter-4 network (conv → max-pool → dense) "
    "learns to read it.\n\n"
    "Quick start, fully offline:  kws train --dataset synth  then  kws classify clip.wav",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
download_app = typer.Typer(help="Fetch datasets (verified by sha256, cached, safely extracted).",
                           no_args_is_help=True)
app.add_typer(download_app, name="download")

DataDir = typer.Option(None, "--data-dir", help="Where datasets live [default: $KWS_DATA_DIR or ./data].")
ModelOpt = typer.Option(None, "--model", "-m", help="A model.pt [default: the most recent run under ./runs].")
RunModelOpt = typer.Option(None, "--model", "-m", help="A model.pt, or a model.onnx from kws export "
                           "[default: the most recent run under ./runs].")


def _err(message: str) -> None:
    typer.echo(f"kws: error: {message}", err=True)


def _info(message: str) -> None:
    typer.echo(message, err=True)


def _checkpoint(model: Optional[Path]) -> Path:
    from .paths import latest_checkpoint, runs_dir

    if model is not None:
        return model
    found = latest_checkpoint()
    if found is None:
        raise UserError(f"no trained model under {runs_dir()}/: train one (kws train --dataset synth) or pass --model")
    _info(f"Using {found} (most recent run)")
    return found


def _words(words: Optional[str]) -> Optional[list[str]]:
    if not words:
        return None
    out = [w.strip() for w in words.split(",") if w.strip()]
    if not out:
        raise UserError("--words: give a comma-separated list such as yes,no,stop")
    return out


# ----------------------------------------------------------------------------------------- download

@download_app.command("speech-commands")
def download_speech_commands(
    data_dir: Optional[Path] = DataDir,
    url: Optional[str] = typer.Option(None, help="A mirror of speech_commands_v0.02.tar.gz."),
    sha256: Optional[str] = typer.Option(None, help="The mirror's sha256 [default: the official one]."),
) -> None:
    """Google Speech Commands v0.02 (2.4 GB, CC BY 4.0) into DATA_DIR/speech_commands_v0.02/."""
    _download_archive("speech-commands", data_dir, url, sha256)


@download_app.command("speech-commands-test")
def download_speech_commands_test(
    data_dir: Optional[Path] = DataDir,
    url: Optional[str] = typer.Option(None, help="A mirror of speech_commands_test_set_v0.02.tar.gz."),
    sha256: Optional[str] = typer.Option(None, help="The mirror's sha256 [default: the official one]."),
) -> None:
    """The canonical 12-class test set (112 MB) into DATA_DIR/speech_commands_test_set_v0.02/."""
    _download_archive("speech-commands-test", data_dir, url, sha256)


@download_app.command("mnist")
def download_mnist(
    data_dir: Optional[Path] = DataDir,
    url: Optional[str] = typer.Option(None, help="Base address holding the four *-ubyte.gz files."),
) -> None:
    """The four MNIST IDX files into DATA_DIR/mnist/, each checked against its official sha256."""
    from . import paths
    from .datasets import images

    folder = images.download_mnist(paths.data_dir(data_dir), url)
    typer.echo(f"mnist: ready in {folder} ({images.load_mnist(folder).summary()})")


def _download_archive(which: str, data_dir: Optional[Path], url: Optional[str], sha256: Optional[str]) -> None:
    from . import paths
    from .datasets import speech_commands
    from .download import Remote

    sc = speech_commands
    remote, folder = (None, sc.FOLDER) if which == "speech-commands" else (sc.TEST_ARCHIVE, sc.TEST_FOLDER)
    if url or sha256:
        remote = remote or sc.ARCHIVE
        if sha256 and (len(sha256) != 64 or any(c not in "0123456789abcdefABCDEF" for c in sha256)):
            raise UserError("--sha256: expected 64 hexadecimal digits")
        remote = Remote(url or remote.url, (sha256 or remote.sha256).lower())
    target = sc.download(paths.data_dir(data_dir), remote, folder)
    typer.echo(f"{which}: ready in {target}")


# -------------------------------------------------------------------------------------------- synth

@app.command()
def synth(
    out: Optional[Path] = typer.Option(None, help="Output folder [default: DATA_DIR/synth-n<N>-s<SEED>-<HASH>]."),
    per_word: int = typer.Option(600, min=10, help="Clips per word, each from a different voice."),
    seed: int = typer.Option(0, help="Same seed, same corpus."),
    timbre: float = typer.Option(1.0, min=0.0, max=1.5, help="How far each speaker's vocal tract and voice "
                                 "source stray from espeak-ng's own variants (0: as shipped)."),
    pico_clips: Optional[int] = typer.Option(None, "--pico", min=0, help="Extra training clips per word in SVOX "
                                             "Pico's voices [default: 300 if the kws[pico] extra is installed, else 0]."),
    others_share: float = typer.Option(0.25, min=0.01, max=1.0, help="The share of the voices that also say the "
                                       "25 words that are not the twelve-class task's keywords (1: every voice says "
                                       "every word). A word trained as a keyword is said by every voice when asked for."),
    data_dir: Optional[Path] = DataDir,
) -> None:
    """Speak the 35 Speech Commands words with espeak-ng voices, in the Speech Commands layout.

    Voices span every English dialect and voice variant espeak-ng ships, at varied rate, pitch and
    placement, and each speaker gets a vocal tract and voice source of its own (formant positions
    and widths, breath, pitch wobble, a Klatt source for some). Validation and test voices never
    speak in training. The ten keywords of the twelve-class task are said by every voice, the other
    25 words by a share of them (`--others-share`). Background noise is generated. With the
    kws[pico] extra, SVOX Pico's voices (modelled on recordings of people: an American, and German,
    Spanish, French and Italian speakers saying the English words with their own sounds) add
    training clips.
    """
    from . import paths
    from .datasets import build_synth
    from .datasets.synth import SynthConfig, default_root
    from .voices import pico

    if pico_clips and not pico.available():
        raise UserError('--pico: SVOX Pico is not installed (pip install "kws[pico]"; it needs a C compiler)')
    config = SynthConfig(per_word=per_word, seed=seed, timbre=timbre, others_share=others_share,
                         **({} if pico_clips is None else {"pico": pico_clips}))
    root = out or default_root(paths.data_dir(data_dir), config)
    build_synth(root, config)
    typer.echo(f"synthetic corpus ready in {root}")


@app.command()
def say(
    text: str = typer.Argument(..., help="What to say, e.g. yes."),
    out: Path = typer.Option(Path("say.wav"), "-o", "--out", help="The WAV to write (16 kHz mono)."),
    dialect: str = typer.Option("en-us", help="An espeak-ng English dialect: en-us, en, en-gb-scotland, …"),
    variant: str = typer.Option("", help="A voice variant such as f3, m2, klatt2 (see espeak-ng)."),
    rate: int = typer.Option(160, min=80, max=450, help="Words per minute."),
    pitch: int = typer.Option(50, min=0, max=100),
) -> None:
    """Speak TEXT with espeak-ng into a WAV: a test clip when there is no microphone at hand.

    Short words are centred in one second of silence, as Speech Commands clips are.
    """
    import numpy as np

    from .audio import SAMPLE_RATE, write_wav
    from .datasets.synth import speak
    from .voices.espeak import ENGLISH_DIALECTS, EspeakError, Speaker, Voice, list_variants

    if variant and variant not in list_variants():
        raise UserError(f"--variant {variant}: not an espeak-ng voice variant (e.g. {', '.join(list_variants()[:8])}…)")
    if dialect not in ENGLISH_DIALECTS:
        raise UserError(f"--dialect {dialect}: choose one of {', '.join(ENGLISH_DIALECTS)}")
    try:
        audio = speak(Speaker(), text, Voice(dialect, variant, rate, pitch))
    except EspeakError as e:
        raise UserError(str(e)) from None
    if len(audio) < SAMPLE_RATE:
        pad = SAMPLE_RATE - len(audio)
        audio = np.pad(audio, (pad // 2, pad - pad // 2))
    write_wav(out, 0.8 * audio / (np.abs(audio).max() + 1e-9))
    typer.echo(f"wrote {out} ({len(audio) / SAMPLE_RATE:.2f} s)")


# -------------------------------------------------------------------------------------------- train

@app.command()
def train(
    dataset: Optional[str] = typer.Option(
        None, help="speech-commands (downloads 2.4 GB), synth (offline), mnist, digits, a folder of word clips "
        "(Speech Commands layout, or your own: split by hash), or several joined with +, e.g. synth+~/my_clips "
        "[default: the recipe's own data, else speech-commands]."),
    recipe: Optional[str] = typer.Option(
        None, help=f"Every training choice at once: {', '.join(RECIPE_NAMES)} (kws recipes shows "
        "them) [default: what the data is: a corpus built by kws synth gets synth, wherever it lives]."),
    task: str = typer.Option("12", help="12: ten keywords + _silence_ + _unknown_; 35: every word."),
    words: Optional[str] = typer.Option(None, help="Your own keywords, e.g. yes,no,stop (+ silence, unknown)."),
    seed: int = typer.Option(0, help="Seeds shuffling, augmentation and initial weights."),
    out: Optional[Path] = typer.Option(None, help="Run folder [default: runs/<dataset>-<model>-<time>]."),
    device: str = typer.Option("auto", help="Where the training steps run: auto (an NVIDIA GPU if torch "
                               "sees one), cpu or cuda."),
    resume: bool = typer.Option(False, "--resume", help="Continue the interrupted run in --out."),
    data_dir: Optional[Path] = DataDir,
    # Each option below changes one field of the recipe; unset, the recipe decides.
    model: Optional[str] = typer.Option(None, "--model", help="chapter4 (the book's net) or wide (batch norm, dropout)."),
    members: Optional[int] = typer.Option(None, min=1, help="Nets trained side by side that vote with their "
                                          "averaged probabilities: steadier on unfamiliar voices, members× the time."),
    time_pool: Optional[bool] = typer.Option(None, "--time-pool/--no-time-pool", help="Max-pool the last conv "
                                             "maps over all of time, so the word may fall anywhere in the second."),
    epochs: Optional[int] = typer.Option(None, min=1, help="Passes over the training set."),
    batch_size: Optional[int] = typer.Option(None, min=1),
    lr: Optional[float] = typer.Option(None, min=0.0, help="Adam's peak learning rate, cosine-decayed to zero."),
    augment: Optional[str] = typer.Option(None, help="basic: time shift + background noise (TensorFlow's); "
                                          "acoustic: also speed, EQ, band limits, reverb and vocal-tract warp."),
    spec_augment: Optional[bool] = typer.Option(None, "--spec-augment/--no-spec-augment",
                                                help="Mask time and frequency stripes of the image."),
    norm: Optional[str] = typer.Option(None, help="utterance (the whole image), channel-mean (each band's mean "
                                       "removed: cancels a microphone's colouring), channel, or none."),
    unknown_words: Optional[bool] = typer.Option(None, "--unknown-words/--no-unknown-words", help="Train each "
                                                 "word behind _unknown_ as a class of its own."),
    unknown_each_epoch: Optional[bool] = typer.Option(None, "--unknown-each-epoch/--no-unknown-each-epoch",
                                                      help="Draw the _unknown_ clips anew every epoch."),
    unknown_weight: Optional[float] = typer.Option(None, min=0.0, help="_unknown_'s weight in the loss."),
    unknown_percent: Optional[float] = typer.Option(None, min=0.0, help="_unknown_ training clips drawn from "
                                                    "the other words, in percent of the keyword clips "
                                                    "(validation and test keep 10)."),
    reversed_words: Optional[float] = typer.Option(None, min=0.0, help="Keyword clips played backwards, as this "
                                                   "share of them, taught as _unknown_: other words in the "
                                                   "speakers' own voices: more untaught words rejected, "
                                                   "fewer keywords found."),
    spliced_words: Optional[float] = typer.Option(None, min=0.0, help="Keyword clips, as this share of them, "
                                                  "each joined at its middle to another keyword's second half "
                                                  "(ye-own), taught as _unknown_: words that share a keyword's "
                                                  "sounds are rejected more often."),
    synthetic_others: Optional[float] = typer.Option(None, min=0.0, help="The offline corpus's words that are "
                                                     "not keywords (built on first use), as this share of the "
                                                     "keyword clips each epoch, taught as _unknown_: many more "
                                                     "untaught words rejected, fewer keywords found (fewer lost "
                                                     "with --unknown-weight 0.5)."),
    source_balance: Optional[float] = typer.Option(None, min=0.0, max=1.0, help="Sources joined with +: 0 shows "
                                                   "each row once an epoch, 1 an equal share of each source."),
    per_word: Optional[int] = typer.Option(None, min=10, help="Clips per word when the synth corpus is built."),
    near_misses: Optional[int] = typer.Option(None, min=0, help="--words on the synth corpus: near misses of each "
                                              "keyword built and taught as _unknown_ (compufer for computer)."),
    target_fa_per_hour: Optional[float] = typer.Option(None, min=0.0, help="The false accepts per hour that the "
                                                       "calibrated streaming threshold aims at."),
    calibration_minutes: Optional[float] = typer.Option(None, min=0.0, help="How long a validation stream sets "
                                                        "that threshold (0: no calibration)."),
    label_smoothing: Optional[float] = typer.Option(None, min=0.0, max=0.99, help="The share of each training "
                                                    "target spread over every class: a less sure net."),
    precision: Optional[str] = typer.Option(None, help="The net's training arithmetic: auto (bfloat16 where the "
                                            "processor has it natively, a faster step; else float32), "
                                            "float32 or bfloat16. Saved models are float32 either way."),
) -> None:
    """Train a model by a recipe, keep its best epoch, and report test accuracy.

    The resolved recipe is printed when training starts and saved in model.pt and metrics.json.
    The run folder gets model.pt (weights, labels, frontend, recipe), last.pt (for --resume),
    metrics.json, curves.png and confusion.png.
    """
    from . import distributed, paths
    from .recipes import resolve
    from .train import Interrupted, run

    dataset, chosen = resolve(dataset, recipe, preset=model, members=members, time_pool=time_pool, epochs=epochs,
                              batch_size=batch_size, lr=lr, augment=augment, spec_augment=spec_augment, norm=norm,
                              unknown_words=unknown_words, unknown_each_epoch=unknown_each_epoch,
                              unknown_weight=unknown_weight, unknown_percent=unknown_percent,
                              reversed_words=reversed_words, spliced_words=spliced_words,
                              synthetic_others=synthetic_others, source_balance=source_balance, per_word=per_word,
                              near_misses=near_misses,
                              target_fa_per_hour=target_fa_per_hour, calibration_minutes=calibration_minutes,
                              precision=precision, label_smoothing=label_smoothing)
    try:
        metrics = run(dataset, chosen, out, data_dir=paths.data_dir(data_dir), task=task, words=_words(words), seed=seed,
                      device=device, resume=resume, log=_info, progress=sys.stderr.isatty())
    except Interrupted as e:
        if distributed.is_main():
            args = sys.argv[2:] if resume else [*sys.argv[2:], *([] if out else ["--out", str(e.run_dir)]), "--resume"]
            launcher = (f"torchrun --standalone --nproc_per_node={distributed.world_size()} -m kws"
                        if distributed.world_size() > 1 else "kws")
            _info(f"{e}\nResume with: {launcher} train {' '.join(args)}")
        raise typer.Exit(130)
    if metrics:  # (empty on the other ranks of a torchrun)
        typer.echo(f"test accuracy {metrics['test_accuracy']:.4f} (best val {metrics['val_accuracy']:.4f} "
                   f"at epoch {metrics['best_epoch']}), {metrics['train_seconds']:.0f}s of training")
        typer.echo(f"model saved to {Path(metrics['run_dir']) / 'model.pt'}")


@app.command()
def recipes() -> None:
    """List the named training recipes: what each is for and every choice it makes."""
    from dataclasses import fields

    from rich.console import Console
    from rich.table import Table

    from .recipes import Recipe, field_text

    console = Console(width=max(100, 20 * (len(RECIPES) + 1)))
    for r in RECIPES.values():
        console.print(f"[bold]{r.name:<16}[/bold] {r.about}", highlight=False)
    table = Table(box=None, header_style="bold")
    table.add_column("field")
    for name in RECIPES:
        table.add_column(name)
    for f in fields(Recipe):
        if f.name not in ("name", "about"):
            table.add_row(f.name, *(field_text(getattr(r, f.name)) for r in RECIPES.values()))
    console.print(table, highlight=False)
    typer.echo("kws train --recipe NAME picks one; each training option (kws train --help) changes one field.")


# ----------------------------------------------------------------------------------------- classify

@app.command()
def classify(
    files: List[Path] = typer.Argument(..., help="WAV/FLAC/OGG clips (any rate, any channels) or digit images."),
    model: Optional[Path] = RunModelOpt,
    top_k: int = typer.Option(3, "--top-k", "-k", min=1, help="How many labels to show per file."),
    as_json: bool = typer.Option(False, "--json", help="One JSON array, an object per file."),
) -> None:
    """Say which word each clip holds (or which digit each picture shows).

    Clips longer than one second are scanned with a sliding 1-s window; the best window is reported.
    A file that cannot be read is reported and skipped; the exit code is then 2.
    """
    from .checkpoint import load_any
    from .infer import classify_file

    net, _ = load_any(_checkpoint(model))
    results, failed = [], 0
    for f in files:
        try:
            results.append(classify_file(net, f))
        except UserError as e:
            failed += 1
            _err(str(e))
    if as_json:
        typer.echo(json.dumps([r.as_json(top_k) for r in results], indent=None))
    else:
        for r in results:
            top = r.top(top_k)
            where = f" @ {r.start:.1f}s" if r.start else ""
            rest = "  ".join(f"{label} {p:.3f}" for label, p in top[1:])
            typer.echo(f"{r.file}{where}: {top[0][0]} ({top[0][1]:.3f})" + (f"   [{rest}]" if rest else ""))
    if failed:
        raise typer.Exit(2)


# ----------------------------------------------------------------------------------------- evaluate

@app.command()
def evaluate(
    model: Optional[Path] = ModelOpt,
    dataset: Optional[str] = typer.Option(None, help="speech-commands, synth, mnist, digits, a folder, or "
                                          "several joined with + (each source is scored too) [default: the "
                                          "model's own dataset]. A folder of word-named subfolders without "
                                          "split lists is scored whole, on the words the model knows."),
    split: str = typer.Option("test", help="train, val or test (for datasets with splits)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="Confusion-matrix PNG [default: next to the model]."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    data_dir: Optional[Path] = DataDir,
    stream: bool = typer.Option(False, "--stream", help="Score the streaming engine of listen and detect: recall "
                                "and false accepts per hour on a long recording built from the split's clips."),
    minutes: float = typer.Option(20.0, min=1.0, help="--stream: how long the built recording is."),
    seed: int = typer.Option(0, help="--stream: which recording is built (placement, noise, levels)."),
    recording: Optional[Path] = typer.Option(None, help="--stream: your own recording instead (any audio file)."),
    truth: Optional[Path] = typer.Option(None, help="--stream with --recording: a JSON list of "
                                         "{label, start, end} in seconds, one per word said (with snr_db, "
                                         "dB above the noise, recall is also given by level)."),
    target_fa_per_hour: Optional[float] = typer.Option(None, min=0.0, help="--stream: also report recall at "
                                                       "this rate of false accepts per hour."),
    threshold: Optional[float] = typer.Option(None, help="--stream: the threshold to report "
                                              "[default: the one listen uses]."),
) -> None:
    """Accuracy, per-class precision and recall, and a confusion-matrix picture; or, with --stream,
    recall against false accepts per hour, the figure that matters for listen."""
    from . import paths
    from .checkpoint import load_model
    from .evaluate import evaluate_on
    from .plots import confusion_png

    ckpt = _checkpoint(model)
    net, meta = load_model(ckpt)
    if split not in ("train", "val", "test"):
        raise UserError(f"--split {split}: use train, val or test")
    name = dataset or meta.get("train_args", {}).get("dataset") or meta.get("dataset")
    if stream or recording is not None:
        _evaluate_stream(net, meta, ckpt, name, paths.data_dir(data_dir), split, minutes, seed, recording, truth,
                         target_fa_per_hour, threshold, out, as_json)
        return
    result = evaluate_on(net, meta, name, paths.data_dir(data_dir), split)
    short = "+".join(Path(part).name for part in str(name).split("+"))
    png = out or ckpt.parent / f"confusion-{short}-{split}.png"
    confusion_png(result["confusion"], result["labels"], png, f"{short} · {split} · accuracy {result['accuracy']:.3f}")
    if as_json:
        typer.echo(json.dumps({k: v for k, v in result.items() if k != "confusion"}, indent=2))
        return
    typer.echo(f"{result['dataset']} ({result['split']}): accuracy {result['accuracy']:.4f} on {result['count']} examples")
    for source, r in result.get("per_source", {}).items():
        typer.echo(f"  {source}: accuracy {r['accuracy']:.4f} on {r['count']} examples")
    typer.echo(f"{'label':>12}  precision  recall  support")
    for label, r in result["per_class"].items():
        typer.echo(f"{label:>12}  {r['precision']:9.3f}  {r['recall']:6.3f}  {r['support']:7d}")
    if result.get("unknown_words"):
        u = result["unknown_words"]
        taken = ", ".join(f"{k} {v}" for k, v in list(u["taken_for"].items())[:6]) or "none"
        typer.echo(f"words the model does not know ({', '.join(result['skipped'])}): {u['rejected']:.1%} of "
                   f"{u['count']} clips rejected as _unknown_ or _silence_; the rest taken for: {taken}")
    elif result.get("skipped"):
        typer.echo(f"not scored (words the model does not know): {', '.join(result['skipped'])}")
    typer.echo(f"confusion matrix: {png}")


KIND_WORDS = {"wrong": "on another keyword", "other": "on other words", "noise": "on noise alone",
              "repeat": "repeated"}


def _evaluate_stream(net, meta: dict, ckpt: Path, name: Optional[str], data_dir: Path, split: str, minutes: float,
                     seed: int, recording: Optional[Path], truth: Optional[Path], target: Optional[float],
                     threshold: Optional[float], out: Optional[Path], as_json: bool) -> None:
    from .evaluate import stream_on
    from .plots import stream_png
    from .stream import model_threshold

    if (recording is None) != (truth is None):
        raise UserError("--recording and --truth go together: a recording and the words said in it")
    if recording is not None and not recording.is_file():
        raise UserError(f"--recording {recording}: no such file")
    config = _detector_config(threshold if threshold is not None else model_threshold(meta), 100.0, None)
    result = stream_on(net, meta, name, data_dir, split, minutes, seed, recording, truth, config,
                       (target,) if target is not None else ())
    short = recording.stem if recording is not None else "+".join(Path(p).name for p in str(name).split("+"))
    png = out or ckpt.parent / f"stream-{short}-{split}.png"
    stream_png(result["curve"], png, f"{short} · {result['minutes']:g} min", marked=config.threshold)
    if as_json:
        typer.echo(json.dumps({**result, "png": str(png)}, indent=2))
        return
    typer.echo(f"{result['dataset']}: {result['minutes']:g} min, {result['keywords']} keywords and "
               f"{result['other_words']} other words")
    p = result["at_threshold"]
    kinds = ", ".join(f"{n} {KIND_WORDS[k]}" for k, n in p["false_by_kind"].items() if n)
    typer.echo(f"  threshold {p['threshold']:g}: recall {p['recall']:.1%}, {p['fa_per_hour']:.1f} false accepts/hour"
               + (f" ({kinds})" if kinds else ""))
    if "recall_by_snr" in p:
        bands = ", ".join(f"{band} {found / n:.0%} of {n}" for band, (found, n) in p["recall_by_snr"].items() if n)
        typer.echo(f"    by how far above the noise the keyword was: {bands}")
    for rate, q in result["at_rates"].items():
        line = (f"recall {q['recall']:.1%} at threshold {q['threshold']:g} ({q['fa_per_hour']:.1f}/hour)" if q
                else "no threshold of the sweep gets that low")
        typer.echo(f"  at most {rate} false accepts/hour: {line}")
    typer.echo(f"curve: {png}")


# ----------------------------------------------------------------------------------------- export

@app.command()
def export(
    fmt: str = typer.Option(..., "--format", "-f", help="onnx (onnxruntime, anywhere) or torchscript (libtorch)."),
    model: Optional[Path] = ModelOpt,
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="File to write [default: next to the model]."),
    check: Optional[Path] = typer.Option(None, help="A folder of clips (searched recursively, the first 64) to "
                                         "compare the export against PyTorch on [default: generated noise and tones]."),
    quantize: Optional[str] = typer.Option(None, help="int8: the convnet's weights as 8-bit integers (onnx only; "
                                           "onnxruntime's dynamic quantization), for small devices."),
) -> None:
    """Write the model with its frontend inside: 16 kHz waveform in, probabilities out.

    The export is checked against the PyTorch model on real clips and the largest difference in
    probability is printed (with --quantize int8, also how often the top label agrees). `kws
    classify --model model.onnx` (and detect, listen) then run it with onnxruntime, no PyTorch
    model code involved.
    """
    from . import export as exporting
    from .checkpoint import load_model

    if fmt not in exporting.FORMATS:
        raise UserError(f"--format {fmt}: choose onnx or torchscript")
    if quantize not in (None, "int8"):
        raise UserError(f"--quantize {quantize}: the one choice is int8")
    if quantize and fmt != "onnx":
        raise UserError("--quantize int8 goes with --format onnx")
    ckpt = _checkpoint(model)
    net, meta = load_model(ckpt)
    path = out or ckpt.with_suffix(".int8.onnx" if quantize else ".onnx" if fmt == "onnx" else ".torchscript.pt")
    exporting.export(net, path, fmt, quantize, calibration=meta.get("calibration"))
    clips, where = _check_clips(check, net.clip_samples)
    diff, agree = exporting.compare(net, path, fmt, clips)
    typer.echo(f"wrote {path} ({path.stat().st_size / 1e6:.2f} MB)")
    typer.echo(f"largest probability difference from PyTorch on {len(clips)} {where}: {diff:.2e}"
               + (f"; the same top label on {agree:.1%}" if quantize else ""))
    if quantize and agree < 0.9:
        raise KwsError(f"the int8 model agrees with PyTorch on only {agree:.1%} of the clips; do not use it")
    if not quantize and diff > 1e-3:
        raise KwsError(f"the export differs from the PyTorch model by {diff:.2e}; do not use it")


def _check_clips(folder: Optional[Path], samples: int):
    import numpy as np
    import torch

    from .audio import fit_length, load_audio

    if folder is not None and not folder.is_dir():
        raise UserError(f"--check {folder}: no such folder")
    files = sorted(folder.rglob("*.wav"))[:64] if folder else []
    if folder is not None and not files:
        raise UserError(f"--check {folder}: no .wav files in it")
    if files:
        return torch.from_numpy(np.stack([fit_length(load_audio(f), samples) for f in files])), f"clips from {folder}"
    rng = np.random.default_rng(0)
    t = np.arange(samples) / 16000
    clips = [0.1 * rng.standard_normal(samples)] + [0.3 * np.sin(2 * np.pi * f * t) for f in (200, 700, 2500)]
    return torch.from_numpy(np.stack(clips).astype(np.float32)), "generated clips"


# ------------------------------------------------------------------------------------ look inside

@app.command()
def spectrogram(
    file: Path = typer.Argument(..., help="An audio file (any format soundfile reads, any rate, any channels)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="PNG to write [default: FILE-spectrogram.png here]."),
    model: Optional[Path] = typer.Option(None, "--model", "-m",
                                         help="Use this checkpoint's own frontend [default: the default frontend]."),
) -> None:
    """Draw the waveform and, on the same time axis, the log-mel image the network reads.

    This is the chapter's idea made visible: a sound becomes a picture (mel bands × 10-ms frames),
    and the convnet reads that picture the way it reads a handwritten digit.
    """
    from .audio import load_audio
    from .plots import spectrogram_png

    if model is not None:
        from .checkpoint import load_model

        net, _ = load_model(model)
        if net.kind != "audio":
            raise UserError(f"{model}: this is an image model; it has no audio frontend")
        frontend = net.frontend
    else:
        from .features import LogMel

        frontend = LogMel()
    audio = load_audio(file)
    png = out or Path(f"{file.stem}-spectrogram.png")
    spectrogram_png(audio, frontend, png, f"{file.name} · {len(audio) / 16000:.2f} s")
    typer.echo(f"wrote {png}")


@app.command()
def explain(
    file: Path = typer.Argument(..., help="An audio clip (its best 1-s window is explained) or a digit picture."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="PNG to write [default: FILE-explain.png here]."),
    model: Optional[Path] = ModelOpt,
    target: Optional[str] = typer.Option(None, help="Explain this label [default: the top prediction]."),
) -> None:
    """Show what the network sees: input, first-layer filters, feature maps and a Grad-CAM heat-map.

    Grad-CAM weighs the last conv layer's maps by the gradient of the chosen class's score: the
    bright parts of the heat-map are where the evidence for that class lies (for a word: when it
    was said and in which frequency bands; for a digit: which strokes).
    """
    from . import explain as explaining
    from .checkpoint import load_model
    from .plots import explain_png

    net, _ = load_model(_checkpoint(model))
    result = explaining.explain(net, file, target)
    png = out or Path(f"{file.stem}-explain.png")
    explain_png(result, png, net.kind)
    top = ", ".join(f"{label} {p:.2f}" for label, p in result.prediction.top(3))
    typer.echo(f"{file}: {top}; Grad-CAM for {result.target} → {png}")


def _detector_config(threshold: float, hop: float, keywords: Optional[str]):
    from .stream import DetectorConfig

    if not 0 < threshold <= 1:
        raise UserError("--threshold: give a probability between 0 and 1")
    return DetectorConfig(hop_ms=hop, threshold=threshold, keywords=tuple(_words(keywords) or ()) or None)


def _stream_detector(model: Optional[Path], threshold: Optional[float], hop: float, keywords: Optional[str]):
    """The streaming engine for `detect` and `listen`, at `threshold` or else the model's own
    calibrated one, a line saying which threshold it uses and why, and the checkpoint's metadata."""
    from .checkpoint import load_any
    from .stream import StreamingDetector, model_threshold

    net, meta = load_any(_checkpoint(model))
    if net.kind != "audio":
        raise UserError("this is an image model; listening needs an audio model")
    calibration = meta.get("calibration")
    chosen = threshold if threshold is not None else model_threshold(meta)
    if threshold is not None:
        why = "as asked"
    elif calibration:
        why = (f"calibrated: recall {calibration['recall']:.0%} at {calibration['fa_per_hour']:.1f} false "
               f"accepts/hour on {calibration['minutes']:g} min of validation stream")
        if calibration.get("synthetic"):  # a synthesiser's voices, not the user's: say so before they try
            why += (" in synthetic voices; real speakers are found less often, and real words that are not "
                    "keywords fire it more often: a higher --threshold fires less")
    else:
        why = "the default; this model has no calibrated threshold"
    try:
        detector = StreamingDetector(net, _detector_config(chosen, hop, keywords))
    except ValueError as e:
        raise UserError(f"--keywords: {e}") from None
    return detector, f"threshold {chosen:g} ({why})", meta


ThresholdOpt = typer.Option(None, help="Smoothed probability that counts as a detection [default: the one the "
                            "model was calibrated to in training, else 0.7].")


@app.command()
def detect(
    files: List[Path] = typer.Argument(..., help="Recordings of any length, rate or channel count."),
    model: Optional[Path] = RunModelOpt,
    threshold: Optional[float] = ThresholdOpt,
    hop: float = typer.Option(100.0, help="Milliseconds between scorings of the last second."),
    keywords: Optional[str] = typer.Option(None, help="Report only these words, e.g. yes,stop."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per line: file, time, label, score."),
) -> None:
    """Find keywords in long recordings with the same streaming engine as `kws listen`."""
    from .audio import stream_audio
    from .stream import detect_chunks

    detector, _, _ = _stream_detector(model, threshold, hop, keywords)
    config = detector.config
    failed = 0
    for f in files:
        try:  # decoded in blocks: an hour-long recording needs no more memory than a minute
            for d in detect_chunks(detector.model, stream_audio(f), config):
                if as_json:
                    typer.echo(json.dumps({"file": str(f), **d.as_json()}))
                else:
                    typer.echo(f"{f}  {d.time:8.2f}s  {d.label:<10} {d.score:.2f}")
        except UserError as e:
            failed += 1
            _err(str(e))
    if failed:
        raise typer.Exit(2)


@app.command()
def listen(
    model: Optional[Path] = RunModelOpt,
    device: Optional[str] = typer.Option(None, help="Input device index or part of its name [default: system default]."),
    threshold: Optional[float] = ThresholdOpt,
    hop: float = typer.Option(100.0, help="Milliseconds between scorings of the last second."),
    keywords: Optional[str] = typer.Option(None, help="Report only these words, e.g. yes,stop."),
    duration: Optional[float] = typer.Option(None, min=0.1, help="Stop after this many seconds [default: Ctrl-C]."),
    as_json: bool = typer.Option(False, "--json", help="One JSON object per detection and line, flushed at once."),
    list_devices: bool = typer.Option(False, "--list-devices", help="Show the input devices and exit."),
) -> None:
    """Spot keywords live from the microphone.

    Every hop (100 ms) the model scores the last second; scores are averaged over 500 ms, a keyword
    is reported when its average reaches the threshold, and the same keyword is then ignored for
    1 s. _silence_ and _unknown_ are never reported. The first line says which threshold is used:
    by default the one training calibrated (kws evaluate --stream measures others).
    """
    from .listen import input_devices, resolve_device, stream_microphone

    if list_devices:
        found = input_devices()
        if not found:
            raise UserError("no audio input device found")
        for i, name, channels, rate in found:
            typer.echo(f"{i:>3}  {name}  ({channels} ch, {rate:.0f} Hz)")
        return
    detector, using, _ = _stream_detector(model, threshold, hop, keywords)
    dev = resolve_device(device)
    _info(f"listening with {using}")
    found: list = []
    live = None
    if not as_json and sys.stdout.isatty():
        from rich.live import Live

        live = Live("listening…", refresh_per_second=10, transient=True)
        live.start()

    def on_audio(chunk) -> bool:
        for d in detector.feed(chunk):
            found.append(d)
            line = json.dumps(d.as_json()) if as_json else f"{d.time:8.2f}s  {d.label:<10} {d.score:.2f}"
            (live.console.print if live else typer.echo)(line)
            sys.stdout.flush()
        if live is not None and detector.latest is not None:
            import numpy as np

            level = float(np.sqrt(np.mean(chunk ** 2))) if len(chunk) else 0.0
            db = 20 * np.log10(level + 1e-9)
            bar = "█" * int(max(0, min(30, (db + 60) / 2)))
            top = int(detector.latest.argmax())
            live.update(f"level {db:6.1f} dB {bar:<30}  now: {detector.model.labels[top]} "
                        f"({float(detector.latest[top]):.2f})")
        return True

    try:
        seconds = stream_microphone(dev, on_audio, duration)
    finally:
        if live is not None:
            live.stop()
    counts = {}
    for d in found:
        counts[d.label] = counts.get(d.label, 0) + 1
    summary = ", ".join(f"{k} ×{v}" for k, v in counts.items()) or "no keywords"
    _info(f"listened {seconds:.1f}s: {summary}")


@app.command()
def enroll(
    word: str = typer.Argument(..., help="The word or short phrase to teach, e.g. marvin or 'hey computer'."),
    model: Optional[Path] = ModelOpt,
    count: int = typer.Option(8, min=1, max=50, help="Takes to record from the microphone."),
    from_dir: Optional[Path] = typer.Option(None, help="Take the examples from this folder of WAVs instead "
                                            "(one take each; _background_noise_/ inside it, if any, is the room)."),
    out: Optional[Path] = typer.Option(None, "-o", "--out", help="The new model [default: MODEL-WORD.pt beside it]."),
    device: Optional[str] = typer.Option(None, help="Input device index or part of its name [default: system default]."),
    data_dir: Optional[Path] = DataDir,
    seed: int = typer.Option(0, help="Seeds the fine-tuning's batches and augmentation."),
) -> None:
    """Teach a model your voice: a few takes of a word adapt it in under a minute.

    Records --count takes, each after a prompt and with a level meter, then 10 s of the room's
    background; or reads them from --from-dir. A word new to the model becomes a new label; a word
    it knows is sharpened. The takes are saved beside the new model (WORD/ in MODEL-WORD.enroll/),
    so the same adaptation can be redone with --from-dir. The model's training data is needed too,
    so that the words it knew stay known. Its streaming threshold is then set again, the way training
    set it: an adapted net fires more often at the old one.
    """
    from . import paths
    from .audio import write_wav
    from .checkpoint import load_model, save_model
    from .enroll import Stopped, adapt, check_model, earlier_takes, read_folder, record
    from .voices.confusable import normalise

    word = normalise(word, given_as="word")
    ckpt = _checkpoint(model)
    net, meta = load_model(ckpt)
    check_model(net)
    slug = word.replace(" ", "_")
    out = out or ckpt.with_name(f"{ckpt.stem}-{slug}.pt")
    folder = out.with_suffix(".enroll") / slug
    if from_dir is not None:
        takes, room = read_folder(from_dir)
        if from_dir.resolve() != folder.resolve():
            folder.mkdir(parents=True, exist_ok=True)
            for k, take in enumerate(takes, 1):
                write_wav(folder / f"{k:02d}.wav", take.astype("float32") / 32768)
            if len(room):
                (folder / "_background_noise_").mkdir(exist_ok=True)
                write_wav(folder / "_background_noise_" / "room.wav", room)
    else:
        from .listen import resolve_device

        dev = resolve_device(device)
        try:
            takes, room = record(word, count, folder, dev, say=_info)
        except Stopped as e:
            _info(f"{e}; finish with: kws enroll {word!r} --model {ckpt} --from-dir {e.folder}")
            raise typer.Exit(130)
    _info(f"adapting {ckpt} to {word!r} from {len(takes)} takes")
    new, result = adapt(net, meta, word, takes, room, paths.data_dir(data_dir), log=_info, earlier=earlier_takes(meta))
    kept = {k: v for k, v in meta.items() if k not in ("frontend", "net", "labels", "classes", "state_dict",
                                                       "format", "kws_version", "kind")}
    calibration = result.pop("calibration", None)
    if calibration:
        kept["calibration"] = calibration
    save_model(new, out, **{**kept, "enrolled": [*meta.get("enrolled", []), {**result, "folder": str(folder)}]})
    how = {"new": "a new label", "promoted": "a label (it was one of the words behind _unknown_)",
           "sharpened": "sharpened"}[result["how"]]
    typer.echo(f"enrolled {word!r} as {how} in {result['seconds']:.0f} s: {result['heard']} of {result['examples']} "
               f"takes heard as {word!r}; the words it knew: {result['known_before']:.1%} -> "
               f"{result['known_after']:.1%} on {result['dataset']}'s validation clips")
    if calibration:
        from .wakeword import calibration_line

        typer.echo(f"streaming threshold {result['threshold_before']:g} -> {calibration['threshold']:g}: "
                   f"{calibration_line(calibration)}")
    typer.echo(f"model saved to {out} (takes in {folder})")


@app.command()
def serve(
    model: Optional[Path] = ModelOpt,
    host: str = typer.Option("127.0.0.1", help="Address to bind. The default is this machine only; 0.0.0.0 "
                             "lets other machines on your network open the page."),
    port: int = typer.Option(8000, min=1, max=65535),
    threshold: Optional[float] = ThresholdOpt,
    max_upload_mb: float = typer.Option(10.0, min=0.01, help="The largest file POST /api/classify accepts."),
) -> None:
    """Hear keywords in a browser tab, and see the log-mel image the network reads.

    Open the printed address, press Start listening and allow the microphone: the page streams it
    to this server, which runs the same engine and threshold as kws listen (no PortAudio needed).
    Drop a WAV file on the page to classify it. API: GET /api/model (labels, threshold, recipe);
    POST /api/classify with a WAV body (what kws classify --json prints); WebSocket /ws.
    Needs the web extra: pip install 'kws[web]'.
    """
    from .serve import check_port, create_app, require_web
    from .serve import serve as run_server

    require_web()
    path = _checkpoint(model)
    if path.suffix.lower() == ".onnx":
        raise UserError(f"{path}: kws serve needs a model.pt (the page shows its frontend's image)")
    detector, using, meta = _stream_detector(path, threshold, 100.0, None)
    check_port(host, port)
    web = create_app(detector.model, meta, detector.config, using, str(path), max_upload_mb)
    shown = f"[{host}]" if ":" in host else host
    _info(f"kws serve: open http://{shown}:{port}/ (model {path}, {using}); Ctrl-C stops")
    if host not in ("127.0.0.1", "localhost", "::1"):
        _info(f"bound to {host}: other machines that reach it can open the page")
    run_server(web, host, port)


def main() -> None:
    """Console entry point: user errors become one line on stderr and an exit code, not a traceback."""
    try:
        app()
    except KwsError as e:
        _err(str(e))
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        _err("interrupted")
        sys.exit(130)
    except OSError as e:  # disk full, permission denied, …: the system's words, one line
        _err(f"{e.strerror or e}{': ' + str(e.filename) if e.filename else ''}")
        sys.exit(1)
