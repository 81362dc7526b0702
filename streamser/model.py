"""Run a streamser ONNX model with onnxruntime, after checking it honours the model contract.

:class:`ModelRunner` owns one inference session. It is created on the main thread and then used
by exactly one thread at a time (the inference worker); onnxruntime sessions are thread-safe for
``run`` but we never rely on that.

Provider choice: CUDA when onnxruntime-gpu is installed and a GPU answers, CPU otherwise; the
choice is logged once.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from streamser.core.contract import (
    BAND_MEAN_OUTPUT,
    EMBEDDING_OUTPUT,
    INPUT_NAME,
    PROBS_OUTPUT,
    REFERENCE_INPUT,
    REFERENCE_KEY,
    REFERENCE_WEIGHT_INPUT,
    ModelSpec,
    Prediction,
    parse_metadata,
)
from streamser.errors import ModelContractError
from streamser.resources import default_model_path

__all__ = ["ModelRunner", "Prediction", "default_model_path"]

log = logging.getLogger(__name__)

class ModelRunner:
    """An onnxruntime session plus the :class:`ModelSpec` it declares.

    Build it with :meth:`load`; call :meth:`predict` from the inference thread.
    """

    def __init__(self, session: object, spec: ModelSpec, path: Path, provider: str) -> None:
        self._session = session
        self.spec = spec
        self.path = path
        self.provider = provider
        self._outputs = [PROBS_OUTPUT]
        names = {o.name for o in session.get_outputs()}  # type: ignore[attr-defined]
        if EMBEDDING_OUTPUT in names:
            self._outputs.append(EMBEDDING_OUTPUT)
        if spec.speaker_reference:
            self._outputs.append(BAND_MEAN_OUTPUT)

    @classmethod
    def load(cls, path: str | Path, threads: int = 1, use_gpu: bool = True) -> ModelRunner:
        """Open ``path``, check the contract, and return a runner.

        ``threads`` sets onnxruntime's intra-op thread count (1 keeps a core free for capture
        and the GUI). Raises :class:`ModelContractError` for a missing, corrupt or
        non-conforming file.
        """
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise ModelContractError(
                f"model file {path} does not exist. Pass --model with the path of a streamser "
                ".onnx file (the shipped one is in models/)."
            )
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        available = ort.get_available_providers()
        providers = ["CPUExecutionProvider"]
        if use_gpu and "CUDAExecutionProvider" in available:
            providers.insert(0, "CUDAExecutionProvider")
        try:
            session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises several unrelated types for bad files
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelContractError(
                f"{path} is not a loadable ONNX model ({first[:200]}). Use a file written by "
                "'streamser export', or re-download/re-train the model."
            ) from None
        spec = parse_metadata(session.get_modelmeta().custom_metadata_map, source=str(path))
        cls._check_graph(session, spec, path)
        provider = session.get_providers()[0]
        log.info("model %s (%s) on %s", path.name, spec.model_version, provider)
        runner = cls(session, spec, path, provider)
        runner._self_test()
        return runner

    def _self_test(self) -> None:
        """Run one window of quiet noise: a damaged file that still parses fails here, at load,
        with a :class:`ModelContractError` instead of NaN frames later."""
        probe = np.random.default_rng(0).normal(0.0, 0.01, (1, self.spec.window_samples))
        try:
            self.predict(probe.astype(np.float32))
        except ModelContractError:
            raise
        except Exception as exc:  # onnxruntime raises several unrelated types
            raise ModelContractError(
                f"{self.path}: the model fails on a {self.spec.window_s:g} s test window "
                f"({str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc!r}). "
                "Use a file written by 'streamser export'."
            ) from None

    @staticmethod
    def _check_graph(session: object, spec: ModelSpec, path: Path) -> None:
        inputs = session.get_inputs()  # type: ignore[attr-defined]
        outputs = {o.name: o for o in session.get_outputs()}  # type: ignore[attr-defined]
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME:
            got = [(i.name, i.shape) for i in inputs]
            raise ModelContractError(
                f"{path}: inputs are {got}; a streamser model takes exactly one input "
                f"'{INPUT_NAME}' float32 [batch, samples]."
            )
        waveform = inputs[0]
        if waveform.type != "tensor(float)" or len(waveform.shape) != 2:
            raise ModelContractError(
                f"{path}: input '{INPUT_NAME}' is {waveform.type} {waveform.shape}; it must be "
                "tensor(float) with shape [batch, samples]."
            )
        if PROBS_OUTPUT not in outputs:
            raise ModelContractError(
                f"{path}: outputs are {sorted(outputs)}; '{PROBS_OUTPUT}' [batch, n_labels] "
                "is required."
            )
        if spec.speaker_reference:
            optional = {i.name for i in session.get_overridable_initializers()}  # type: ignore[attr-defined]
            lacking = [n for n in (REFERENCE_INPUT, REFERENCE_WEIGHT_INPUT) if n not in optional]
            lacking += [n for n in (EMBEDDING_OUTPUT, BAND_MEAN_OUTPUT) if n not in outputs]
            if lacking:
                raise ModelContractError(
                    f"{path}: metadata says '{REFERENCE_KEY}' but the graph lacks {lacking}"
                    f"; a speaker-relative model has optional inputs '{REFERENCE_INPUT}' and "
                    f"'{REFERENCE_WEIGHT_INPUT}' and outputs '{EMBEDDING_OUTPUT}' and "
                    f"'{BAND_MEAN_OUTPUT}'. Re-export it with 'streamser export'."
                )
        n = outputs[PROBS_OUTPUT].shape[-1]
        if isinstance(n, int) and n != len(spec.labels):
            raise ModelContractError(
                f"{path}: '{PROBS_OUTPUT}' has {n} columns but metadata lists "
                f"{len(spec.labels)} labels {list(spec.labels)}; they must match."
            )

    def predict(self, waveforms: np.ndarray, reference: np.ndarray | None = None) -> Prediction:
        """Classify a batch of 16 kHz windows: ``waveforms`` float32 [batch, samples].

        ``reference`` is a voice's mean ``band_mean`` [n_mels] (a speaker-relative model only;
        ignored by others): the windows are then scored relative to that voice. Called on the
        inference thread. Raises ValueError for a wrongly shaped array (a bug).
        """
        if waveforms.ndim != 2:
            raise ValueError(f"waveforms must be [batch, samples], got shape {waveforms.shape}")
        batch = np.ascontiguousarray(waveforms, dtype=np.float32)
        feed = {INPUT_NAME: batch}
        if reference is not None and self.spec.speaker_reference:
            feed[REFERENCE_INPUT] = np.asarray(reference, dtype=np.float32).reshape(1, -1)
            feed[REFERENCE_WEIGHT_INPUT] = np.ones(1, dtype=np.float32)
        result = self._session.run(self._outputs, feed)  # type: ignore[attr-defined]
        probs = np.asarray(result[0], dtype=np.float32)
        if probs.shape != (len(batch), len(self.spec.labels)):
            raise ModelContractError(
                f"{self.path}: '{PROBS_OUTPUT}' came back with shape {probs.shape}; expected "
                f"({len(batch)}, {len(self.spec.labels)})."
            )
        embedding = np.asarray(result[1], dtype=np.float32) if len(result) > 1 else None
        if not np.isfinite(probs).all() or (embedding is not None
                                            and not np.isfinite(embedding).all()):
            raise ModelContractError(
                f"{self.path}: the model returned non-finite values (NaN or infinity) for finite "
                f"input in [{float(batch.min()):.3g}, {float(batch.max()):.3g}]; a streamser "
                "model must return probabilities. The file is probably damaged: re-download or "
                "re-export it."
            )
        band_mean = (np.asarray(result[2], dtype=np.float32) if self.spec.speaker_reference
                     else None)
        return Prediction(probs, embedding, band_mean)
