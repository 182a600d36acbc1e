// The drawing page: strokes on a canvas, scored live through POST /v1/models/NAME:predict.
"use strict";

const $ = (id) => document.getElementById(id);
const state = { model: null, strokes: [], current: null, inFlight: false, dirty: false, updates: 0 };

async function getJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(body.error || `${response.status} ${response.statusText}`);
  return body;
}

function showError(message) { $("error").textContent = message || ""; }

// ------------------------------------------------------------------ models

// the server listens before its models have loaded (their data, the novelty check): wait for them
async function waitUntilReady() {
  for (;;) {
    const response = await fetch("/v2/health/ready").catch(() => null);
    if (response && response.ok) { showError(""); return; }
    showError("The models are still loading...");
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function loadModels() {
  try {
    await waitUntilReady();
    const { models } = await getJSON("/v1/models");
    const select = $("model");
    select.replaceChildren(...models.map((m) => new Option(`${m.name} (${m.model}, ${m.dataset || "table"})`, m.name)));
    state.models = Object.fromEntries(models.map((m) => [m.name, m]));
    select.addEventListener("change", () => useModel(state.models[select.value]));
    if (models.length) await useModel(models[0]);
  } catch (err) {
    showError(`Could not list the models: ${err.message}`);
  }
}

async function useModel(model) {
  state.model = model;
  clearDrawing(false);
  const images = Array.isArray(model.image_shape);
  $("model-info").textContent = images
    ? `${model.image_shape.join("x")} images, ${model.classes.length} classes`
    : `a table model with ${model.n_features} features: call the API to score rows`;
  $("pad").hidden = !images;
  for (const id of ["undo", "clear"]) $(id).disabled = !images;
  const random = $("random");
  random.disabled = !model.test_samples;
  $("random-note").textContent = model.test_samples ? ""
    : "The run's dataset is not available on the server, so there are no test images to pick from.";
  renderBars(model.classes.map(() => 0), null);
  $("answer").textContent = images ? "Draw something to see what the model thinks." : "";
  $("warning").textContent = "";
  $("truth").textContent = "";
  drawSeen(null);
  await loadWeights(model);
}

// ------------------------------------------------------------------ drawing

function penWidth() {
  // the bundled 8x8 digits have strokes a quarter of the digit's height; MNIST's are thinner
  const shape = state.model && state.model.image_shape;
  return shape && shape[0] <= 8 ? 26 : 18;
}

function redraw() {
  const pad = $("pad");
  const ctx = pad.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, pad.width, pad.height);
  ctx.strokeStyle = "#000";
  ctx.fillStyle = "#000";
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.lineWidth = penWidth();
  for (const stroke of state.strokes) {
    if (stroke.length === 1) {
      ctx.beginPath();
      ctx.arc(stroke[0][0], stroke[0][1], ctx.lineWidth / 2, 0, 2 * Math.PI);
      ctx.fill();
      continue;
    }
    ctx.beginPath();
    ctx.moveTo(stroke[0][0], stroke[0][1]);
    for (const [x, y] of stroke.slice(1)) ctx.lineTo(x, y);
    ctx.stroke();
  }
}

function point(event) {
  const pad = $("pad");
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * (pad.width / box.width), (event.clientY - box.top) * (pad.height / box.height)];
}

function startStroke(event) {
  event.preventDefault();
  $("pad").setPointerCapture(event.pointerId);
  state.current = [point(event)];
  state.strokes.push(state.current);
  $("truth").textContent = "";
  redraw();
  schedulePredict();
}

function extendStroke(event) {
  if (!state.current) return;
  event.preventDefault();
  state.current.push(point(event));
  redraw();
  schedulePredict();
}

function endStroke() {
  if (!state.current) return;
  state.current = null;
  schedulePredict();
}

function clearDrawing(predict = true) {
  state.strokes = [];
  state.current = null;
  redraw();
  if (predict && state.model) resetAnswer();
}

function undo() {
  state.strokes.pop();
  redraw();
  if (state.strokes.length) schedulePredict(); else resetAnswer();
}

function resetAnswer() {
  renderBars(state.model.classes.map(() => 0), null);
  $("answer").textContent = "Draw something to see what the model thinks.";
  $("warning").textContent = "";
  $("truth").textContent = "";
  drawSeen(null);
}

// ------------------------------------------------------------------ scoring

function schedulePredict() {
  // at most one request in flight; the newest drawing is sent when it returns
  if (state.inFlight) { state.dirty = true; return; }
  state.inFlight = true;
  state.dirty = false;
  requestAnimationFrame(async () => {
    try {
      if (state.strokes.length) {
        const b64 = $("pad").toDataURL("image/png").split(",")[1];
        await predict([{ b64 }], null);
      }
    } finally {
      state.inFlight = false;
      if (state.dirty) schedulePredict();
    }
  });
}

async function predict(instances, truth) {
  const model = state.model;
  try {
    const body = JSON.stringify({ instances, return_inputs: true });
    const { predictions } = await getJSON(`/v1/models/${encodeURIComponent(model.name)}:predict`,
      { method: "POST", headers: { "Content-Type": "application/json" }, body });
    if (model !== state.model) return;
    const [p] = predictions;
    showError("");
    renderBars(p.probabilities, p.label);
    const best = Math.max(...p.probabilities);
    $("answer").replaceChildren("The model says ", Object.assign(document.createElement("strong"), { textContent: p.label }),
      ` (probability ${(100 * best).toFixed(1)}%)`);
    $("warning").textContent = (p.warnings || []).join("; ");
    drawSeen(p.input);
    $("truth").textContent = truth === null ? "" : `(test sample ${truth.index}, true class ${truth.label})`;
  } catch (err) {
    showError(`Could not score the drawing: ${err.message}`);
  }
}

async function randomSample() {
  try {
    const sample = await getJSON(`/v1/models/${encodeURIComponent(state.model.name)}/samples/random`);
    clearDrawing(false);
    await predict([sample.instance], sample);
  } catch (err) {
    showError(`Could not fetch a test image: ${err.message}`);
  }
}

// ------------------------------------------------------------------ pictures

function renderBars(probabilities, label) {
  const list = $("bars");
  const classes = state.model.classes;
  if (list.children.length !== classes.length) {
    list.replaceChildren(...classes.map((name) => {
      const item = document.createElement("li");
      item.dataset.class = name;
      item.innerHTML = '<span class="name"></span><span class="track"><span class="fill"></span></span><span class="value"></span>';
      item.querySelector(".name").textContent = name;
      return item;
    }));
  }
  probabilities.forEach((p, i) => {
    const item = list.children[i];
    item.querySelector(".fill").style.width = `${(100 * p).toFixed(1)}%`;
    item.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
    item.classList.toggle("best", classes[i] === label);
    item.setAttribute("aria-label", `${classes[i]}: ${(100 * p).toFixed(1)} percent`);
  });
  state.updates += label === null ? 0 : 1;
  list.dataset.updates = String(state.updates);
}

function drawSeen(pixels) {
  const canvas = $("seen");
  const shape = state.model && state.model.image_shape;
  if (!shape) return;
  const [h, w] = shape;
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  const top = state.model.pixel_max || 255;
  for (let i = 0; i < w * h; i++) {
    const v = pixels ? 255 - Math.round(255 * Math.min(1, Math.max(0, pixels[i] / top))) : 255;  // ink dark
    image.data.set([v, v, v, 255], 4 * i);
  }
  ctx.putImageData(image, 0, 0);
  canvas.setAttribute("aria-label", pixels ? `What the model saw: a ${w} by ${h} picture` : "What the model saw: nothing yet");
}

async function loadWeights(model) {
  const panel = $("weights-panel");
  panel.hidden = true;
  if (model.model !== "softmax" && model.model !== "logistic") return;
  try {
    const weights = await getJSON(`/v1/models/${encodeURIComponent(model.name)}/weights`);
    const [h, w] = weights.shape;
    const figures = weights.templates.map((values, k) => {
      const figure = document.createElement("figure");
      const canvas = document.createElement("canvas");
      canvas.width = w;
      canvas.height = h;
      canvas.setAttribute("role", "img");
      canvas.setAttribute("aria-label", `weights of ${weights.titles[k]}`);
      const ctx = canvas.getContext("2d");
      const image = ctx.createImageData(w, h);
      values.forEach((v, i) => {
        const t = Math.max(-1, Math.min(1, v / weights.limit));
        const fade = Math.round(255 * (1 - Math.abs(t)));
        image.data.set(t >= 0 ? [255, fade, fade, 255] : [fade, fade, 255, 255], 4 * i);
      });
      ctx.putImageData(image, 0, 0);
      const caption = document.createElement("figcaption");
      caption.textContent = weights.titles[k];
      figure.append(canvas, caption);
      return figure;
    });
    $("weights").replaceChildren(...figures);
    panel.hidden = false;
  } catch (err) {
    panel.hidden = true;
  }
}

// ------------------------------------------------------------------ wiring

window.addEventListener("DOMContentLoaded", () => {
  const pad = $("pad");
  pad.addEventListener("pointerdown", startStroke);
  pad.addEventListener("pointermove", extendStroke);
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);
  $("clear").addEventListener("click", () => clearDrawing());
  $("undo").addEventListener("click", undo);
  $("random").addEventListener("click", randomSample);
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "z") { event.preventDefault(); undo(); }
    if (event.key === "Escape") clearDrawing();
  });
  redraw();
  loadModels();
});
