"""Real speech to choose on without touching the keyword clips: the digits, or ten other words, as
keywords of their own.

    python benchmarks/real_digits.py --dataset data/synth-n600-… --seed 0
    python benchmarks/real_digits.py --dataset data/synth-n600-… --seed 0 --set reverb=0
    python benchmarks/real_digits.py --dataset data/synth-n600-… --seed 1 --set epochs=20
    python benchmarks/real_digits.py --mirror others --dataset data/synth-n600-… --seed 0

The real-clip figure of the quick start is measured on the ten keywords' clips in
../shared/data/speech, and those may be looked at only a handful of times. The same folder holds
130 real clips of the ten digits (zero … nine) and 100 of ten other words (bed, bird, … wow;
`--mirror others`), people the corpus never heard. So each candidate change is trained with the
`synth` recipe, as the quick start trains, with the mirror's words as the keywords instead
(yes, no, up … go then stand among the other words), and scored on their real clips (what
`kws evaluate --dataset ../shared/data/speech` does: it scores the words the model knows).
`--set FIELD=VALUE` changes one field of the recipe, of its augmentation or of its frontend
(`kws.recipes.parse_changes`). Rows are appended to benchmarks/real_digits.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws.checkpoint import load_model  # noqa: E402
from kws.errors import UserError  # noqa: E402
from kws.evaluate import evaluate_on  # noqa: E402
from kws.recipes import parse_changes, resolve  # noqa: E402
from kws.train import run  # noqa: E402

MIRRORS = {
    "digits": ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    # the other words with real clips in ../shared/data/speech: short ones, like the keywords
    "others": ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", required=True, help="an offline corpus (kws synth), or synth")
    parser.add_argument("--mirror", choices=sorted(MIRRORS), default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "speech")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--runs", type=Path, default=ROOT / "runs" / "real-digits")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "real_digits.json")
    args = parser.parse_args()
    try:
        changes = parse_changes(args.set)
        dataset, recipe = resolve(args.dataset, "synth", **changes)
    except (ValueError, UserError) as e:
        sys.exit(f"--set: {e}")
    tag = "-".join(item.replace("=", "") for item in args.set) or "recipe"
    mirror = "" if args.mirror == "digits" else args.mirror
    out = args.runs / "-".join(filter(None, [Path(dataset).name, mirror, tag, f"s{args.seed}"]))
    start = time.perf_counter()
    try:
        metrics = run(dataset, recipe, out, data_dir=args.data_dir, words=list(MIRRORS[args.mirror]), seed=args.seed,
                      progress=False)
    except UserError as e:
        sys.exit(f"kws: error: {e}")
    seconds = time.perf_counter() - start
    model, meta = load_model(out / "model.pt")
    real = evaluate_on(model, meta, str(args.real), args.data_dir)  # (a plain folder: the words it knows)
    row = {"dataset": Path(dataset).name, **({"mirror": args.mirror} if mirror else {}), "seed": args.seed,
           "set": args.set, "epochs": recipe.epochs, "time_pool": recipe.time_pool,
           "synth_test": round(metrics["test_accuracy"], 4), "real_" + args.mirror: round(real["accuracy"], 4),
           "real_clips": real["count"], "seconds": round(seconds)}
    rows = json.loads(args.results.read_text()) if args.results.exists() else []  # read late: runs may overlap
    args.results.write_text(json.dumps(rows + [row], indent=2) + "\n")
    print(f"{tag} seed {args.seed}: synthetic test {row['synth_test']:.4f}, real {args.mirror} {real['accuracy']:.4f} "
          f"on {row['real_clips']} clips ({row['seconds']} s)")


if __name__ == "__main__":
    main()
