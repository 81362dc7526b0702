"""Export a trained :class:`~streamser.training.nets.SERModel` to a contract ONNX file.

The graph is ``waveform [batch, samples] -> probs [batch, n_labels], embedding [batch, D]``:
front end (Conv1d DFT log-mel, level-normalised), backbone, head, ``softmax(logits / T)`` with the
temperature ``T`` fitted on validation folds baked in. Batch and samples are dynamic. Metadata
follows :mod:`streamser.contract`; it is checked with :func:`streamser.contract.parse_metadata`
after writing, so a file this function returns always loads.

Command line (a candidate for the robustness table, not the shipped file — that is
:mod:`streamser.training.ship`'s job)::

    python -m streamser.training.export runs/final2-v9b-s600/model.pt runs/onnx/v9b-final.onnx \
        --temperature 1.75
"""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import torch
from torch import nn

from streamser.contract import (
    BAND_MEAN_OUTPUT,
    EMBEDDING_OUTPUT,
    INPUT_NAME,
    PROBS_OUTPUT,
    REFERENCE_INPUT,
    REFERENCE_KEY,
    REFERENCE_WEIGHT_INPUT,
    parse_metadata,
)
from streamser.training.nets import SERModel, reference_forward

__all__ = [
    "ExportWrapper", "ReferenceExportWrapper", "export_checkpoint", "export_model",
]

log = logging.getLogger(__name__)
OPSET = 17


class ExportWrapper(nn.Module):
    """``waveform -> (probs, embedding)`` with the temperature applied before the softmax."""

    def __init__(self, model: SERModel, temperature: float = 1.0) -> None:
        super().__init__()
        self.model = model
        self.inv_t = float(1.0 / temperature)

    def forward(self, waveform: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, emb = self.model(waveform)
        return torch.softmax(logits * self.inv_t, dim=1), emb


class ReferenceExportWrapper(ExportWrapper):
    """``(waveform, reference, reference_weight) -> (probs, embedding, band_mean)``: a model
    trained speaker-relative (``TrainConfig.reference_p > 0``)."""

    def forward(  # type: ignore[override]
        self, waveform: torch.Tensor, reference: torch.Tensor, reference_weight: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, emb, band_mean = reference_forward(self.model, waveform, reference,
                                                   reference_weight)
        return torch.softmax(logits * self.inv_t, dim=1), emb, band_mean


def _default_reference_inputs(proto: object, n_mels: int) -> None:
    """Give ``reference`` and ``reference_weight`` zero defaults (initializers of the same
    name), so a caller that feeds only ``waveform`` gets the plain band front end."""
    from onnx import numpy_helper

    graph = proto.graph  # type: ignore[attr-defined]
    graph.initializer.extend([
        numpy_helper.from_array(np.zeros((1, n_mels), np.float32), REFERENCE_INPUT),
        numpy_helper.from_array(np.zeros(1, np.float32), REFERENCE_WEIGHT_INPUT),
    ])


def export_model(
    model: SERModel,
    path: Path | str,
    labels: tuple[str, ...],
    metadata: Mapping[str, str],
    temperature: float = 1.0,
    window_samples: int = 32_000,
    reference: bool = False,
) -> Path:
    """Write ``model`` to ``path`` as ONNX (opset 17, dynamic batch and samples) with metadata.

    ``metadata`` must hold the contract keys except ``labels`` (added here from ``labels``).
    With ``reference`` (a speaker-relative model) the graph also takes the optional inputs
    ``reference`` [1 or batch, n_mels] and ``reference_weight`` [1 or batch] (both default to
    zeros) and returns ``band_mean`` [batch, n_mels]; metadata ``speaker_reference`` says so.
    """
    import onnx

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    n_mels = model.frontend.cfg.n_mels
    wrapper = (ReferenceExportWrapper if reference else ExportWrapper)(model.eval(),
                                                                      temperature).eval()
    example = torch.zeros(2, window_samples)
    example[:, ::97] = 0.01  # any non-silent input
    args: tuple[torch.Tensor, ...] = (example,)
    inputs, outputs = [INPUT_NAME], [PROBS_OUTPUT, EMBEDDING_OUTPUT]
    axes: dict[str, dict[int, str]] = {INPUT_NAME: {0: "batch", 1: "samples"},
                                       PROBS_OUTPUT: {0: "batch"}, EMBEDDING_OUTPUT: {0: "batch"}}
    if reference:
        args = (example, torch.zeros(1, n_mels), torch.zeros(1))
        inputs += [REFERENCE_INPUT, REFERENCE_WEIGHT_INPUT]
        outputs.append(BAND_MEAN_OUTPUT)
        axes.update({REFERENCE_INPUT: {0: "ref_batch"}, REFERENCE_WEIGHT_INPUT: {0: "ref_batch"},
                     BAND_MEAN_OUTPUT: {0: "batch"}})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter deprecation chatter, not our warnings
        torch.onnx.export(
            wrapper,
            args,
            str(out),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    proto = onnx.load(str(out))
    meta = {**metadata, "labels": json.dumps(list(labels))}
    if reference:
        _default_reference_inputs(proto, n_mels)
        meta[REFERENCE_KEY] = BAND_MEAN_OUTPUT
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(proto)
    onnx.save(proto, str(out))
    parse_metadata(meta, str(out))
    return out


def export_checkpoint(
    checkpoint: Path | str,
    output: Path | str,
    version: str | None = None,
    temperature: float | None = None,
    temperature_from: Path | str | None = None,
    hop_s: float = 0.5,
    extra: Mapping[str, str] | None = None,
) -> Path:
    """Export a ``model.pt`` written by :func:`streamser.training.train.train`.

    The temperature is ``temperature``, else ``temperature_all_folds`` of the CV results JSON
    ``temperature_from``, else 1. ``extra`` adds metadata (training_data, metrics, license...).
    """
    from streamser.training.train import TrainConfig, load_checkpoint

    model, state = load_checkpoint(checkpoint)
    cfg = TrainConfig.from_json(state["config"])
    if temperature is None and temperature_from is not None:
        temperature = float(json.loads(Path(temperature_from).read_text())["temperature_all_folds"])
    t = 1.0 if temperature is None else temperature
    meta = {
        "sample_rate": "16000",
        "window_s": f"{cfg.window_s}",
        "hop_s": f"{hop_s}",
        "model_version": version or Path(output).stem,
        "temperature": f"{t:.4f}",
        "architecture": f"{cfg.model.arch} width={cfg.model.width} emb={cfg.model.emb_dim}",
        "license": "CC BY-NC-SA 4.0 (weights trained on RAVDESS CC BY-NC-SA 4.0 and "
                   "TESS CC BY-NC-ND 4.0); code MIT",
        **(extra or {}),
    }
    path = export_model(model, output, tuple(state["labels"]), meta, t, cfg.window,
                        reference=cfg.reference_p > 0)
    log.info("exported %s (%.2f MB, T=%.3f)", path, path.stat().st_size / 1e6, t)
    return path


def onnx_predict(
    path: Path | str, waveforms: np.ndarray, threads: int = 1
) -> tuple[np.ndarray, ...]:
    """Run an exported file with onnxruntime: ``(probs, embedding)`` for ``[batch, samples]``."""
    from streamser.training.evaluate import onnx_session

    sess = onnx_session(path, threads)
    return tuple(sess.run(None, {INPUT_NAME: waveforms.astype(np.float32)}))


def main(argv: list[str] | None = None) -> int:
    """Export one checkpoint to an ONNX file; prints its path."""
    ap = argparse.ArgumentParser(prog="python -m streamser.training.export")
    ap.add_argument("checkpoint", help="a model.pt written by training")
    ap.add_argument("output", help="the ONNX file to write")
    ap.add_argument("--temperature", type=float, default=None, help="default 1")
    ap.add_argument("--version", default=None, help="model_version (default: the file's stem)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    print(export_checkpoint(args.checkpoint, args.output, args.version, args.temperature))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
