"""Decode audio files to float32 mono 16 kHz, with an on-disk cache of decoded audio.

:func:`load_audio` reads any format libsndfile decodes (WAV, FLAC, OGG, ...), mixes channels down
by averaging, and resamples with soxr (HQ) to :data:`SAMPLE_RATE`. :class:`AudioCache` stores one
``.npy`` per decoded file under ``$STREAMSER_CACHE/audio16k`` (default
``~/.cache/streamser/audio16k``), keyed by the file's resolved path, modification time and size,
so an edited file is decoded again and reruns skip decoding.

:func:`load_many` decodes a list in a small thread pool (libsndfile and soxr release the GIL)
with a tqdm progress bar. Unreadable files raise :class:`~streamser.errors.AudioSourceError`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from streamser.errors import AudioSourceError
from streamser.training.corpora import Utterance

__all__ = ["CACHE_ENV", "SAMPLE_RATE", "AudioCache", "cache_root", "load_audio", "load_many"]

#: Output sample rate of every loader, in Hz (the model contract's input rate).
SAMPLE_RATE = 16_000

#: Environment variable overriding the cache folder (default ``~/.cache/streamser``).
CACHE_ENV = "STREAMSER_CACHE"


def cache_root() -> Path:
    """The streamser cache folder: ``$STREAMSER_CACHE``, else ``~/.cache/streamser``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "streamser"


class AudioCache:
    """Decoded 16 kHz audio, one ``.npy`` per source file under ``root``.

    Keys hash the resolved path, ``st_mtime_ns`` and ``st_size`` of the source. Writes are
    atomic (temporary file + rename), so concurrent threads or processes never read half a file.
    ``hits`` and ``misses`` count lookups since construction.
    """

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else cache_root() / "audio16k"
        self.hits = 0
        self.misses = 0

    def key_path(self, source: Path) -> Path:
        """Where the decoded audio of ``source`` is (or would be) stored."""
        st = source.stat()
        ident = f"{source.resolve()}|{st.st_mtime_ns}|{st.st_size}|{SAMPLE_RATE}"
        digest = hashlib.sha1(ident.encode("utf-8")).hexdigest()
        return self.root / digest[:2] / f"{digest}.npy"

    def get(self, source: Path) -> np.ndarray | None:
        """Cached audio of ``source``, or ``None`` on a miss."""
        target = self.key_path(source)
        try:
            audio = np.load(target, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):
            self.misses += 1
            return None
        self.hits += 1
        return audio

    def put(self, source: Path, audio: np.ndarray) -> None:
        """Store ``audio`` (float32 mono 16 kHz) for ``source``."""
        target = self.key_path(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, np.asarray(audio, dtype=np.float32), allow_pickle=False)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _decode(path: Path) -> np.ndarray:
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise AudioSourceError(
            f"cannot decode {str(path)!r}: {exc}. Check that the file is audio that "
            "libsndfile reads (WAV, FLAC, OGG, ...)."
        ) from exc
    mono = data.mean(axis=1, dtype=np.float32) if data.shape[1] > 1 else data[:, 0]
    if rate != SAMPLE_RATE and mono.size:
        mono = soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _resolve_cache(cache: AudioCache | bool) -> AudioCache | None:
    if cache is True:
        return AudioCache()
    if cache is False:
        return None
    return cache


def load_audio(path: Path | str, cache: AudioCache | bool = True) -> np.ndarray:
    """Float32 mono samples of ``path`` at 16 kHz (1-D, values as stored, nominally [-1, 1]).

    ``cache``: ``True`` uses the default :class:`AudioCache`, ``False`` decodes every time, or
    pass a cache instance.
    """
    source = Path(path)
    store = _resolve_cache(cache)
    if store is not None:
        hit = store.get(source)
        if hit is not None:
            return hit
    audio = _decode(source)
    if store is not None:
        store.put(source, audio)
    return audio


def load_many(
    items: Sequence[Utterance | Path | str],
    workers: int = 2,
    cache: AudioCache | bool = True,
    progress: bool = True,
    desc: str = "decode",
) -> list[np.ndarray]:
    """Decode ``items`` (utterances or paths) in order with ``workers`` threads.

    Returns one float32 mono 16 kHz array per item. ``progress`` shows a tqdm bar on stderr.
    """
    from tqdm.auto import tqdm

    store = _resolve_cache(cache)
    store_arg: AudioCache | bool = store if store is not None else False
    paths = [item.path if isinstance(item, Utterance) else Path(item) for item in items]
    bar = tqdm(total=len(paths), desc=desc, unit="file", disable=not progress)
    try:
        if workers <= 1:
            out = []
            for path in paths:
                out.append(load_audio(path, store_arg))
                bar.update(1)
            return out

        def one(path: Path) -> np.ndarray:
            audio = load_audio(path, store_arg)
            bar.update(1)
            return audio

        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode") as pool:
            return list(pool.map(one, paths))
    finally:
        bar.close()
