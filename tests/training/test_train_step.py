"""Training pipeline: a real training step, ONNX export parity, level invariance, CLI wiring."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from streamser.contract import parse_metadata  # noqa: E402
from streamser.training.augment import AugmentConfig, augment_waveforms, spec_augment  # noqa: E402
from streamser.training.corpora import Utterance  # noqa: E402
from streamser.training.data import ClipSet, engine_windows  # noqa: E402
from streamser.training.export import export_model, onnx_predict  # noqa: E402
from streamser.training.frontend import FrontEndConfig, LogMel  # noqa: E402
from streamser.training.losses import siamese_distance_loss, triplet_semihard_loss  # noqa: E402
from streamser.training.nets import ModelConfig, SERModel  # noqa: E402
from streamser.training.train import TrainConfig, load_checkpoint, predict_clips, train  # noqa: E402

SR = 16_000
LABELS = ("neutral", "happy", "sad")
TINY = ModelConfig(width=0.125, blocks=(1, 1, 1), emb_dim=16)


def _tone(freq: float, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
    return (wave + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _clipset(n_per_class: int = 4) -> ClipSet:
    utts, audio = [], []
    for k, label in enumerate(LABELS):
        for i in range(n_per_class):
            from pathlib import Path

            utts.append(Utterance(Path(f"/synthetic/{label}{i}.wav"), label, f"syn:{i}", "syn"))
            audio.append(_tone(200.0 * (k + 1), 1.5 + 0.5 * i, seed=10 * k + i))
    return ClipSet.build(utts, audio, LABELS)


def _at_dbfs(x: np.ndarray, dbfs: float) -> np.ndarray:
    rms = np.sqrt(np.mean(x.astype(np.float64) ** 2))
    return (x * (10 ** (dbfs / 20) / rms)).astype(np.float32)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny model trained for 2 epochs of 2 steps on synthetic tones."""
    out = tmp_path_factory.mktemp("run")
    cfg = TrainConfig(model=TINY, epochs=2, steps_per_epoch=2, batch_size=8, threads=1)
    path = train(cfg, _clipset(), out, progress=False)
    return path, cfg


def test_training_step_updates_weights_and_loss_is_finite():
    """One optimiser step on augmented crops changes the weights and gives finite losses."""
    torch.manual_seed(0)
    model = SERModel(len(LABELS), TINY)
    data = _clipset()
    rng = np.random.default_rng(0)
    g = torch.Generator().manual_seed(0)
    x, y, _ = data.sample_batch(8, 32_000, rng, data.sampling_weights(), (0.9, 1.1), 1.0)
    aug = AugmentConfig()
    xb = augment_waveforms(torch.from_numpy(x), aug, g, torch.from_numpy(x))
    feats = spec_augment(model.frontend(xb), aug, g)
    logits, emb = model.forward_features(feats)
    loss = torch.nn.functional.cross_entropy(logits, torch.from_numpy(y))
    loss = loss + triplet_semihard_loss(emb, torch.from_numpy(y))
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    loss.backward()
    opt.step()
    assert torch.isfinite(loss)
    assert xb.abs().max() <= 1.0
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_train_writes_checkpoint_and_resumes(trained, tmp_path):
    """``train`` writes model.pt with history; a rerun with the same config reuses it."""
    path, cfg = trained
    _model, state = load_checkpoint(path)
    assert state["labels"] == list(LABELS)
    assert len(state["history"]) == 2
    assert train(cfg, _clipset(), path.parent, progress=False) == path


def test_metric_losses():
    """Separated classes give zero triplet loss; mixed-up classes a positive one."""
    y = torch.tensor([0, 0, 1, 1])
    good = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [1, 0.01], [0, 1], [0.01, 1]]))
    bad = good[[0, 2, 1, 3]]
    assert float(triplet_semihard_loss(good, y)) == 0.0
    assert float(triplet_semihard_loss(bad, y)) > 0.0
    assert float(siamese_distance_loss(bad, y)) > float(siamese_distance_loss(good, y))


def test_frontend_matches_torch_stft():
    """The Conv1d-DFT mel power equals torch.stft's (no centre padding, same window)."""
    cfg = FrontEndConfig()
    fe = LogMel(cfg)
    x = torch.from_numpy(_tone(440.0, 1.0, 0)).unsqueeze(0)
    window = torch.from_numpy(np.hanning(cfg.win_length + 1)[:-1].astype(np.float32))
    spec = torch.stft(x, cfg.n_fft, cfg.hop_length, cfg.win_length, window, center=False,
                      return_complex=True)
    ref = torch.log(torch.matmul(fe.melfb, spec.abs() ** 2) + 1e-12)
    ours = torch.log(fe.power_mel(x) + 1e-12)
    assert ours.shape == ref.shape
    assert torch.allclose(ours, ref, atol=1e-3)


def test_level_invariance_in_graph():
    """The same clip at -35 and -15 dBFS gives (nearly) the same probabilities."""
    torch.manual_seed(0)
    model = SERModel(len(LABELS), TINY).eval()
    clip = _tone(300.0, 2.0, 1)
    with torch.no_grad():
        quiet, _ = model(torch.from_numpy(_at_dbfs(clip, -35)[None]))
        loud, _ = model(torch.from_numpy(_at_dbfs(clip, -15)[None]))
    p_q, p_l = torch.softmax(quiet, 1), torch.softmax(loud, 1)
    assert float((p_q - p_l).abs().max()) < 1e-3


def test_export_parity_dynamic_batch_and_length(trained, tmp_path):
    """ONNX probs/embedding match torch within 1e-4 for several batch sizes and lengths."""
    path, _cfg = trained
    model, _state = load_checkpoint(path)
    meta = {"sample_rate": "16000", "window_s": "2.0", "hop_s": "0.5", "model_version": "tiny-0"}
    onnx_path = export_model(model, tmp_path / "tiny.onnx", LABELS, meta, temperature=1.5)
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    spec = parse_metadata(sess.get_modelmeta().custom_metadata_map)
    assert spec.labels == LABELS
    assert [i.name for i in sess.get_inputs()] == ["waveform"]
    assert [o.name for o in sess.get_outputs()] == ["probs", "embedding"]
    rng = np.random.default_rng(3)
    for batch, samples in ((1, 32_000), (3, 32_000), (2, 24_000), (1, 40_000)):
        x = (0.1 * rng.standard_normal((batch, samples))).astype(np.float32)
        probs, emb = onnx_predict(onnx_path, x)
        with torch.no_grad():
            logits, ref_emb = model(torch.from_numpy(x))
        ref = torch.softmax(logits / 1.5, 1).numpy()
        assert probs.shape == (batch, len(LABELS))
        assert np.abs(probs - ref).max() <= 1e-4
        assert np.abs(emb - ref_emb.numpy()).max() <= 1e-4
        assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)
    quiet = _at_dbfs(_tone(250.0, 2.0, 5), -35)[None]
    loud = _at_dbfs(_tone(250.0, 2.0, 5), -15)[None]
    assert np.abs(onnx_predict(onnx_path, quiet)[0] - onnx_predict(onnx_path, loud)[0]).max() < 1e-3


def test_engine_windows_and_predict(trained):
    """Windows end every hop, are left-padded, and each clip gets one probability row."""
    clip = _tone(300.0, 1.2, 2)
    wins = engine_windows(clip, 32_000, 8_000, min_voiced=0.0)
    assert wins.shape == (2, 32_000)  # ends at 0.5 s and 1.0 s
    assert np.array_equal(wins[1][-16_000:], clip[:16_000])
    assert not wins[1][:16_000].any()
    short = engine_windows(clip[:4000], 32_000, 8_000)
    assert short.shape == (1, 32_000)
    path, cfg = trained
    model, _ = load_checkpoint(path)
    scores = predict_clips(model, [clip, clip[:4000]], LABELS, cfg.window, cfg.hop)
    probs = scores.probs()
    assert probs.shape == (2, len(LABELS))
    assert np.allclose(probs.sum(1), 1.0, atol=1e-5)


def test_commands_register_without_torch_import():
    """The CLI module registers train/evaluate/export and does not import torch."""
    code = ("import sys, streamser.training.commands as c; "
            "print(json.dumps('torch' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", "import json; " + code], capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout) is False
    from streamser.training.commands import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    for cmd in ("train", "evaluate", "export"):
        assert callable(parser.parse_args([cmd, "x", "y"] if cmd == "export" else
                                          [cmd, "m"] if cmd == "evaluate" else [cmd]).handler)


def test_distillation_pulls_the_trunk_toward_the_teacher(tmp_path, monkeypatch):
    """With rendered teacher embeddings, training lowers the distillation loss, the head is
    not part of the exported graph's inputs/outputs, and a run without tables says what to do."""
    from streamser.training import teacher as teacher_mod

    monkeypatch.setenv("STREAMSER_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(teacher_mod, "default_corpora_root", lambda: None)
    data = _clipset()
    rng = np.random.default_rng(1)
    # One random direction per class: a teacher whose embedding is learnable from the audio.
    dirs = rng.standard_normal((len(LABELS), teacher_mod.TEACHER_DIM)).astype(np.float32)
    emb = dirs[data.y] + 0.05 * rng.standard_normal((len(data), teacher_mod.TEACHER_DIM))
    keys = [str(u.path) for u in data.utterances]
    teacher_mod.TeacherTable(keys, emb.astype(np.float32)).save("syn")
    model_cfg = ModelConfig(width=0.125, blocks=(1, 1, 1), emb_dim=16, distil_dim=256)
    cfg = TrainConfig(model=model_cfg, epochs=3, steps_per_epoch=4, batch_size=8, threads=1,
                      distil_weight=1.0, augment=AugmentConfig.off(), lr=3e-3)
    path = train(cfg, data, tmp_path / "run", progress=False)
    model, state = load_checkpoint(path)
    hist = [h["distil"] for h in state["history"]]
    assert hist[-1] < hist[0], hist
    logits, _emb = model(torch.from_numpy(np.stack([data.audio[0][:32_000]])))
    assert logits.shape == (1, len(LABELS))
    (tmp_path / "cache" / "teacher" / "resemblyzer-syn.npz").unlink()
    with pytest.raises(RuntimeError, match="teacher render"):
        train(cfg, data, tmp_path / "run2", progress=False)


def test_reference_front_end_removes_the_voice_colour_and_keeps_the_departure():
    """With the speaker's reference subtracted (w = 1), a fixed colour shared by reference and
    window disappears as with the window's own mean, while a window that departs from the
    voice's usual spectrum keeps that departure (which w = 0 would erase)."""
    from streamser.training.channel import spectral_tilt

    fe = LogMel(FrontEndConfig(norm="band", top_db=60.0))
    voice = torch.from_numpy(_tone(300.0, 2.0, 3))[None]
    tilted = spectral_tilt(voice, torch.tensor([12.0]))
    ref_plain = fe.band_mean(voice)
    ref_tilted = fe.band_mean(tilted)
    one = torch.ones(1)
    # The same chain on window and reference: the tilt cancels (to the frame-mask rounding
    # the plain band front end also has).
    same = fe(tilted, ref_tilted, one) - fe(voice, ref_plain, one)
    assert float(same.abs().mean()) < 0.05
    # A window tilted against its voice's reference keeps the tilt with w = 1 ...
    kept = fe(tilted, ref_plain, one) - fe(voice, ref_plain, one)
    assert float(kept.abs().mean()) > 0.3
    # ... and loses it with w = 0 (the plain band front end), as before.
    lost = fe(tilted, ref_plain, torch.zeros(1)) - fe(voice)
    assert float(lost.abs().mean()) < 0.05


def test_reference_indices_stay_within_the_speaker():
    data = _clipset()
    rng = np.random.default_rng(0)
    idx = np.arange(len(data))
    refs = data.reference_indices(idx, 3, rng, p_neutral=0.5)
    assert refs.shape == (len(data), 3)
    speakers = np.array([u.speaker for u in data.utterances])
    assert (speakers[refs] == speakers[idx][:, None]).all()
    assert (refs != idx[:, None]).all()  # every synthetic speaker has other clips


def test_speaker_relative_training_runs_and_resumes(tmp_path):
    """A real speaker-relative run (references through the channel augmentation) trains,
    and an older recipe's JSON (no reference fields) still matches its own config."""
    from streamser.training.channel import ChannelConfig

    cfg = TrainConfig(model=TINY, epochs=1, steps_per_epoch=2, batch_size=6, threads=1,
                      channel=ChannelConfig(), reference_p=0.7)
    path = train(cfg, _clipset(), tmp_path, progress=False)
    _model, state = load_checkpoint(path)
    assert state["config"]["reference_p"] == 0.7
    assert np.isfinite(state["history"][-1]["ce"])
    assert "reference_p" not in TrainConfig(model=TINY).to_json()


def test_speaker_relative_export_parity_and_optional_reference(tmp_path):
    """A speaker-relative model exports with optional ``reference`` inputs: fed only the
    waveform it is the plain band model; fed a reference, it matches torch's reference path;
    its ``band_mean`` output is the front end's; the runtime loader accepts and uses it."""
    from streamser.model import ModelRunner
    from streamser.training.nets import reference_forward

    torch.manual_seed(0)
    model = SERModel(len(LABELS), TINY, FrontEndConfig(norm="band", top_db=60.0)).eval()
    head = {"head_weight": model.head.weight.detach().numpy().tolist(),
            "head_bias": model.head.bias.detach().numpy().tolist(), "scale": TINY.scale,
            "ref_mean": [0.0] * TINY.emb_dim}
    meta = {"sample_rate": "16000", "window_s": "2.0", "hop_s": "0.5", "model_version": "ref-0",
            "temperature": "1", "speaker_norm": json.dumps(head)}
    onnx_path = export_model(model, tmp_path / "ref.onnx", LABELS, meta, reference=True)
    runner = ModelRunner.load(onnx_path, use_gpu=False)
    assert runner.spec.speaker_reference
    x = np.stack([_tone(220.0, 2.0, 7), _tone(330.0, 2.0, 8)])
    voice = torch.from_numpy(np.stack([_tone(250.0, 2.0, 9)]))
    with torch.no_grad():
        own_logits, _ = model(torch.from_numpy(x))
        reference = model.frontend.band_mean(voice)[0]
        ref_logits, _, band_mean = reference_forward(model, torch.from_numpy(x),
                                                     reference[None], torch.ones(1))
    plain = runner.predict(x)
    assert np.abs(plain.probs - torch.softmax(own_logits, 1).numpy()).max() <= 1e-4
    assert plain.band_mean is not None
    assert np.abs(plain.band_mean - band_mean.numpy()).max() <= 1e-3
    relative = runner.predict(x, reference=reference.numpy())
    assert np.abs(relative.probs - torch.softmax(ref_logits, 1).numpy()).max() <= 1e-4
    assert np.abs(relative.probs - plain.probs).max() > 1e-3  # the reference does something

    # The analyzer feeds the voice's running spectrum once 8 voiced windows were heard ...
    from streamser.core.analyzer import Analyzer, AnalyzerConfig
    from streamser.core.frames import AudioBlock

    speech = np.concatenate([_tone(180.0 + 20 * k, 1.0, k) for k in range(10)])
    analyzer = Analyzer(runner.predict, runner.spec,
                        AnalyzerConfig(hop_s=0.5, voice_reference=True))
    frames = [f for i in range(0, len(speech), 4000)
              for f in analyzer.push(AudioBlock(i, speech[i:i + 4000], 0.0))]
    voiced = [f for f in frames if f.voiced]
    assert len(voiced) > 10
    assert all(f.voice_reference is None for f in voiced[:8])
    assert all(f.voice_reference == "session" for f in voiced[8:])
    assert frames[-1].to_dict()["voice_reference"] == "session"
    # ... when asked to (it is off by default) ...
    off = Analyzer(runner.predict, runner.spec, AnalyzerConfig())
    frames = [f for i in range(0, len(speech), 4000)
              for f in off.push(AudioBlock(i, speech[i:i + 4000], 0.0))]
    assert all(f.voice_reference is None for f in frames)
    # ... and a profile's reference (its neutral reading) replaces it from the first window.
    from streamser.core.adapt import ActiveProfile, Adaptation

    fed: list[np.ndarray | None] = []

    def spy(x: np.ndarray, reference: np.ndarray | None = None):
        fed.append(reference)
        return runner.predict(x, reference)

    adaptation = Adaptation("reference", np.zeros(TINY.emb_dim), np.zeros(len(LABELS)),
                            reference=reference.numpy().astype(np.float64))
    profiled = Analyzer(spy, runner.spec,
                        AnalyzerConfig(profile=ActiveProfile("me", adaptation)))
    frames = [f for i in range(0, len(speech), 4000)
              for f in profiled.push(AudioBlock(i, speech[i:i + 4000], 0.0))]
    assert all(f.voice_reference == "profile" and f.profile == "me" for f in frames)
    assert all(r is not None and np.allclose(r, reference.numpy()) for r in fed)
    assert profiled.profile_reference_mismatch_db is not None
    assert profiled.profile_reference_mismatch_db <= 10.0
    # A reading coloured unlike this microphone (here: the top half of the bands 40 dB down,
    # as through a telephone band) is set aside after 8 voiced windows of the live voice:
    # the analyzer runs as without a profile (the window alone, --voice-reference being off).
    dull = reference.numpy().astype(np.float64)
    dull[len(dull) // 2:] -= 40.0 * np.log(10) / 10  # natural-log power units
    fed.clear()
    mismatched = Analyzer(spy, runner.spec,
                          AnalyzerConfig(profile=ActiveProfile("phone", Adaptation(
                              "reference", np.zeros(TINY.emb_dim), np.zeros(len(LABELS)),
                              reference=dull))))
    frames = [f for i in range(0, len(speech), 4000)
              for f in mismatched.push(AudioBlock(i, speech[i:i + 4000], 0.0))]
    voiced = [k for k, f in enumerate(frames) if f.voiced]
    assert all(frames[k].voice_reference == "profile" for k in voiced[:8])
    assert all(frames[k].voice_reference is None for k in voiced[8:])
    assert frames[voiced[0]].profile == "phone"
    assert all(frames[k].profile is None for k in voiced[8:])  # set aside, not half applied
    assert mismatched.profile_reference_mismatch_db > 10.0
    assert fed[-1] is None and np.allclose(fed[0], dull)
    running = Analyzer(runner.predict, runner.spec, AnalyzerConfig(
        voice_reference=True, profile=mismatched.profile))
    frames = [f for i in range(0, len(speech), 4000)
              for f in running.push(AudioBlock(i, speech[i:i + 4000], 0.0))]
    assert frames[-1].voice_reference == "session" and frames[-1].profile is None
    mismatched.forget_voice()  # a new person: the comparison starts again
    assert mismatched.profile_reference_mismatch_db is None


def test_gradient_reversal_is_identity_forward_and_negates_backward():
    from streamser.training.losses import grad_reverse

    x = torch.tensor([1.0, -2.0], requires_grad=True)
    y = grad_reverse(x, 0.3)
    assert torch.equal(y.detach(), x.detach())
    (y * torch.tensor([2.0, 5.0])).sum().backward()
    assert torch.allclose(x.grad, torch.tensor([-0.6, -1.5]))


def test_corpus_adversarial_training_runs_resumes_and_exports_no_adversary(tmp_path):
    """Two corpora: the corpus classifier trains behind gradient reversal, its state rides in
    the resume checkpoint only, and a recipe without it keeps its old JSON."""

    base = _clipset()
    utts = [replace(u, corpus="a" if i % 2 else "b") for i, u in enumerate(base.utterances)]
    data = ClipSet.build(utts, base.audio, LABELS)
    cfg = TrainConfig(model=TINY, epochs=1, steps_per_epoch=2, batch_size=6, threads=1,
                      corpus_adv_weight=0.5)
    path = train(cfg, data, tmp_path, progress=False)
    _model, state = load_checkpoint(path)
    assert state["config"]["corpus_adv_weight"] == 0.5
    assert state["history"][-1]["corpus"] > 0.0  # log(2) at chance
    assert not any(k.startswith("adversary") for k in state["model"])
    last = torch.load(tmp_path / "last.pt", weights_only=False)
    assert "adversary" in last
    # resume from last.pt (the adversary's weights and optimiser state load back)
    path.unlink()
    _model, again = load_checkpoint(train(cfg, data, tmp_path, progress=False))
    assert again["history"] == state["history"]
    assert all(torch.equal(again["model"][k], v) for k, v in state["model"].items())
    assert "corpus_adv_weight" not in TrainConfig(model=TINY).to_json()


def test_fine_tune_starts_from_every_weight_of_the_base(trained, tmp_path):
    """``_init_from`` copies the trunk, the arousal head and the emotion head's rows by label."""
    from streamser.training.train import _init_from

    path, _cfg = trained
    base, _ = load_checkpoint(path)
    model = SERModel(len(LABELS), TINY)
    _init_from(model, path, LABELS)
    for (name, a), b in zip(model.state_dict().items(), base.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    reordered = SERModel(2, TINY)
    _init_from(reordered, path, ("sad", "angry"))  # "sad" is row 2 of the base, "angry" new
    assert torch.equal(reordered.head.weight[0], base.head.weight[2])


def test_two_stage_recipe_names_its_base_or_says_how_to_train_it(tmp_path, monkeypatch):
    """A fine-tuning recipe starts from the base's model of the same split, never another."""
    from streamser.training import loco

    monkeypatch.setenv("STREAMSER_RUNS", str(tmp_path))
    base_cfg = loco.RECIPES[loco.FINETUNE_FROM["v9a"]]
    steps = base_cfg.epochs * base_cfg.steps_per_epoch
    assert loco._base_model("v7n", "loco", "nemo") is None
    with pytest.raises(FileNotFoundError, match=r"loco cv --folds 3 --recipe v7n"):
        loco._base_model("v9a", "cv2", "fold3")
    want = tmp_path / f"loco-v7n-s{steps}" / "nemo" / "model.pt"
    want.parent.mkdir(parents=True)
    want.touch()
    assert loco._base_model("v9a", "loco", "nemo") == want
    with pytest.raises(FileNotFoundError, match="loco final --recipe v7n"):
        loco._base_model("v9a", "final2", None)


def test_export_command_writes_a_candidate_with_its_temperature(trained, tmp_path):
    """``python -m streamser.training.export`` writes a contract file with the given T."""
    from streamser.training.export import main

    path, _cfg = trained
    out = tmp_path / "candidates" / "tiny.onnx"
    assert main([str(path), str(out), "--temperature", "2.5", "--version", "tiny-9"]) == 0
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    spec = parse_metadata(sess.get_modelmeta().custom_metadata_map)
    assert spec.labels == LABELS
    assert spec.model_version == "tiny-9"
    assert float(sess.get_modelmeta().custom_metadata_map["temperature"]) == 2.5


def test_soup_averages_fine_tunes_and_refuses_other_models(trained, tmp_path):
    """A soup is the mean of its members' weights; the result loads and scores as one model."""

    from streamser.training.train import soup_checkpoints

    path, cfg = trained
    other = train(replace(cfg, seed=1, epochs=1), _clipset(), tmp_path / "seed1",
                  init_from=path, progress=False)
    soup = soup_checkpoints([path, other], tmp_path / "soup" / "model.pt")
    model, state = load_checkpoint(soup)
    a, b = load_checkpoint(path)[0].state_dict(), load_checkpoint(other)[0].state_dict()
    for name, value in model.state_dict().items():
        if value.is_floating_point():
            assert torch.allclose(value, (a[name] + b[name]) / 2), name
    assert state["soup_of"] == [str(path), str(other)]
    assert predict_clips(model, [_tone(400.0, 2.5, 0)], LABELS, cfg.window, cfg.hop
                         ).probs().shape == (1, len(LABELS))
    wider = train(replace(cfg, model=replace(TINY, emb_dim=8), epochs=1), _clipset(),
                  tmp_path / "wider", progress=False)
    with pytest.raises(ValueError, match="cannot be averaged"):
        soup_checkpoints([path, wider], tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="at least two"):
        soup_checkpoints([path], tmp_path / "bad.pt")


def test_soup_recipe_averages_its_members_of_the_same_split(trained, tmp_path, monkeypatch):
    """``loco`` protocols build a soup from its members' models of the same split, or say
    which member to train first."""
    from streamser.training import loco

    monkeypatch.setenv("STREAMSER_RUNS", str(tmp_path))
    path, _cfg = trained
    members = loco.SOUPS["v9c_soup"]
    cfg = loco.RECIPES["v9c_soup"]

    def never() -> ClipSet:
        raise AssertionError("a soup trains nothing")

    out = loco.run_root("loco", "v9c_soup", cfg) / "nemo"
    with pytest.raises(FileNotFoundError, match=f"loco --targets nemo --recipe {members[0]}"):
        loco._make_model("v9c_soup", cfg, never, out, None, "loco", "nemo")
    for member in members:
        dst = loco.run_root("loco", member, loco.RECIPES[member]) / "nemo" / "model.pt"
        dst.parent.mkdir(parents=True)
        dst.write_bytes(path.read_bytes())
    made = loco._make_model("v9c_soup", cfg, never, out, None, "loco", "nemo")
    assert made == out / "model.pt"
    assert torch.load(made, weights_only=False)["soup_of"][1].endswith(
        f"loco-{members[1]}-s600/nemo/model.pt")


def test_prosody_branch_starts_as_its_base_then_trains_and_exports(trained, tmp_path):
    """A prosody branch added to a trained model starts silent (the base's outputs exactly),
    a fine-tune teaches the bottleneck to read it, and the ONNX graph computes what torch does."""

    from streamser.training.train import _init_from

    path, cfg = trained
    base, _ = load_checkpoint(path)
    with_prosody = replace(TINY, prosody=8)
    model = SERModel(len(LABELS), with_prosody)
    _init_from(model, path, LABELS)
    rng = np.random.default_rng(4)
    x = torch.from_numpy((0.1 * rng.standard_normal((2, 32_000))).astype(np.float32))
    base.eval()
    model.eval()
    with torch.no_grad():
        assert torch.allclose(model(x)[0], base(x)[0], atol=1e-5)
        with pytest.raises(ValueError, match="prosody branch"):
            model.forward_features(model.frontend(x))

    tuned = train(replace(cfg, model=with_prosody, epochs=1), _clipset(), tmp_path / "ft",
                  init_from=path, progress=False)
    model, _ = load_checkpoint(tuned)
    new_columns = model.backbone.bottleneck.weight[:, -model.prosody.out_dim:]
    assert new_columns.abs().sum() > 0  # the fine-tune learned to read the branch
    meta = {"sample_rate": "16000", "window_s": "2.0", "hop_s": "0.5", "model_version": "tiny-p"}
    onnx_path = export_model(model, tmp_path / "p.onnx", LABELS, meta)
    for samples in (32_000, 24_000):
        wave = (0.1 * rng.standard_normal((3, samples))).astype(np.float32)
        probs, _emb = onnx_predict(onnx_path, wave)
        with torch.no_grad():
            ref = torch.softmax(model(torch.from_numpy(wave))[0], 1).numpy()
        assert np.abs(probs - ref).max() <= 1e-4


def test_js_consistency_is_zero_for_agreeing_views_and_ln2_for_disjoint_ones():
    from streamser.training.losses import js_consistency

    a = torch.tensor([[9.0, -9.0, -9.0], [0.0, 1.0, 2.0]])
    assert float(js_consistency(a, a)) == pytest.approx(0.0, abs=1e-6)
    b = torch.tensor([[-30.0, 30.0, -30.0]])
    assert float(js_consistency(a[:1] * 4, b)) == pytest.approx(np.log(2), abs=1e-3)
    assert float(js_consistency(a, a.flip(0))) > 0.0


def test_chain_consistency_training_runs_two_views_and_keeps_old_configs(tmp_path):
    """Two chains per crop: the consistency term is logged and finite, the recipe's JSON names
    it; recipes without it (or without a prosody branch) keep their old JSON, so their
    checkpoints are still reused."""

    from streamser.training.channel import ChannelConfig

    cfg = TrainConfig(model=TINY, epochs=1, steps_per_epoch=2, batch_size=6, threads=1,
                      channel=ChannelConfig(), consistency_weight=2.0)
    path = train(cfg, _clipset(), tmp_path / "run", progress=False)
    state = torch.load(path, map_location="cpu", weights_only=False)
    assert state["config"]["consistency_weight"] == 2.0
    assert 0.0 < state["history"][-1]["consistency"] < np.log(2)
    plain = TrainConfig(model=TINY).to_json()
    assert "consistency_weight" not in plain and "prosody" not in plain["model"]
    assert replace(TINY, prosody=8) == TrainConfig.from_json(
        TrainConfig(model=replace(TINY, prosody=8)).to_json()).model


def test_denoised_front_end_round_trips_and_old_recipes_keep_their_json():
    """The noise-floor fields appear in a recipe's JSON only when on (so older runs still
    match their recipe and are reused), and a denoised recipe survives the round trip."""
    plain = TrainConfig(model=TINY).to_json()
    assert not {"denoise", "denoise_floor_db", "denoise_frames"} & set(plain["frontend"])
    front = FrontEndConfig(norm="band", top_db=40.0, denoise=2.0)
    cfg = TrainConfig(model=TINY, frontend=front)
    assert TrainConfig.from_json(cfg.to_json()) == cfg


def _two_speaker_clipset() -> ClipSet:
    """Two synthetic voices (200 Hz and 330 Hz fundamentals) of two corpora, every label."""
    from pathlib import Path

    utts, audio = [], []
    for v, (corpus, f0) in enumerate((("a", 200.0), ("b", 330.0))):
        for k, label in enumerate(LABELS):
            for i in range(3):
                utts.append(Utterance(Path(f"/synthetic/{corpus}{label}{i}.wav"), label,
                                      f"{corpus}:{v}", corpus))
                audio.append(_tone(f0 * (1 + 0.02 * k), 1.5 + 0.3 * i, seed=100 * v + 10 * k + i))
    return ClipSet.build(utts, audio, LABELS)


def test_draw_speakers_gives_distinct_voices_with_k_clips_each():
    data = _two_speaker_clipset()
    rng = np.random.default_rng(0)
    idx, spk = data.draw_speakers(2, 4, rng, {"a": 0.9})
    assert idx.shape == spk.shape == (8,)
    assert sorted(set(spk.tolist())) == [0, 1]  # both voices, four crops each
    names = [data.utterances[i].speaker for i in idx]
    assert all(names[j] == data.speakers[spk[j]][1] for j in range(8))
    # asking for more voices than exist gives every voice once
    idx, spk = data.draw_speakers(5, 2, rng)
    assert sorted(spk.tolist()) == [0, 0, 1, 1]


def test_speaker_pretraining_learns_voices_reads_no_label_and_refuses_emotion_losses(tmp_path):
    """A real pretraining run: the metric loss on speaker identity falls, no emotion
    cross-entropy is computed, and a recipe mixing in an emotion-side loss is refused."""
    cfg = TrainConfig(model=TINY, epochs=3, steps_per_epoch=3, batch_size=8, threads=1,
                      pretrain_speakers=2, metric_weight=1.0, lr=3e-3)
    data = _two_speaker_clipset()
    data.y[:] = -1  # labels are never read: every clip "uncategorised"
    path = train(cfg, data, tmp_path / "pre", progress=False)
    _model, state = load_checkpoint(path)
    hist = state["history"]
    assert all(h["ce"] == 0.0 for h in hist)
    assert hist[-1]["metric"] < hist[0]["metric"]
    assert state["config"]["pretrain_speakers"] == 2
    assert "pretrain_speakers" not in TrainConfig(model=TINY).to_json()
    with pytest.raises(ValueError, match=r"reference_p=0\.7"):
        train(replace(cfg, reference_p=0.7), data, tmp_path / "bad", progress=False)
