"""A tiny ONNX model that honours the streamser model contract, built with onnx.helper.

Test fixture only (never shipped): log-energy of the waveform -> linear -> softmax, plus a 2-D
L2-normalised embedding. Louder input shifts probability towards later labels, so tests can
check that different audio gives different frames.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LABELS = ["neutral", "happy", "sad", "angry"]


def build_tiny_model(
    path: Path,
    labels: list[str] | None = None,
    metadata: dict[str, str] | None = None,
    input_name: str = "waveform",
    probs_name: str = "probs",
    eps: float = 1e-8,
) -> Path:
    """Write the fixture model to ``path`` and return it; ``metadata`` overrides the defaults.

    ``eps=float("nan")`` makes a "damaged" model that parses but returns NaN for any input.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    labels = labels or LABELS
    n = len(labels)
    weights = np.linspace(-1.0, 1.0, n, dtype=np.float32).reshape(1, n)
    bias = np.linspace(0.5, -0.5, n, dtype=np.float32) * 4.0
    inits = [
        numpy_helper.from_array(weights, "w"),
        numpy_helper.from_array(bias, "b"),
        numpy_helper.from_array(np.array([eps], dtype=np.float32), "eps"),
        numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one"),
        numpy_helper.from_array(np.array([0.1], dtype=np.float32), "scale"),
    ]
    nodes = [
        helper.make_node("Mul", [input_name, input_name], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["ms"], axes=[1], keepdims=1),
        helper.make_node("Add", ["ms", "eps"], ["ms_eps"]),
        helper.make_node("Log", ["ms_eps"], ["loge"]),
        helper.make_node("Mul", ["loge", "scale"], ["feat"]),
        helper.make_node("MatMul", ["feat", "w"], ["lin"]),
        helper.make_node("Add", ["lin", "b"], ["logits"]),
        helper.make_node("Softmax", ["logits"], [probs_name], axis=1),
        helper.make_node("Mul", ["feat", "one"], ["f1"]),
        helper.make_node("Add", ["f1", "one"], ["f2"]),
        helper.make_node("Concat", ["feat", "f2"], ["emb_raw"], axis=1),
        helper.make_node("LpNormalization", ["emb_raw"], ["embedding"], axis=1, p=2),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", "samples"])],
        [
            helper.make_tensor_value_info(probs_name, TensorProto.FLOAT, ["batch", n]),
            helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", 2]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    meta = {
        "labels": json.dumps(labels),
        "sample_rate": "16000",
        "window_s": "1.0",
        "hop_s": "0.25",
        "model_version": "tiny-test-0",
    }
    meta.update(metadata or {})
    for key, value in meta.items():
        if value is not None:
            entry = model.metadata_props.add()
            entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())
    return path
