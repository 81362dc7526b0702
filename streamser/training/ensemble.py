"""Several exported models as one contract ONNX file: the mean of their logits.

Each member is a finished contract file (``waveform -> probs, embedding`` and, for a
speaker-relative model, ``reference`` / ``reference_weight -> band_mean``). The merged graph
feeds every member the same inputs and returns

- ``probs = softmax(mean_i(z_i) / T)``, where ``z_i`` is member *i*'s raw logits (the input of
  its final ``Softmax`` times its own ``temperature``, so its calibration does not weight it)
  and ``T`` the ensemble's temperature, fitted on the ensemble's leave-one-corpus-out logits
  (:mod:`streamser.training.ensemble_eval` averages the same raw logits);
- ``embedding``: the members' embeddings side by side (``[batch, sum of D_i]``);
- ``band_mean``: the first member's (every member must compute the same one: same mel bands).

Members must agree on the contract (sample rate, window, hop, labels, speaker reference);
otherwise :class:`ValueError` says which key differs. Each member keeps its own front end, so
members may differ in what they do after the mel power (e.g. the log-mel floor).

    python -m streamser.training.ensemble models/a.onnx runs/onnx/b.onnx -o runs/onnx/ab.onnx \
        --version facenet-s-ens-test

The metadata is the first member's, with ``model_version``, ``temperature``, ``architecture``
and ``ensemble`` (the members' versions and temperatures) replaced; keys that describe one
member's head or fit (``speaker_norm``, ``uncertain_below``, ``metrics``, ``recipe``) are
dropped unless given again in ``extra``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

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

#: Metadata every member must share: the contract the merged file keeps.
SHARED_KEYS: tuple[str, ...] = ("sample_rate", "window_s", "hop_s", "labels", REFERENCE_KEY)
#: Metadata that describes one member's head or fit, meaningless for the ensemble.
MEMBER_ONLY_KEYS: tuple[str, ...] = ("speaker_norm", "uncertain_below", "metrics", "recipe")


def _meta(model: object) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}  # type: ignore[attr-defined]


def merge_onnx(
    members: Sequence[Path | str],
    output: Path | str,
    version: str,
    temperature: float = 1.0,
    extra: Mapping[str, str] | None = None,
) -> Path:
    """Write the ensemble of ``members`` (two or more contract files) to ``output``."""
    import onnx
    from onnx import compose, helper, numpy_helper

    if len(members) < 2:
        raise ValueError(f"an ensemble needs two or more members, got {len(members)}")
    protos = [onnx.load(str(m)) for m in members]
    metas = [_meta(p) for p in protos]
    for key in SHARED_KEYS:
        values = {m.get(key) for m in metas}
        if len(values) > 1:
            raise ValueError(f"ensemble members differ in metadata {key!r}: "
                             + ", ".join(f"{Path(p).name}={m.get(key)!r}"
                                         for p, m in zip(members, metas, strict=True))
                             + "; members must share the contract")
    opsets = {tuple((o.domain, o.version) for o in p.opset_import) for p in protos}
    if len(opsets) > 1:
        raise ValueError(f"ensemble members use different opsets: {sorted(opsets)}")
    with_reference = REFERENCE_KEY in metas[0]
    inputs = [INPUT_NAME] + ([REFERENCE_INPUT, REFERENCE_WEIGHT_INPUT] if with_reference else [])

    nodes, initializers, value_infos = [], [], []
    logits: list[str] = []
    embeddings: list[str] = []
    defaults: dict[str, onnx.TensorProto] = {}  # zero defaults of the optional inputs, once
    for i, proto in enumerate(protos):
        pre = f"m{i}_"
        g = compose.add_prefix(proto, pre).graph
        for name in inputs:
            nodes.append(helper.make_node("Identity", [name], [pre + name],
                                          name=f"{pre}input_{name}"))
        softmax = next(n for n in g.node if pre + PROBS_OUTPUT in n.output)
        nodes.extend(n for n in g.node if n is not softmax)
        t_i = np.array(float(metas[i].get("temperature", "1")), np.float32)
        initializers.append(numpy_helper.from_array(t_i, pre + "ens_t"))
        nodes.append(helper.make_node("Mul", [softmax.input[0], pre + "ens_t"],
                                      [pre + "ens_logits"], name=pre + "ens_unscale"))
        logits.append(pre + "ens_logits")
        embeddings.append(pre + EMBEDDING_OUTPUT)
        for init in g.initializer:
            plain = init.name[len(pre):]
            if plain in inputs:
                defaults.setdefault(plain, numpy_helper.from_array(numpy_helper.to_array(init),
                                                                   plain))
            else:
                initializers.append(init)
        value_infos.extend(g.value_info)

    inv_t = numpy_helper.from_array(np.array(1.0 / temperature, np.float32), "ens_inv_t")
    nodes += [
        helper.make_node("Mean", logits, ["ens_mean_logits"], name="ens_mean"),
        helper.make_node("Mul", ["ens_mean_logits", "ens_inv_t"], ["ens_logits"], name="ens_temp"),
        helper.make_node("Softmax", ["ens_logits"], [PROBS_OUTPUT], axis=1, name="ens_softmax"),
        helper.make_node("Concat", embeddings, [EMBEDDING_OUTPUT], axis=1, name="ens_concat"),
    ]
    outputs = [PROBS_OUTPUT, EMBEDDING_OUTPUT]
    if with_reference:
        nodes.append(helper.make_node("Identity", [f"m0_{BAND_MEAN_OUTPUT}"],
                                      [BAND_MEAN_OUTPUT], name="ens_band_mean"))
        outputs.append(BAND_MEAN_OUTPUT)
    first = protos[0].graph
    out_infos = []
    for name in outputs:
        info = onnx.ValueInfoProto()
        info.CopyFrom(next(x for x in first.output if x.name == name))
        if name == EMBEDDING_OUTPUT:
            info.type.tensor_type.shape.dim[1].Clear()
            info.type.tensor_type.shape.dim[1].dim_param = "embedding_dim"
        out_infos.append(info)
    in_infos = [next(x for x in first.input if x.name == name) for name in inputs]
    initializers += [inv_t, *defaults.values()]
    graph = helper.make_graph(nodes, "streamser_ensemble", in_infos, out_infos,
                              initializer=initializers, value_info=value_infos)
    merged = helper.make_model(graph, opset_imports=list(protos[0].opset_import),
                               ir_version=protos[0].ir_version)

    meta = {k: v for k, v in metas[0].items() if k not in MEMBER_ONLY_KEYS}
    meta.update({
        "model_version": version,
        "temperature": f"{temperature:.4f}",
        "architecture": "ensemble (mean of logits): "
                        + " + ".join(m.get("architecture", "?") for m in metas),
        "ensemble": json.dumps([{"model_version": m.get("model_version"),
                                 "temperature": m.get("temperature")} for m in metas]),
        **(extra or {}),
    })
    for key, value in meta.items():
        entry = merged.metadata_props.add()
        entry.key, entry.value = key, str(value)
    onnx.checker.check_model(merged)
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(merged, str(out))
    parse_metadata(meta, str(out))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: merge the members; prints the output path."""
    ap = argparse.ArgumentParser(prog="python -m streamser.training.ensemble",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("members", nargs="+", help="two or more contract ONNX files")
    ap.add_argument("-o", "--output", required=True, help="the ONNX file to write")
    ap.add_argument("--version", required=True, help="model_version of the ensemble")
    ap.add_argument("--temperature", type=float, default=1.0,
                    help="the ensemble's temperature over the mean of the members' raw logits")
    args = ap.parse_args(argv)
    print(merge_onnx(args.members, args.output, args.version, args.temperature))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
