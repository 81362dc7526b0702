"""Audio sources: microphone, file, raw PCM on stdin — one interface, one code path downstream.

A source delivers :class:`RawBlock` objects (its own rate and channel count) into the engine's
capture queue; :class:`streamser.core.conditioning.Conditioner` turns them into 16 kHz mono
blocks on the inference thread. Sources own their threads:

- :class:`MicSource` — PortAudio's callback thread; the callback only copies and enqueues.
- :class:`FileSource` — a reader thread, paced in real time (like a microphone: never waits on
  the queue) or as fast as compute allows (waits for room: nothing is dropped).
- :class:`StdinSource` — a reader thread on raw signed 16-bit little-endian PCM.

Every source sets :attr:`Source.finished` when it ends (end of file, device lost, ``stop()``)
and puts a user-facing :class:`AudioSourceError` in :attr:`Source.error` when it failed.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np

from streamser.bus import BoundedQueue
from streamser.core.conditioning import RawBlock
from streamser.core.frames import SAMPLE_RATE
from streamser.devices import import_sounddevice, open_streams, resolve_device
from streamser.errors import AudioSourceError

__all__ = [
    "FileSource",
    "MicSource",
    "RawBlock",
    "Source",
    "StdinSource",
]

log = logging.getLogger(__name__)

class Source:
    """Base class: ``start(queue)``, ``stop()``, ``finished``, ``error``, ``rate``, ``name``."""

    name: str = "source"
    rate: int = SAMPLE_RATE
    #: True when the source delivers audio as it happens (mic, paced file); False when it runs
    #: as fast as the consumer allows.
    realtime: bool = True

    def __init__(self) -> None:
        self.finished = threading.Event()
        self.error: AudioSourceError | None = None
        self._queue: BoundedQueue[RawBlock] | None = None

    def start(self, queue: BoundedQueue[RawBlock]) -> None:
        """Begin delivering blocks into ``queue``; returns at once."""
        raise NotImplementedError

    @property
    def overflows(self) -> int:
        """Times the device reported lost input (PortAudio overflow); 0 for other sources."""
        return 0

    def stop(self) -> None:
        """Stop delivering; idempotent; sets :attr:`finished`."""
        raise NotImplementedError

    def _fail(self, error: AudioSourceError) -> None:
        self.error = error
        self.finished.set()


class MicSource(Source):
    """A PortAudio input device, captured by sounddevice's callback.

    ``device`` is None (default input), an index, or a name substring (see
    :func:`streamser.devices.resolve_device`). The device is opened at 16 kHz mono when it
    supports that, else at its default rate (the conditioner resamples).
    """

    def __init__(self, device: str | int | None = None, blocksize: int = 0) -> None:
        super().__init__()
        self.device = resolve_device(device)
        self.name = f"mic: {self.device.name}"
        self._blocksize = blocksize
        self._stream: object | None = None
        self._frames = 0
        self.status_flags = 0  # PortAudio overflow/underflow reports
        sd = import_sounddevice()
        try:
            sd.check_input_settings(self.device.index, channels=1, samplerate=SAMPLE_RATE,
                                    dtype="float32")
            self.rate = SAMPLE_RATE
        except Exception:
            self.rate = int(self.device.default_samplerate)

    def _callback(self, indata: np.ndarray, frames: int, time_info: object, status: object) -> None:
        """Called on the PortAudio thread: copy the block and enqueue it, nothing else."""
        assert self._queue is not None
        self._queue.put(RawBlock(self._frames, indata.copy(), time.monotonic()))
        self._frames += frames
        if status:
            self.status_flags += 1

    @property
    def overflows(self) -> int:
        return self.status_flags

    def _on_finished(self) -> None:
        """Called on the PortAudio thread when the stream ends (stopped, or the device is lost)."""
        if not self.finished.is_set():
            self._fail(AudioSourceError(
                f"input device {self.device.name!r} stopped delivering audio (unplugged or "
                "taken by another program). Reconnect it, or pick another with --device."
            ))

    def start(self, queue: BoundedQueue[RawBlock]) -> None:
        sd = import_sounddevice()
        self._queue = queue
        try:
            stream = sd.InputStream(
                device=self.device.index, channels=1, samplerate=self.rate, dtype="float32",
                blocksize=self._blocksize, callback=self._callback,
                finished_callback=self._on_finished,
            )
            stream.start()
            open_streams[0] += 1
        except Exception as exc:
            raise AudioSourceError(
                f"cannot open input device {self.device.index} ({self.device.name!r}) at "
                f"{self.rate} Hz mono: {exc}. Check that no other program holds it exclusively, "
                "or pick another with --device (see 'streamser devices')."
            ) from None
        self._stream = stream

    stop_deadline_s = 2.0
    """How long :meth:`stop` waits for PortAudio to release the stream (seconds)."""

    def stop(self) -> None:
        """Stop and close the stream, waiting at most :attr:`stop_deadline_s`: a frozen audio
        server can block ``Pa_StopStream`` for as long as it is frozen, and neither Ctrl-C nor a
        kiosk restart may wait for that. The stream is then left to a daemon thread."""
        stream, self._stream = self._stream, None
        self.finished.set()  # set first: a normal stop is not a device failure
        if stream is None:
            return
        open_streams[0] -= 1

        def release() -> None:
            try:
                stream.stop()  # type: ignore[attr-defined]
                stream.close()  # type: ignore[attr-defined]
            except Exception:  # already gone with its device; nothing left to release
                pass

        closer = threading.Thread(target=release, name="streamser-portaudio-stop", daemon=True)
        closer.start()
        closer.join(self.stop_deadline_s)
        if closer.is_alive():
            log.warning("input device %r did not stop within %.0f s (audio server frozen?); "
                        "going on without it", self.device.name, self.stop_deadline_s)


class _ThreadSource(Source):
    """A source read by its own named thread."""

    def __init__(self, realtime: bool, block_s: float = 0.032) -> None:
        super().__init__()
        self.realtime = realtime
        self._block_s = block_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, queue: BoundedQueue[RawBlock]) -> None:
        self._queue = queue
        self._thread = threading.Thread(target=self._guarded, name=f"streamser-{self.kind}",
                                        daemon=True)
        self._thread.start()

    kind = "reader"

    def stop(self) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5.0)
        self.finished.set()

    def _guarded(self) -> None:
        try:
            self._run()
        except AudioSourceError as exc:
            self._fail(exc)
            return
        self.finished.set()

    def _run(self) -> None:
        raise NotImplementedError

    def _deliver(self, block: RawBlock, t0: float) -> bool:
        """Queue one block, pacing or waiting as the mode says; False when asked to stop."""
        assert self._queue is not None
        if self.realtime:
            due = t0 + (block.start_frame + len(block.data)) / self.rate
            delay = due - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return False
            self._queue.put(RawBlock(block.start_frame, block.data, time.monotonic()))
            return not self._stop.is_set()
        block = RawBlock(block.start_frame, block.data, time.monotonic())
        while not self._stop.is_set():
            if self._queue.put_wait(block, timeout=0.2):
                return True
            if self._queue.closed:
                return False
        return False


class FileSource(_ThreadSource):
    """Any file soundfile can read (WAV, FLAC, OGG, ...), at any rate and channel count.

    ``realtime`` paces delivery to the audio clock (demo, live view); otherwise blocks are
    delivered as fast as the consumer takes them. ``loop`` restarts at the end (demo booth).
    """

    kind = "file"

    def __init__(self, path: str | Path, realtime: bool = True, loop: bool = False) -> None:
        super().__init__(realtime)
        import soundfile as sf

        self.path = Path(path)
        self.name = f"file: {self.path.name}"
        self.loop = loop
        if self.path.is_dir():
            raise AudioSourceError(
                f"{self.path} is a folder, not an audio file. Pass the files in it, e.g. "
                f"{self.path}/*.wav."
            )
        if not self.path.is_file():
            raise AudioSourceError(
                f"audio file {self.path} does not exist. Pass an existing WAV/FLAC/OGG file, "
                "'-' for raw 16-bit PCM on stdin, or 'mic'."
            )
        try:
            info = sf.info(str(self.path))
        except Exception as exc:
            raise AudioSourceError(
                f"cannot read {self.path} as audio ({str(exc).strip()[:160]}). Supported are "
                f"the formats libsndfile reads: {', '.join(sorted(sf.available_formats()))}."
            ) from None
        if info.frames == 0:
            raise AudioSourceError(f"{self.path} holds no audio (0 samples).")
        self.rate = int(info.samplerate)
        self.channels = int(info.channels)
        self.duration_s = info.frames / info.samplerate

    def _run(self) -> None:
        import soundfile as sf

        blocksize = max(1, round(self._block_s * self.rate))
        frame = 0
        t0 = time.monotonic()
        while not self._stop.is_set():
            try:
                with sf.SoundFile(str(self.path)) as f:
                    for data in f.blocks(blocksize=blocksize, dtype="float32",
                                         always_2d=True):
                        if not self._deliver(RawBlock(frame, data, 0.0), t0):
                            return
                        frame += len(data)
            except (RuntimeError, sf.LibsndfileError) as exc:
                raise AudioSourceError(f"{self.path}: audio data is corrupt after frame "
                                       f"{frame} ({exc}).") from None
            if not self.loop:
                return


class StdinSource(_ThreadSource):
    """Raw signed 16-bit little-endian PCM on stdin, ``channels`` interleaved at ``rate`` Hz.

    Paced by whoever writes to the pipe (e.g. ``arecord -f S16_LE -r 16000 -c 1``), so blocks
    wait for room instead of being dropped.
    """

    kind = "stdin"

    def __init__(self, rate: int = SAMPLE_RATE, channels: int = 1,
                 stream: BinaryIO | None = None) -> None:
        super().__init__(realtime=False)
        if rate < 1000 or rate > 384_000:
            raise AudioSourceError(f"--rate {rate} Hz is not plausible; use 8000 to 384000.")
        self.rate = rate
        self.channels = channels
        self.name = f"stdin: s16le {rate} Hz {channels} ch"
        self._stream = stream if stream is not None else sys.stdin.buffer

    def _run(self) -> None:
        frame_bytes = 2 * self.channels
        want = max(1, round(self._block_s * self.rate)) * frame_bytes
        pending = b""
        frame = 0
        t0 = time.monotonic()
        while not self._stop.is_set():
            chunk = self._stream.read1(want) if hasattr(self._stream, "read1") else \
                self._stream.read(want)
            if not chunk:
                return
            pending += chunk
            usable = len(pending) - len(pending) % frame_bytes
            if usable == 0:
                continue
            pcm = np.frombuffer(pending[:usable], dtype="<i2").reshape(-1, self.channels)
            pending = pending[usable:]
            data = (pcm.astype(np.float32) / 32768.0)
            block = RawBlock(frame, data, time.monotonic())
            frame += len(data)
            if not self._deliver(block, t0):
                return
