"""Real speech to choose on without touching the keyword clips: the digits, or ten other words, as
keywords of their own.

    python benchmarks/real_digits.py --dataset data/synth-n600-… --seed 0
    python benchmarks/real_digits.py --dataset data/synth-n600-… --seed 0 --set reverb=0
    python benchmarks/real_digits.py --dataset data/synth-n600-… --seed 1 -- --epochs 20
    python benchmarks/real_digits.py --mirror others --dataset data/synth-n600-… --seed 0

The README's real-clip figure is measured on the ten keywords' clips in ../shared/data/speech, and
those may be looked at only a handful of times. The same folder holds 130 real clips of the ten
digits (zero … nine) and 100 of ten other words (bed, bird, … wow; `--mirror others`), people the
corpus never heard. So each candidate change is run as the quick start would run it (`kws train
--dataset DS` with its synth defaults: the acoustic recipe, two voting nets with the max-pool over
time, 14 epochs, unknown words as classes) with the mirror's words as the keywords instead
(`--words zero,…,nine`; yes, no, up … go then stand among the other words), and scored on their
real clips (what `kws evaluate --dataset ../shared/data/speech` does: it scores the words the
model knows). `--set FIELD=VALUE` changes one field of the acoustic recipe (`kws.augment.AugmentConfig`);
arguments after `--` go to `kws train` as they are. Rows are appended to benchmarks/real_digits.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws.augment import AUGMENT_RECIPES, AugmentConfig  # noqa: E402
from kws.checkpoint import load_model  # noqa: E402
from kws.evaluate import evaluate_on  # noqa: E402

MIRRORS = {
    "digits": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    # the other words with real clips in ../shared/data/speech: short ones, like the keywords
    "others": ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow"),
}
RECIPE = "real-digits"  # the recipe this script registers in the `kws train` it runs


def train(dataset: str, words: tuple[str, ...], seed: int, overrides: dict[str, float], extra: list[str],
          out: Path) -> None:
    """`kws train` in this process (the CLI's own entry point, so a user error is one line and an
    exit), with the acoustic recipe as changed by `overrides`."""
    from kws.cli import main

    AUGMENT_RECIPES[RECIPE] = {**AUGMENT_RECIPES["acoustic"], **overrides}
    sys.argv = ["kws", "train", "--dataset", dataset, "--words", ",".join(words), "--augment", RECIPE,
                "--norm", "channel-mean", "--unknown-words", "--time-pool", "--members", "2", "--epochs", "14",
                "--seed", str(seed), "--out", str(out), *extra]
    try:
        main()
    except SystemExit as e:
        if e.code:  # (Click exits with 0 after a command that succeeded)
            raise


def parse_set(items: list[str]) -> dict[str, float]:
    known = {f.name for f in fields(AugmentConfig)}
    out = {}
    for item in items:
        name, _, value = item.partition("=")
        if name not in known or not value:
            sys.exit(f"--set {item}: use FIELD=VALUE with one of {', '.join(sorted(known))}")
        out[name] = float(value)
    return out


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="an offline corpus (kws synth), or synth")
    parser.add_argument("--mirror", choices=sorted(MIRRORS), default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "speech")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "real-digits")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "real_digits.json")
    args = parser.parse_args(argv)
    overrides = parse_set(args.set)
    tag = "-".join(f"{k}{v:g}" for k, v in overrides.items()) or "acoustic"
    extra_tag = "-".join(a.lstrip("-") for a in extra)
    mirror = "" if args.mirror == "digits" else args.mirror
    out = args.runs / "-".join(filter(None, [Path(args.dataset).name, mirror, tag, extra_tag, f"s{args.seed}"]))
    start = time.perf_counter()
    train(args.dataset, MIRRORS[args.mirror], args.seed, overrides, extra, out)
    seconds = time.perf_counter() - start
    model, meta = load_model(out / "model.pt")
    real = evaluate_on(model, meta, str(args.real), ROOT / "data")  # (a plain folder: the words it knows)
    metrics = json.loads((out / "metrics.json").read_text())
    row = {"dataset": Path(args.dataset).name, **({"mirror": args.mirror} if mirror else {}), "seed": args.seed,
           "set": overrides, "train_args": extra, "epochs": metrics["epochs"],
           "time_pool": bool(metrics.get("time_pool")), "synth_test": round(metrics["test_accuracy"], 4),
           "real_" + args.mirror: round(real["accuracy"], 4),
           "real_clips": real["count"], "seconds": round(seconds)}
    rows = json.loads(args.results.read_text()) if args.results.exists() else []  # read late: runs may overlap
    args.results.write_text(json.dumps(rows + [row], indent=2) + "\n")
    print(f"{tag} seed {args.seed}: synthetic test {row['synth_test']:.4f}, real {args.mirror} {real['accuracy']:.4f} "
          f"on {row['real_clips']} clips ({row['seconds']} s)")


if __name__ == "__main__":
    main()
