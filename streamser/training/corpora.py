"""Corpus loaders: published file-naming conventions -> canonical :class:`Utterance` lists.

Each loader walks a corpus folder, parses the corpus's own naming convention and maps its labels
to the canonical set of :mod:`streamser.labels`. Nothing is dropped silently: every file that is
skipped (a label with no canonical counterpart, a name that breaks the convention, a non-speech
RAVDESS file) is counted in :attr:`CorpusScan.skipped` under a reason, and :func:`load_corpus`
logs those counts at WARNING level.

Supported layouts (any audio extension soundfile reads; ``.flac`` copies work like ``.wav``):

========= =============================================== ==========================================
name      layout                                          speaker id
========= =============================================== ==========================================
ravdess   ``Actor_XX/03-01-EE-II-SS-RR-AA.*`` (speech:    ``ravdess:AA`` (two digits)
          modality 03, vocal channel 01)
tess      ``<OAF|YAF>_<emotion>/<prefix>_<word>_<emo>.*`` ``tess:OAF`` / ``tess:YAF`` (from folder)
nemo      ``samples/EB0_anger_1.*`` (speaker_emotion_n)    ``nemo:EB0``
ased      ``05Angry/a5-03-01-02-50.*`` (x n-yy-aa-gg-bb)  ``ased:50`` (bb)
baved     ``0/10-f-20-0-1-0.*`` (spk-g-age-word-level-r)  ``baved:10``; level 1 -> neutral, 0/2 none
cremad    ``1001_DFA_ANG_XX.*`` (speaker_sentence_emo_lvl) ``cremad:1001``
emodb     ``03a01Fa.*`` (speaker, text, German letter,     ``emodb:03``
          version); boredom (L) has no canonical label
savee     ``DC_a01.*`` or ``DC/a01.*`` (a d f h n sa su)  ``savee:DC``
manifest  CSV ``path,label,speaker[,corpus]``, paths      ``<corpus>:<speaker>``
          relative to the CSV
========= =============================================== ==========================================

Speaker ids are namespaced by corpus so folds never confuse speaker "03" of two corpora.
All functions are pure file-system reads; call them from any thread.
"""

from __future__ import annotations

import csv
import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from streamser.errors import ConfigError
from streamser.labels import CANONICAL_LABELS

__all__ = [
    "AUDIO_EXTENSIONS",
    "CORPORA",
    "CorpusScan",
    "Utterance",
    "canonical_label",
    "default_corpora_root",
    "load_corpus",
    "scan_ased",
    "scan_baved",
    "scan_corpus",
    "scan_cremad",
    "scan_emodb",
    "scan_manifest",
    "scan_nemo",
    "scan_ravdess",
    "scan_savee",
    "scan_tess",
]

log = logging.getLogger(__name__)

#: Lower-case file extensions (with the dot) that libsndfile can decode on this machine.
#: Headerless ``.raw`` is left out: it cannot be decoded without being told its format.
AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    ({f".{fmt.lower()}" for fmt in sf.available_formats()} | {".aif", ".oga", ".opus"}) - {".raw"}
)

#: Environment variable naming the folder that holds one sub-folder per corpus.
CORPORA_ENV = "STREAMSER_CORPORA"


@dataclass(frozen=True)
class Utterance:
    """One labelled recording.

    ``label`` is canonical (see :data:`streamser.labels.CANONICAL_LABELS`), or ``None`` where the
    corpus gives no category (BAVED's low and high intensity levels); ``speaker`` is namespaced
    by corpus (``"ravdess:19"``); ``corpus`` is the loader name (``"ravdess"``); ``arousal`` is
    the corpus's own intensity level where it has one (BAVED: 0 low, 1 normal, 2 high).
    """

    path: Path
    label: str | None
    speaker: str
    corpus: str
    arousal: int | None = None


@dataclass(frozen=True)
class CorpusScan:
    """What a loader found: the usable utterances and the count of skipped files per reason."""

    corpus: str
    utterances: tuple[Utterance, ...]
    skipped: Mapping[str, int] = field(default_factory=dict)

    @property
    def n_skipped(self) -> int:
        """Total number of skipped audio files."""
        return sum(self.skipped.values())


# --------------------------------------------------------------------------- helpers


def default_corpora_root() -> Path | None:
    """The corpora folder: ``$STREAMSER_CORPORA``, else ``../shared/corpora`` next to the checkout.

    Returns ``None`` when the folder does not exist (a user's clone has no corpora), so callers
    and tests can skip cleanly.
    """
    env = os.environ.get(CORPORA_ENV)
    if env:
        candidate = Path(env).expanduser()
    else:
        repo = Path(__file__).resolve().parents[2]
        candidate = repo.parent / "shared" / "corpora"
    return candidate if candidate.is_dir() else None


def _audio_files(root: Path) -> Iterator[Path]:
    """Every audio file under ``root`` (recursive, sorted, hidden files ignored)."""
    for path in sorted(root.rglob("*")):
        if path.name.startswith(".") or not path.is_file():
            continue
        if path.suffix.lower() in AUDIO_EXTENSIONS:
            yield path


def _check_root(root: Path, corpus: str) -> Path:
    root = Path(root).expanduser()
    if not root.is_dir():
        raise ConfigError(
            f"{corpus} corpus folder {str(root)!r} does not exist or is not a folder. "
            f"Point to the folder that holds the corpus (or set {CORPORA_ENV} to its parent)."
        )
    return root


def _finish(corpus: str, found: list[Utterance], skipped: Counter[str]) -> CorpusScan:
    found.sort(key=lambda u: str(u.path))
    return CorpusScan(corpus=corpus, utterances=tuple(found), skipped=dict(sorted(skipped.items())))


BAD_NAME = "file name does not follow the naming convention"

# Generic synonyms used by TESS folder names and manifests (lower-case keys).
_SYNONYMS: dict[str, str] = {
    **{label: label for label in CANONICAL_LABELS},
    "anger": "angry",
    "happiness": "happy",
    "joy": "happy",
    "sadness": "sad",
    "fear": "fearful",
    "disgusted": "disgust",
    "surprise": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "ps": "surprised",
}


def canonical_label(raw: str) -> str | None:
    """Map a free-form English emotion name to a canonical label (``None`` when unknown)."""
    return _SYNONYMS.get(raw.strip().lower().replace(" ", "_").replace("-", "_"))


# --------------------------------------------------------------------------- RAVDESS

_RAVDESS_EMOTIONS = {
    "01": "neutral",
    "02": "calm",
    "03": "happy",
    "04": "sad",
    "05": "angry",
    "06": "fearful",
    "07": "disgust",
    "08": "surprised",
}
_RAVDESS_RE = re.compile(r"^(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})-(\d{2})$")


def scan_ravdess(root: Path) -> CorpusScan:
    """RAVDESS ``Actor_XX/03-01-EE-II-SS-RR-AA.*``: speech audio only (modality 03, channel 01).

    Song files (channel 02) and video files (modality 01/02) are skipped and counted.
    """
    root = _check_root(root, "ravdess")
    found: list[Utterance] = []
    skipped: Counter[str] = Counter()
    for path in _audio_files(root):
        m = _RAVDESS_RE.match(path.stem)
        if m is None:
            skipped[BAD_NAME] += 1
            continue
        modality, channel, emotion, _intensity, _statement, _rep, actor = m.groups()
        if modality != "03" or channel != "01":
            skipped[f"not speech audio (modality {modality}, vocal channel {channel})"] += 1
            continue
        label = _RAVDESS_EMOTIONS.get(emotion)
        if label is None:
            skipped[f"unmapped emotion code {emotion!r}"] += 1
            continue
        found.append(Utterance(path, label, f"ravdess:{actor}", "ravdess"))
    return _finish("ravdess", found, skipped)


# --------------------------------------------------------------------------- TESS

_TESS_DIR_RE = re.compile(r"^(OAF|YAF)_(.+)$", re.IGNORECASE)
# File stems: OAF_back_angry, YAF_date_pleasant_surprise; the original release misnames one
# file OA_bite_neutral, so the prefix may be OA/YA.
_TESS_FILE_RE = re.compile(r"^(OAF|YAF|OA|YA)_([^_]+)_(.+)$", re.IGNORECASE)


def scan_tess(root: Path) -> CorpusScan:
    """TESS ``<OAF|YAF>_<emotion>/<prefix>_<word>_<emotion>.*``.

    Speaker and emotion come from the folder (the file prefix is unreliable: ``OA_bite_neutral``);
    for a flat layout without emotion folders they come from the file name (``OA`` -> ``OAF``).
    """
    root = _check_root(root, "tess")
    found: list[Utterance] = []
    skipped: Counter[str] = Counter()
    for path in _audio_files(root):
        dir_match = _TESS_DIR_RE.match(path.parent.name)
        if dir_match is not None:
            speaker, raw = dir_match.group(1).upper(), dir_match.group(2)
        else:
            file_match = _TESS_FILE_RE.match(path.stem)
            if file_match is None:
                skipped[BAD_NAME] += 1
                continue
            prefix, _word, raw = file_match.groups()
            speaker = prefix.upper()[:2] + "F"
        label = canonical_label(raw)
        if label is None:
            skipped[f"unmapped emotion {raw.lower()!r}"] += 1
            continue
        found.append(Utterance(path, label, f"tess:{speaker}", "tess"))
    return _finish("tess", found, skipped)


# --------------------------------------------------------------------------- nEMO

_NEMO_RE = re.compile(r"^([A-Z]{2}\d)_([a-z]+)_(\d+)$", re.IGNORECASE)


def scan_nemo(root: Path) -> CorpusScan:
    """nEMO (Polish) ``samples/{speaker}_{emotion}_{sentence}.*``; speaker ``nemo:EB0``.

    Emotions anger, fear, happiness, neutral, sadness, surprised map to canonical labels.
    """
    root = _check_root(root, "nemo")
    found: list[Utterance] = []
    skipped: Counter[str] = Counter()
    for path in _audio_files(root):
        m = _NEMO_RE.match(path.stem)
        if m is None:
            skipped[BAD_NAME] += 1
            continue
        speaker, raw, _sentence = m.groups()
        label = canonical_label(raw)
        if label is None:
            skipped[f"unmapped emotion {raw.lower()!r}"] += 1
            continue
        found.append(Utterance(path, label, f"nemo:{speaker.upper()}", "nemo"))
    return _finish("nemo", found, skipped)


# --------------------------------------------------------------------------- ASED

_ASED_EMOTIONS = {"n": "neutral", "f": "fearful", "h": "happy", "s": "sad", "a": "angry"}
_ASED_RE = re.compile(r"^([a-z])(\d)-(\d{2})-(\d{2})-(\d{2})-(\d{2})$", re.IGNORECASE)

#: ASED sentences spoken in all five emotions; sentences 03-07 are emotion-specific texts.
ASED_SHARED_SENTENCES = frozenset({"01", "02"})


def scan_ased(root: Path) -> CorpusScan:
    """ASED (Amharic) ``<NN><Emotion>/xn-yy-aa-gg-bb.*`` (case-insensitive); speaker ``ased:bb``.

    ``x`` is the emotion letter, ``yy`` the sentence, ``bb`` the speaker (1 of 65). Sentences
    03-07 carry one emotion each (see :data:`ASED_SHARED_SENTENCES`); the path keeps ``yy`` so
    an evaluation can restrict itself to the shared sentences.
    """
    root = _check_root(root, "ased")
    found: list[Utterance] = []
    skipped: Counter[str] = Counter()
    for path in _audio_files(root):
        m = _ASED_RE.match(path.stem)
        if m is None:
            skipped[BAD_NAME] += 1
            continue
        letter, _folder, _sentence, _rep, _gender, speaker = m.groups()
        label = _ASED_EMOTIONS.get(letter.lower())
        if label is None:
            skipped[f"unmapped emotion letter {letter!r}"] += 1
            continue
        found.append(Utterance(path, label, f"ased:{speaker}", "ased"))
    return _finish("ased", found, skipped)


# --------------------------------------------------------------------------- BAVED

_BAVED_RE = re.compile(r"^(\d+)-([mf])-(\d+)-(\d)-([012])-(\d+)$", re.IGNORECASE)
#: BAVED speakers that are the same person (the same 21 recordings under two ids).
_BAVED_SAME_SPEAKER = {"53": "46"}


def scan_baved(root: Path) -> CorpusScan:
    """BAVED (Arabic) ``<word>/<speaker>-<m|f>-<age>-<word>-<level>-<record>.*``.

    The label is an intensity level, not an emotion: level 1 (everyday speech) maps to
    ``neutral``; levels 0 (low) and 2 (high) have no category (``label=None``). Every utterance
    carries the level as ``arousal``. Speaker 53 is speaker 46 (``baved:46``).
    """
    root = _check_root(root, "baved")
    found: list[Utterance] = []
    skipped: Counter[str] = Counter()
    for path in _audio_files(root):
        m = _BAVED_RE.match(path.stem)
        if m is None:
            skipped[BAD_NAME] += 1
            continue
        speaker, _gender, _age, _word, level, _record = m.groups()
        speaker = _BAVED_SAME_SPEAKER.get(speaker, speaker)
        arousal = int(level)
        label = "neutral" if arousal == 1 else None
        found.append(Utterance(path, label, f"baved:{speaker}", "baved", arousal=arousal))
    return _finish("baved", found, skipped)


# --------------------------------------------------------------------------- CREMA-D

_CREMAD_EMOTIONS = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
_CREMAD_RE = re.compile(r"^(\d{4})_([A-Z]{3})_([A-Z]{3})_([A-Z]{1,2})$")


def scan_cremad(root: Path) -> CorpusScan:
    """CREMA-D ``1001_DFA_ANG_XX.*``: speaker, sentence, emotion, level (LO/MD/HI/XX)."""
    root = _check_root(root, "cremad")
    found: list[Utterance] = []
    skipped: Counter[str] = Counter()
    for path in _audio_files(root):
        m = _CREMAD_RE.match(path.stem)
        if m is None:
            skipped[BAD_NAME] += 1
            continue
        speaker, _sentence, emotion, _level = m.groups()
        label = _CREMAD_EMOTIONS.get(emotion)
        if label is None:
            skipped[f"unmapped emotion code {emotion!r}"] += 1
            continue
        found.append(Utterance(path, label, f"cremad:{speaker}", "cremad"))
    return _finish("cremad", found, skipped)


# --------------------------------------------------------------------------- EMO-DB

# German letter codes: Wut, Langeweile, Ekel, Angst, Freude, Trauer, Neutral.
_EMODB_EMOTIONS: dict[str, str | None] = {
    "W": "angry",
    "L": None,  # Langeweile (boredom): no canonical label
    "E": "disgust",
    "A": "fearful",
    "F": "happy",
    "T": "sad",
    "N": "neutral",
}
_EMODB_NAMES = {"L": "boredom"}
_EMODB_RE = re.compile(r"^(\d{2})([a-z]\d{2})([A-Z])([a-z]?)$")


def scan_emodb(root: Path) -> CorpusScan:
    """EMO-DB ``03a01Fa.*``: speaker (2 digits), text (3 chars), German emotion letter, version.

    Boredom (``L``) has no canonical label: those files are skipped and counted.
    """
    root = _check_root(root, "emodb")
    found: list[Utterance] = []
    skipped: Counter[str] = Counter()
    for path in _audio_files(root):
        m = _EMODB_RE.match(path.stem)
        if m is None:
            skipped[BAD_NAME] += 1
            continue
        speaker, _text, letter, _version = m.groups()
        if letter not in _EMODB_EMOTIONS:
            skipped[f"unknown emotion letter {letter!r}"] += 1
            continue
        label = _EMODB_EMOTIONS[letter]
        if label is None:
            skipped[f"no canonical label for {letter!r} ({_EMODB_NAMES[letter]})"] += 1
            continue
        found.append(Utterance(path, label, f"emodb:{speaker}", "emodb"))
    return _finish("emodb", found, skipped)


# --------------------------------------------------------------------------- SAVEE

_SAVEE_EMOTIONS = {
    "a": "angry",
    "d": "disgust",
    "f": "fearful",
    "h": "happy",
    "n": "neutral",
    "sa": "sad",
    "su": "surprised",
}
_SAVEE_RE = re.compile(r"^(?:([A-Z]{2})_)?(sa|su|[a-z])(\d{2})$")
_SAVEE_SPEAKER_DIR = re.compile(r"^[A-Z]{2}$")


def scan_savee(root: Path) -> CorpusScan:
    """SAVEE ``DC_a01.*`` (flat) or ``DC/a01.*`` (AudioData): speaker, emotion prefix, number.

    Emotion prefixes: a anger, d disgust, f fear, h happiness, n neutral, sa sadness, su surprise.
    """
    root = _check_root(root, "savee")
    found: list[Utterance] = []
    skipped: Counter[str] = Counter()
    for path in _audio_files(root):
        m = _SAVEE_RE.match(path.stem)
        if m is None:
            skipped[BAD_NAME] += 1
            continue
        speaker, code, _number = m.groups()
        if speaker is None:
            if not _SAVEE_SPEAKER_DIR.match(path.parent.name):
                skipped["no speaker in file or folder name"] += 1
                continue
            speaker = path.parent.name
        label = _SAVEE_EMOTIONS.get(code)
        if label is None:
            skipped[f"unmapped emotion code {code!r}"] += 1
            continue
        found.append(Utterance(path, label, f"savee:{speaker}", "savee"))
    return _finish("savee", found, skipped)


# --------------------------------------------------------------------------- manifest


def scan_manifest(csv_path: Path, corpus: str | None = None) -> CorpusScan:
    """A CSV manifest with header ``path,label,speaker[,corpus]``.

    Paths are relative to the CSV's folder (absolute paths are kept). Labels may be canonical
    names or common synonyms (``anger``, ``fear``, ``sadness`` ...). The corpus of a row is its
    ``corpus`` column, else ``corpus``, else the CSV's file stem. Raises :class:`ConfigError` on a
    missing column or a missing audio file (with the line number).
    """
    csv_path = Path(csv_path).expanduser()
    if not csv_path.is_file():
        raise ConfigError(
            f"manifest {str(csv_path)!r} does not exist. Give a CSV file with the header "
            "path,label,speaker[,corpus]."
        )
    default_corpus = corpus or csv_path.stem
    base = csv_path.parent
    found: list[Utterance] = []
    skipped: Counter[str] = Counter()
    with csv_path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        fields = [name.strip() for name in (reader.fieldnames or [])]
        missing = [name for name in ("path", "label", "speaker") if name not in fields]
        if missing:
            raise ConfigError(
                f"manifest {str(csv_path)!r} lacks column(s) {', '.join(missing)} (has: "
                f"{', '.join(fields) or 'nothing'}). "
                "The header must be path,label,speaker[,corpus]."
            )
        for line, raw_row in enumerate(reader, start=2):
            row = {(k or "").strip(): (v or "").strip() for k, v in raw_row.items()}
            path = Path(row["path"])
            if not path.is_absolute():
                path = base / path
            if not path.is_file():
                raise ConfigError(
                    f"manifest {str(csv_path)!r} line {line}: audio file {str(path)!r} does not "
                    "exist. Paths are relative to the CSV's folder."
                )
            label = canonical_label(row["label"])
            if label is None:
                skipped[f"unmapped label {row['label']!r}"] += 1
                continue
            row_corpus = row.get("corpus") or default_corpus
            speaker = row["speaker"]
            if not speaker:
                raise ConfigError(
                    f"manifest {str(csv_path)!r} line {line}: empty speaker. Every row needs a "
                    "speaker id so folds can keep speakers apart."
                )
            found.append(Utterance(path, label, f"{row_corpus}:{speaker}", row_corpus))
    return _finish(default_corpus, found, skipped)


# --------------------------------------------------------------------------- dispatch

#: Loader name -> scanner taking the corpus root (for ``manifest``: the CSV path).
CORPORA: dict[str, Callable[[Path], CorpusScan]] = {
    "ravdess": scan_ravdess,
    "tess": scan_tess,
    "nemo": scan_nemo,
    "ased": scan_ased,
    "baved": scan_baved,
    "cremad": scan_cremad,
    "emodb": scan_emodb,
    "savee": scan_savee,
    "manifest": scan_manifest,
}
_ALIASES = {"crema-d": "cremad", "crema_d": "cremad", "emo-db": "emodb", "emo_db": "emodb"}


def scan_corpus(name: str, root: Path | str | None = None) -> CorpusScan:
    """Scan corpus ``name`` at ``root`` (default: ``default_corpora_root() / name``).

    For ``name="manifest"`` ``root`` is the CSV file. Raises :class:`ConfigError` for an unknown
    name or a missing folder.
    """
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in CORPORA:
        raise ConfigError(
            f"unknown corpus {name!r}; known corpora are {', '.join(CORPORA)}. "
            "For any other corpus write a CSV manifest (path,label,speaker[,corpus])."
        )
    if root is None:
        base = default_corpora_root()
        if base is None or key == "manifest":
            raise ConfigError(
                f"no folder given for corpus {name!r} and no corpora folder found. Pass the "
                f"folder explicitly or set {CORPORA_ENV} to the folder holding {key}/."
            )
        root = base / key
    return CORPORA[key](Path(root))


def load_corpus(name: str, root: Path | str | None = None) -> list[Utterance]:
    """Utterances of corpus ``name`` (see :func:`scan_corpus`); skip counts are logged."""
    scan = scan_corpus(name, root)
    for reason, count in scan.skipped.items():
        log.warning("%s: skipped %d file(s): %s", scan.corpus, count, reason)
    return list(scan.utterances)
