// The kws page: microphone → WebSocket → the server's streaming engine → image, bars, detections.
"use strict";
const $ = (id) => document.getElementById(id);
let started = false;

fetch("/api/model").then((r) => r.json()).then((m) => {
  const recipe = m.recipe ? ` · recipe ${m.recipe.name}` : "";
  $("model").textContent = `${m.model}${recipe} · ${m.threshold_reason}`;
});

// A dark-to-bright colour map (black, purple, orange, yellow), as spectrograms are usually drawn.
function colour(v) {
  const t = v / 255;
  return [Math.min(255, 3 * 255 * t), Math.max(0, Math.min(255, 255 * (2 * t - 0.5))), Math.max(0, 255 * Math.sin(Math.PI * t) * 0.8)];
}

function drawImage(image) {
  const canvas = $("spectrogram");
  const raw = atob(image.pixels);
  const small = new ImageData(image.width, image.height);
  for (let row = 0; row < image.height; row++) {
    for (let col = 0; col < image.width; col++) {
      const v = raw.charCodeAt(row * image.width + col);
      const at = ((image.height - 1 - row) * image.width + col) * 4; // low bands at the bottom
      const [r, g, b] = colour(v);
      small.data.set([r, g, b, 255], at);
    }
  }
  const buffer = document.createElement("canvas");
  buffer.width = image.width;
  buffer.height = image.height;
  buffer.getContext("2d").putImageData(small, 0, 0);
  const ctx = canvas.getContext("2d");
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(buffer, 0, 0, canvas.width, canvas.height);
}

function drawBars(top) {
  $("bars").replaceChildren(...top.map((t) => {
    const row = document.createElement("div");
    row.className = "bar";
    const name = document.createElement("span");
    name.textContent = `${t.label} ${t.probability.toFixed(2)}`;
    const bar = document.createElement("div");
    bar.style.width = `${Math.round(t.probability * 100) * 0.3}rem`;
    row.append(name, bar);
    return row;
  }));
}

function addDetection(d) {
  const item = document.createElement("li");
  item.textContent = `${d.label} at ${d.time.toFixed(2)} s (score ${d.score.toFixed(2)})`;
  item.dataset.label = d.label;
  $("detections").prepend(item);
}

async function start() {
  if (started) return;
  started = true;
  $("status").textContent = "asking for the microphone…";
  let media;
  try {
    media = await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
  } catch (e) {
    $("status").textContent = `no microphone: ${e.message}`;
    $("status").className = "error";
    started = false;
    return;
  }
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/worklet.js");
  const source = context.createMediaStreamSource(media);
  const capture = new AudioWorkletNode(context, "capture");
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`);
  socket.onopen = () => {
    socket.send(JSON.stringify({ sample_rate: context.sampleRate }));
    capture.port.onmessage = (e) => { if (socket.readyState === WebSocket.OPEN) socket.send(e.data.buffer); };
    source.connect(capture);
    $("status").textContent = `listening at ${context.sampleRate} Hz`;
  };
  socket.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.type === "hop") {
      if (m.image) { drawImage(m.image); drawBars(m.top); }
      $("level").style.width = `${Math.max(0, Math.min(100, (m.level_db + 60) * 100 / 60))}%`;
      m.detections.forEach(addDetection);
    } else if (m.type === "error") {
      $("status").textContent = `server: ${m.message}`;
      $("status").className = "error";
    }
  };
  socket.onclose = () => {
    source.disconnect();
    media.getTracks().forEach((t) => t.stop());
    if ($("status").className !== "error") $("status").textContent = "the connection closed";
    started = false;
  };
}

async function classify(file) {
  $("result").textContent = `classifying ${file.name}…`;
  const response = await fetch(`/api/classify?name=${encodeURIComponent(file.name)}`, { method: "POST", body: file });
  const body = await response.json();
  $("result").className = response.ok ? "" : "error";
  $("result").textContent = response.ok
    ? body.map((r) => `${r.file}: ${r.top.map((t) => `${t.label} ${t.probability.toFixed(3)}`).join("  ")}`).join("\n")
    : body.error;
}

$("start").addEventListener("click", start);
$("file").addEventListener("change", (e) => { if (e.target.files[0]) classify(e.target.files[0]); });
const drop = $("drop");
drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
drop.addEventListener("dragleave", () => drop.classList.remove("over"));
drop.addEventListener("drop", (e) => {
  e.preventDefault();
  drop.classList.remove("over");
  if (e.dataTransfer.files[0]) classify(e.dataTransfer.files[0]);
});
