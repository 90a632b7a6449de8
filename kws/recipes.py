"""Every training choice in one named, frozen object.

`kws train`, the benchmarks and the tests resolve a `Recipe` and hand it to `train.run`; nothing
else decides how a model is trained. A recipe is picked by name (`--recipe`), or by what the data
is: a corpus that `kws synth` built carries a marker file and gets the `synth` recipe wherever it
lives, a named image dataset gets its own, and any other folder of word clips gets
`speech-commands`. Flags then change single fields (`resolve(..., members=4)`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path


@dataclass(frozen=True)
class Recipe:
    name: str
    about: str  # what it is for, in a line
    data: str = "speech-commands"  # the dataset it is made for: `kws train --recipe NAME` trains on it
    preset: str = "chapter4"  # `model.PRESETS`: the book's net, or the wider one
    members: int = 1  # nets trained side by side that vote (`model.Ensemble`)
    time_pool: bool = False  # max-pool the last conv maps over all of time before the dense layers
    epochs: int = 20
    lr: float | None = None  # Adam's peak rate, cosine-decayed; None: the preset's own (`model.LEARNING_RATES`)
    batch_size: int = 64
    augment: str = "basic"  # `augment.AUGMENT_RECIPES`: waveform augmentation for audio
    augment_set: tuple[tuple[str, float], ...] = ()  # `AugmentConfig` fields changed on top of it
    spec_augment: bool = False  # mask two time and two frequency stripes of each image
    norm: str = "utterance"  # `features.NORMS`: how each log-mel image is normalised
    frontend_set: tuple[tuple[str, float], ...] = ()  # other `LogMelConfig` fields changed
    unknown_words: bool = False  # each word behind `_unknown_` its own training class
    unknown_each_epoch: bool = False  # a fresh `_unknown_` draw every epoch
    unknown_weight: float = 1.0  # `_unknown_`'s weight in the loss
    # `_unknown_` training clips drawn from the other words, in percent of the keyword clips
    # (TensorFlow's 10); validation and test keep 10, so that their figures stay comparable.
    unknown_percent: float = 10.0
    # Keyword clips played backwards, as many as this share of them, taught as `_unknown_`
    # (`datasets.reversed`): other words in the keyword speakers' own voices.
    reversed_words: float = 0.0
    # Keyword clips, as many as this share of them, each joined at its middle to the second half of
    # another keyword's clip (`datasets.spliced`), taught as `_unknown_`: keyword sounds, not a keyword.
    spliced_words: float = 0.0
    # The offline corpus's words that are not keywords, a fresh draw each epoch of this share of
    # the keyword clips, taught as `_unknown_` (`datasets.others`): many other words for a corpus
    # of real speech that has few. Built on first use, as `--dataset synth` is.
    synthetic_others: float = 0.0
    source_balance: float = 0.0  # sources joined with +: 0 each row once an epoch, 1 an equal share each
    # Sources joined with +: lowers by this much, in the loss of a source's rows, the logits of the
    # labels that source has no clips of (inf leaves them out), so that a word one source lacks is
    # not learnt as "never said in this source's recordings".
    absent_penalty: float = 0.0
    # After training, the threshold `listen` uses by default is set where a stream built from the
    # validation split (`calibration_minutes` long; 0: none) fires at most this often on other words.
    # An hour, so that a target of one an hour allows one: on half an hour it allows none, and the
    # threshold lands above the stream's most confident error, finding fewer words at the same rate
    # on streams it never saw (docs/streaming.md).
    target_fa_per_hour: float = 1.0
    calibration_minutes: float = 60.0
    # The net's training steps in bfloat16 where the processor has it natively ("auto"), or always
    # in float32 (`train.PRECISIONS`).
    precision: str = "float32"
    # Each training target keeps 1 - this of its probability and spreads the rest over every class,
    # so the net learns to be less sure of every answer.
    label_smoothing: float = 0.0
    per_word: int = 600  # clips per word when the synthetic corpus is built for this recipe
    # Training on a synthetic corpus for `--words`: near misses of each keyword, built and taught
    # as `_unknown_` (`voices.confusable`), so that "comuter" is not heard as "computer".
    near_misses: int = 0

    def line(self) -> str:
        """The whole recipe in one line, as training prints it."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("name", "about")}
        return f"recipe {self.name}: " + " ".join(f"{k}={field_text(v)}" for k, v in values.items())

    def as_dict(self) -> dict:
        return asdict(self)


def field_text(value: object) -> str:
    """A recipe field as `kws recipes` and the training line show it."""
    if value is None:
        return "(the model's)"
    if isinstance(value, tuple):
        return ",".join(f"{k}:{v:g}" for k, v in value) or "-"
    return f"{value:g}" if isinstance(value, float) else str(value)


RECIPES: dict[str, Recipe] = {r.name: r for r in (
    # Chosen on the real subset's validation split (docs/real-speech-commands.md): the time pool,
    # each band's mean removed and two voting nets each raised it over TensorFlow's recipe alone;
    # noise set by signal-to-noise ratio raised both the clip figure and recall on a long stream,
    # and 30 epochs the clip figure and recall at a few false accepts an hour (docs/streaming.md).
    # Each other word its own class (`unknown_words`) found more keywords at 2 false accepts an hour
    # on five speaker folds, clips no worse. Keywords played backwards as other words
    # (`reversed_words`) cost clips and recall on the same folds, so the recipe leaves them to the flag;
    # so too the synthetic corpus's other words (`synthetic_others`): far more untaught words
    # refused, but fewer clips and keywords on the stream. Trained in bfloat16 where the processor
    # has it: the same validation clips and stream, in less time (docs/performance.md). A tenth of
    # each target smoothed raised clips and keywords found at 2 false accepts an hour on the folds
    # and on the validation list (docs/streaming.md). One keyword clip in twenty spliced to another
    # keyword's as an other word (`spliced_words`): an untaught word held out refused far more often,
    # clips and keywords on the stream about as before on the folds.
    Recipe("speech-commands", "real Speech Commands clips: two of the book's nets, time-pooled",
           members=2, time_pool=True, epochs=30, norm="channel-mean", augment_set=(("noise_snr_db", 20.0),),
           unknown_words=True, precision="auto", label_smoothing=0.1, spliced_words=0.05),
    # Chosen for a model trained only on synthesised voices that must hear people: two voting nets,
    # the acoustic augmentation, each band's mean removed, the time pool and unknown words as
    # classes each raised accuracy on voices held out of the corpus (docs/real-speech.md); two
    # near misses a keyword, fewer false accepts on real streams for own words (docs/own-words.md);
    # bfloat16 where the processor has it, the same validation figures in less time.
    Recipe("synth", "the offline quick start: espeak-ng and Pico voices, built on this machine", data="synth",
           members=2, time_pool=True, epochs=14, augment="acoustic", norm="channel-mean", unknown_words=True,
           near_misses=2, precision="auto"),
    # The synth recipe with an even share of each source; a label one source lacks lowered by 2 in
    # that source's loss, which raised words with synthetic clips only on real people and kept the
    # others where they were (a real word held out of the real source, docs/real-speech-commands.md);
    # 30 epochs instead of 14 raised both sources' validation clips at two seeds, for more time;
    # bfloat16 where the processor has it kept them, in less time (docs/performance.md).
    Recipe("hybrid", "real and synthetic speech in one model: sources joined with +", data="synth+speech-commands",
           members=2, time_pool=True, epochs=30, augment="acoustic", norm="channel-mean", unknown_words=True,
           source_balance=1.0, absent_penalty=2.0, precision="auto"),
    Recipe("mnist", "the chapter's own task: 28×28 handwritten digits", data="mnist", epochs=10),
    Recipe("digits", "scikit-learn's 8×8 digits: the image side in seconds, no download", data="digits", epochs=15),
)}

SYNTH_MARKER = "synth_config.txt"  # written by `kws synth` into every corpus it builds


def built_by_synth(folder: str | Path | None) -> bool:
    """Whether a folder is a corpus `kws synth` built, wherever it lives: it carries the marker file."""
    return bool(folder) and (Path(folder) / SYNTH_MARKER).is_file()


def recipe_for(dataset: str) -> str:
    """The recipe a dataset gets by default, from what it is rather than what it is called."""
    if "+" in dataset:
        return "hybrid"
    if built_by_synth(dataset):
        return "synth"
    for recipe in RECIPES.values():
        if recipe.data == dataset:
            return recipe.name
    return "speech-commands"  # a real Speech Commands folder, or any folder of word clips


def resolve(dataset: str | None, recipe: str | None = None, **changes: object) -> tuple[str, Recipe]:
    """The dataset to train on and its recipe: the one named, else the data's own, with `changes`
    (recipe fields) applied and checked. A change of None means "not given". `augment_set` and
    `frontend_set` change single fields on top of the recipe's own (the real recipe's noise by SNR
    stays when a sweep changes the speed). The dataset defaults to the named recipe's own data."""
    from .errors import UserError

    if recipe is not None and recipe not in RECIPES:
        raise UserError(f"--recipe {recipe}: choose one of {', '.join(RECIPES)} (kws recipes lists them)")
    dataset = dataset or (RECIPES[recipe].data if recipe else "speech-commands")
    stray = sorted(set(changes) - {f.name for f in fields(Recipe)})
    if stray:
        raise TypeError(f"not recipe fields: {', '.join(stray)}")
    base = RECIPES[recipe or recipe_for(dataset)]
    changes = {k: v for k, v in changes.items() if v is not None}
    for nested in ("augment_set", "frontend_set"):
        if nested in changes:
            changes[nested] = tuple({**dict(getattr(base, nested)), **dict(changes[nested])}.items())
    return dataset, _checked(replace(base, **changes))


def _checked(recipe: Recipe) -> Recipe:
    from .augment import AUGMENT_RECIPES
    from .errors import UserError
    from .features import NORMS
    from .model import LEARNING_RATES, PRESETS

    if recipe.preset not in PRESETS:
        raise UserError(f"--model {recipe.preset}: choose {' or '.join(PRESETS)}")
    if recipe.augment not in AUGMENT_RECIPES:
        raise UserError(f"--augment {recipe.augment}: choose {' or '.join(AUGMENT_RECIPES)}")
    if recipe.norm not in NORMS:
        raise UserError(f"--norm {recipe.norm}: choose {', '.join(NORMS)}")
    from .train import check_precision

    check_precision(recipe.precision)
    if recipe.members < 1 or recipe.epochs < 1 or recipe.batch_size < 1:
        raise UserError("members, epochs and batch size must each be at least 1")
    if not 0.0 <= recipe.label_smoothing < 1.0:
        raise UserError(f"label smoothing {recipe.label_smoothing:g}: choose a share from 0 to below 1")
    return recipe if recipe.lr is not None else replace(recipe, lr=LEARNING_RATES[recipe.preset])


def parse_changes(items: list[str]) -> dict[str, object]:
    """`FIELD=VALUE` strings as recipe changes, each value read as its field's type. A field of the
    augmentation (`AugmentConfig`) goes into `augment_set`, one of the frontend (`LogMelConfig`)
    into `frontend_set`. For scripts that sweep one choice at a time."""
    from .augment import AugmentConfig
    from .features import LogMelConfig

    def defaults(config: object) -> dict[str, object]:
        return {f.name: getattr(config, f.name) for f in fields(config)}

    base = RECIPES["speech-commands"]
    own = {k: v for k, v in defaults(base).items() if not isinstance(v, tuple) and k not in ("name", "about")}
    own["lr"] = 0.0
    nested = {"augment_set": defaults(AugmentConfig()), "frontend_set": defaults(LogMelConfig())}
    changes: dict[str, object] = {}
    for item in items:
        key, _, text = item.partition("=")
        where = next((k for k, table in nested.items() if key in table), None) if key not in own else None
        if not text or (key not in own and where is None):
            raise ValueError(f"{item}: use FIELD=VALUE with a field of the recipe ({', '.join(sorted(own))}), "
                             f"the augmentation or the frontend")
        value = _typed(text, own[key] if where is None else nested[where][key])
        if where is None:
            changes[key] = value
        else:
            changes[where] = (*changes.get(where, ()), (key, value))
    return changes


def _typed(text: str, like: object) -> object:
    if isinstance(like, bool):
        return text.lower() in ("1", "true", "yes", "on")
    return type(like)(text) if isinstance(like, (int, float, str)) else text
