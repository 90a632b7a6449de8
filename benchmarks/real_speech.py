"""How well does a model trained only on espeak-ng voices hear real people? One row per variant.

    python benchmarks/real_speech.py --variant baseline --variant acoustic
    python benchmarks/real_speech.py --variant acoustic --epochs 30 --per-word 600

Each variant of the `speech-commands` recipe (`VARIANTS`) trains through `kws.train.run` on the
offline corpus (built once under --data-dir), then scores the synthetic test split (unseen voices) and every real clip in
../shared/data/speech whose word the model knows. Results are appended to
benchmarks/real_speech.json, so an ablation can be built up over several runs.
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
from kws.datasets import build_synth  # noqa: E402
from kws.datasets.synth import SynthConfig, default_root  # noqa: E402
from kws.evaluate import evaluate_on  # noqa: E402
from kws.recipes import parse_changes, resolve  # noqa: E402
from kws.train import run as train  # noqa: E402

# Each variant changes the `speech-commands` recipe (one net, basic augmentation, utterance norm)
# by recipe, augmentation or frontend fields (`kws.recipes.parse_changes`).
VARIANTS = {
    "baseline": [],
    "specaugment": ["spec_augment=1"],
    "speed": ["speed=0.15"],
    "eq": ["eq_db=4", "band_limit=0.5"],
    "reverb": ["reverb=0.5"],
    "warp": ["warp=0.12"],
    "channel-norm": ["norm=channel"],
    "lifter": ["lifter=13"],
    "acoustic": ["augment=acoustic"],
    "acoustic+spec": ["augment=acoustic", "spec_augment=1"],
    "acoustic+lifter": ["augment=acoustic", "lifter=13"],
    "acoustic+lifter+channel": ["augment=acoustic", "lifter=13", "norm=channel"],
    "acoustic+lifter+spec": ["augment=acoustic", "spec_augment=1", "lifter=13"],
    "pcen": ["pcen=1"],
    "acoustic+spec+pcen": ["augment=acoustic", "spec_augment=1", "pcen=1"],
    # a wider shift cuts off more of the words whose edges lie near the clip's ends
    "acoustic+edges": ["augment=acoustic", "shift_ms=250"],
    "acoustic+channel-mean": ["augment=acoustic", "norm=channel-mean"],
}


CORPORA = {  # name: how the corpus is spoken (SynthConfig fields)
    "timbre+pico": {"pico": 300},  # the default: drawn timbres, plus SVOX Pico clips (needs kws[pico])
    "timbre+pico-en": {"pico": 300, "pico_voices": ("en-US", "en-GB")},  # Pico in English only
    "timbre": {"pico": 0},  # every espeak-ng speaker with its own drawn vocal tract and voice source
    "shipped": {"timbre": 0.0, "pico": 0},  # espeak-ng's variants as shipped
    "slow+prosody": {"rates": (80, 200), "endings": ("", ".", "?", "!"), "timbre": 0.0, "pico": 0},
}


def run(variant: str, epochs: int, per_word: int, data_dir: Path, real: Path, seed: int, model: str,
        corpus: str = "timbre+pico") -> dict:
    config = SynthConfig(per_word=per_word, **{"others_share": 1.0, **CORPORA[corpus]})  # (as when measured)
    root = build_synth(default_root(data_dir, config), config)
    dataset, recipe = resolve(str(root), "speech-commands", epochs=epochs, preset=model,
                              **parse_changes(VARIANTS[variant]))
    run_dir = ROOT / "runs" / "real-speech" / f"{variant}-{model}-e{epochs}-n{per_word}-s{seed}-{corpus}"
    start = time.perf_counter()
    metrics = train(dataset, recipe, run_dir, data_dir=data_dir, seed=seed, progress=False)
    seconds = time.perf_counter() - start
    best, meta = load_model(run_dir / "model.pt")
    result = evaluate_on(best, meta, str(real), data_dir)
    return {"recipe": variant, "model": model, "lr": recipe.lr, "corpus": corpus, "epochs": epochs,
            "per_word": per_word, "seed": seed, "changes": VARIANTS[variant],
            "synth_test": round(metrics["test_accuracy"], 4),
            "real": round(result["accuracy"], 4), "real_clips": result["count"],
            "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variant", action="append", choices=list(VARIANTS), required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--per-word", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="chapter4")
    parser.add_argument("--corpus", choices=list(CORPORA), default="timbre+pico")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "speech")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "real_speech.json")
    args = parser.parse_args()
    for variant in args.variant:
        row = run(variant, args.epochs, args.per_word, args.data_dir, args.real, args.seed, args.model, args.corpus)
        rows = json.loads(args.out.read_text()) if args.out.exists() else []  # read late: runs may overlap
        args.out.write_text(json.dumps(rows + [row], indent=2) + "\n")
        print(f"{row['recipe']:<16} {row['model']:<9} {row['corpus']:<13} epochs {row['epochs']:>3}  synth test {row['synth_test']:.3f}"
              f"  real {row['real']:.3f} ({row['real_clips']} clips)  {row['train_seconds']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
