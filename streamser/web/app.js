// streamser browser page: live emotion trajectories, the arousal-valence plane and the current
// label, from the websocket on the same host and port that served this page. Plain JavaScript,
// no libraries, no network beyond that host. A ?token=... in the page's address is passed on
// to the websocket (and to meta.json), so the page works with `streamser live --token`.
"use strict";

const HISTORY_S = 30;           // span of the trajectories, seconds of audio
const TRAIL = 40;               // frames in the arousal-valence trail
const token = new URLSearchParams(location.search).get("token");
const query = token ? `?token=${encodeURIComponent(token)}` : "";

const state = {
  meta: { circumplex: {}, colors: {}, unvoiced: "#3b4350" },
  hello: null,
  frames: [],                   // {end, smoothed, voiced, top, confidence, arousal, valence}
  status: null,
  dirty: true,
};
// what a test (or a curious user) can read from the console
window.streamser = { connected: false, frames: 0, drawn: 0, lastSeq: 0, hello: null };

const $ = (id) => document.getElementById(id);
const color = (label) => state.meta.colors[label] || "#7d8794";

async function loadMeta() {
  try {
    const response = await fetch(`meta.json${query}`, { cache: "no-store" });
    if (response.ok) state.meta = await response.json();
  } catch (err) {
    console.warn("streamser: meta.json unavailable", err);
  }
  state.dirty = true;
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/${query}`);
  ws.onopen = () => setConnection(true, "connected");
  ws.onclose = (event) => {
    setConnection(false, event.code === 1006 ? "disconnected; retrying" : `closed (${event.code}); retrying`);
    setTimeout(connect, 1000);
  };
  ws.onmessage = (event) => receive(JSON.parse(event.data));
}

function setConnection(on, text) {
  window.streamser.connected = on;
  const el = $("connection");
  el.textContent = text;
  el.className = on ? "on" : "off";
}

function receive(msg) {
  switch (msg.type) {
    case "hello":
      state.hello = msg;
      window.streamser.hello = msg;
      state.frames = [];
      showMeta();
      buildLegend();
      break;
    case "config":
      if (state.hello) Object.assign(state.hello, { hop_s: msg.hop_s, smoothing_s: msg.smoothing_s });
      showMeta();
      break;
    case "frame":
      addFrame(msg);
      break;
    case "status":
      state.status = msg;
      $("status").textContent = `${msg.state} \u00b7 ${msg.frames} frames \u00b7 ` +
        `${msg.audio_s.toFixed(1)} s of audio \u00b7 ${msg.subscribers} subscriber(s)` +
        (msg.client_dropped ? ` \u00b7 this page lost ${msg.client_dropped} frames` : "") +
        (msg.error ? ` \u00b7 ${msg.error}` : "") + (msg.warning ? ` \u00b7 ${msg.warning}` : "");
      break;
    case "error":
      console.warn("streamser:", msg.code, msg.message);
      break;
  }
}

function showMeta() {
  const h = state.hello;
  if (!h) return;
  $("meta").textContent = `${h.source} \u00b7 model ${h.model_version} \u00b7 window ` +
    `${h.window_s} s \u00b7 hop ${h.hop_s} s \u00b7 smoothing ${h.smoothing_s} s`;
  $("span").textContent = `(last ${HISTORY_S} s)`;
}

function buildLegend() {
  const legend = $("legend");
  legend.replaceChildren(...state.hello.labels.map((label) => {
    const item = document.createElement("span");
    item.textContent = label;
    item.style.color = color(label);
    return item;
  }));
}

function addFrame(msg) {
  const labels = state.hello ? state.hello.labels : Object.keys(msg.smoothed);
  state.frames.push({
    end: msg.end, voiced: msg.voiced, top: msg.top, confidence: msg.confidence,
    arousal: msg.arousal, valence: msg.valence,
    smoothed: labels.map((label) => msg.smoothed[label]),
  });
  while (state.frames.length && state.frames[0].end < msg.end - HISTORY_S) state.frames.shift();
  window.streamser.frames += 1;
  window.streamser.lastSeq = msg.seq;
  const label = $("label");
  label.textContent = msg.top || (msg.voiced ? "uncertain" : "\u00b7 no speech");
  label.style.color = msg.top ? color(msg.top) : state.meta.unvoiced;
  $("confidence").textContent = msg.top
    ? `${Math.round(msg.confidence * 100)}%${msg.session_prior ? " \u00b7 adapted to this voice" : ""}`
    : "";
  state.dirty = true;
}

function fit(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const w = canvas.clientWidth, h = canvas.clientHeight;
  if (canvas.width !== Math.round(w * ratio) || canvas.height !== Math.round(h * ratio)) {
    canvas.width = Math.round(w * ratio);
    canvas.height = Math.round(h * ratio);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  return [ctx, w, h];
}

function drawTrajectories() {
  const [ctx, w, h] = fit($("traj"));
  ctx.clearRect(0, 0, w, h);
  const pad = 28;
  ctx.strokeStyle = "#2a3038";
  ctx.fillStyle = "#7d8794";
  ctx.font = "11px system-ui, sans-serif";
  for (const p of [0, 0.5, 1]) {
    const y = h - pad - p * (h - 2 * pad);
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w - 8, y); ctx.stroke();
    ctx.fillText(p.toFixed(1), 2, y + 4);
  }
  const frames = state.frames;
  if (!frames.length || !state.hello) return;
  const tEnd = frames[frames.length - 1].end;
  const x = (t) => pad + (w - pad - 8) * (1 - (tEnd - t) / HISTORY_S);
  const y = (p) => h - pad - p * (h - 2 * pad);
  ctx.fillStyle = "rgba(59, 67, 80, 0.35)";  // unvoiced stretches
  for (const f of frames) {
    if (!f.voiced) ctx.fillRect(x(f.end - state.hello.hop_s), pad, Math.max(1, x(f.end) - x(f.end - state.hello.hop_s)), h - 2 * pad);
  }
  ctx.lineWidth = 2;
  state.hello.labels.forEach((label, i) => {
    ctx.strokeStyle = color(label);
    ctx.beginPath();
    frames.forEach((f, k) => (k ? ctx.lineTo(x(f.end), y(f.smoothed[i])) : ctx.moveTo(x(f.end), y(f.smoothed[i]))));
    ctx.stroke();
  });
  ctx.lineWidth = 1;
  ctx.fillStyle = "#7d8794";
  ctx.fillText(`${tEnd.toFixed(1)} s`, w - 48, h - 8);
}

function drawPlane() {
  const [ctx, w, h] = fit($("av"));
  ctx.clearRect(0, 0, w, h);
  const size = Math.min(w, h) - 24, cx = w / 2, cy = h / 2, r = size / 2;
  const px = (valence) => cx + valence * r, py = (arousal) => cy - arousal * r;
  ctx.strokeStyle = "#2a3038";
  ctx.strokeRect(cx - r, cy - r, 2 * r, 2 * r);
  ctx.beginPath(); ctx.moveTo(cx - r, cy); ctx.lineTo(cx + r, cy); ctx.moveTo(cx, cy - r); ctx.lineTo(cx, cy + r); ctx.stroke();
  ctx.fillStyle = "#7d8794";
  ctx.font = "11px system-ui, sans-serif";
  ctx.fillText("valence \u2192", cx + r - 62, cy - 4);
  ctx.fillText("arousal \u2191", cx + 4, cy - r + 12);
  for (const [label, [valence, arousal]] of Object.entries(state.meta.circumplex)) {
    if (state.hello && !state.hello.labels.includes(label)) continue;
    ctx.fillStyle = color(label);
    ctx.globalAlpha = 0.55;
    ctx.beginPath(); ctx.arc(px(valence), py(arousal), 4, 0, 2 * Math.PI); ctx.fill();
    ctx.fillText(label, px(valence) + 6, py(arousal) + 4);
  }
  ctx.globalAlpha = 1;
  const trail = state.frames.slice(-TRAIL);
  trail.forEach((f, k) => {
    const last = k === trail.length - 1;
    ctx.globalAlpha = last ? 1 : 0.15 + 0.6 * (k / trail.length);
    ctx.fillStyle = f.top ? color(f.top) : state.meta.unvoiced;
    ctx.beginPath(); ctx.arc(px(f.valence), py(f.arousal), last ? 9 : 3, 0, 2 * Math.PI); ctx.fill();
  });
  ctx.globalAlpha = 1;
}

function frame() {
  if (state.dirty) {
    state.dirty = false;
    drawTrajectories();
    drawPlane();
    window.streamser.drawn += 1;
  }
  requestAnimationFrame(frame);
}

window.addEventListener("resize", () => { state.dirty = true; });
loadMeta().then(connect);
requestAnimationFrame(frame);
