"""How well does a model trained only on espeak-ng voices hear real people? One row per recipe.

    python benchmarks/real_speech.py --recipe baseline --recipe acoustic
    python benchmarks/real_speech.py --recipe acoustic --epochs 30 --per-word 600

Each recipe trains the chapter-4 network on the offline corpus (built once under --data-dir) with
its own augmentation, then scores the synthetic test split (unseen voices) and every real clip in
../shared/data/speech whose word the model knows. Results are appended to
benchmarks/real_speech.json, so an ablation can be built up over several runs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kws.augment import AUGMENT_RECIPES, AugmentConfig, SpecAugment, WaveAugment  # noqa: E402
from kws.datasets import build_synth, speech_commands  # noqa: E402
from kws.datasets.synth import SynthConfig, default_root  # noqa: E402
from kws.evaluate import evaluate_on  # noqa: E402
from kws.features import LogMel, LogMelConfig  # noqa: E402
from kws.model import LEARNING_RATES, new_classifier  # noqa: E402
from kws.train import TrainConfig, fit  # noqa: E402

BASE = AugmentConfig()
ACOUSTIC = replace(BASE, **AUGMENT_RECIPES["acoustic"])  # what `kws train --augment acoustic` uses
RECIPES = {  # name: (augmentation, frontend settings)
    "baseline": (BASE, {}),
    "specaugment": (replace(BASE, time_masks=2, freq_masks=2), {}),
    "speed": (replace(BASE, speed=0.15), {}),
    "eq": (replace(BASE, eq_db=4.0, band_limit=0.5), {}),
    "reverb": (replace(BASE, reverb=0.5), {}),
    "warp": (replace(BASE, warp=0.12), {}),
    "channel-norm": (BASE, {"norm": "channel"}),
    "lifter": (BASE, {"lifter": 13}),
    "acoustic": (ACOUSTIC, {}),
    "acoustic+spec": (replace(ACOUSTIC, time_masks=2, freq_masks=2), {}),
    "acoustic+lifter": (ACOUSTIC, {"lifter": 13}),
    "acoustic+lifter+channel": (ACOUSTIC, {"lifter": 13, "norm": "channel"}),
    "acoustic+lifter+spec": (replace(ACOUSTIC, time_masks=2, freq_masks=2), {"lifter": 13}),
    "pcen": (BASE, {"pcen": True}),
    "acoustic+spec+pcen": (replace(ACOUSTIC, time_masks=2, freq_masks=2), {"pcen": True}),
    # 23% of the real clips have a word edge within 20 dB of its peak in the first or last 50 ms
    # (the word is cut off); 10% of the synthetic ones do. A wider shift cuts more of them.
    "acoustic+edges": (replace(ACOUSTIC, shift_ms=250.0), {}),
    # What `kws train --dataset synth` now runs: each mel band's mean removed (README, "Cancelling
    # the microphone"); chosen on the held-out voices of benchmarks/held_out_voices.py.
    "acoustic+channel-mean": (ACOUSTIC, {"norm": "channel-mean"}),
}


CORPORA = {  # name: how the corpus is spoken (SynthConfig fields)
    "timbre+pico": {"pico": 300},  # the default: drawn timbres, plus SVOX Pico clips (needs kws[pico])
    "timbre+pico-en": {"pico": 300, "pico_voices": ("en-US", "en-GB")},  # Pico in English only (session 4)
    "timbre": {"pico": 0},  # every espeak-ng speaker with its own drawn vocal tract and voice source
    "shipped": {"timbre": 0.0, "pico": 0},  # espeak-ng's variants as shipped (the default before session 4)
    "slow+prosody": {"rates": (80, 200), "endings": ("", ".", "?", "!"), "timbre": 0.0, "pico": 0},
}


def run(recipe: str, epochs: int, per_word: int, data_dir: Path, real: Path, seed: int, model: str,
        corpus: str = "timbre+pico") -> dict:
    augment_config, frontend = RECIPES[recipe]
    config = SynthConfig(per_word=per_word, **CORPORA[corpus])
    root = build_synth(default_root(data_dir, config), config)
    splits = speech_commands.load(root, "12", None, seed, name="synth")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = new_classifier(LogMel(LogMelConfig(**frontend)), splits.labels, model)
    spec = SpecAugment(augment_config, generator)
    run_dir = ROOT / "runs" / "real-speech" / f"{recipe}-{model}-e{epochs}-n{per_word}-s{seed}-{corpus}"
    start = time.perf_counter()
    metrics = fit(net, splits, TrainConfig(epochs=epochs, lr=LEARNING_RATES[model], seed=seed), run_dir, generator=generator,
                  augment=WaveAugment(augment_config, splits.noise, generator),
                  augment_features=spec if spec.active else None, progress=False,
                  run_info={"dataset": "synth", "recipe": recipe})
    seconds = time.perf_counter() - start
    from kws.checkpoint import load_model

    best, meta = load_model(run_dir / "model.pt")
    result = evaluate_on(best, meta, str(real), data_dir)
    return {"recipe": recipe, "model": model, "lr": LEARNING_RATES[model], "corpus": corpus, "epochs": epochs,
            "per_word": per_word, "seed": seed,
            "augment": asdict(augment_config), "frontend": frontend, "synth_test": round(metrics["test_accuracy"], 4),
            "real": round(result["accuracy"], 4), "real_clips": result["count"],
            "train_seconds": round(seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", action="append", choices=list(RECIPES), required=True)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--per-word", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="chapter4")
    parser.add_argument("--corpus", choices=list(CORPORA), default="timbre+pico")
    parser.add_argument("--data-dir", type=Path, default=ROOT / "data")
    parser.add_argument("--real", type=Path, default=ROOT.parent / "shared" / "data" / "speech")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "real_speech.json")
    args = parser.parse_args()
    for recipe in args.recipe:
        row = run(recipe, args.epochs, args.per_word, args.data_dir, args.real, args.seed, args.model, args.corpus)
        rows = json.loads(args.out.read_text()) if args.out.exists() else []  # read late: runs may overlap
        args.out.write_text(json.dumps(rows + [row], indent=2) + "\n")
        print(f"{row['recipe']:<16} {row['model']:<9} {row['corpus']:<13} epochs {row['epochs']:>3}  synth test {row['synth_test']:.3f}"
              f"  real {row['real']:.3f} ({row['real_clips']} clips)  {row['train_seconds']:.0f}s", flush=True)


if __name__ == "__main__":
    main()
