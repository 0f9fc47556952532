"use strict";
// The app's page: the model grid, the image input, the faces. Plain DOM, nothing fetched elsewhere.

const state = { choice: null, lastImage: null };
const $ = (id) => document.getElementById(id);

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("data-")) node.setAttribute(k, v);
    else node[k] = v;
  }
  for (const child of children) node.append(child);
  return node;
}

function pct(x) { return (100 * x).toFixed(1) + " %"; }

function setStatus(text, error = false) {
  const status = $("status");
  status.textContent = text;
  status.classList.toggle("error", error);
}

async function loadModels() {
  const response = await fetch("/api/models");
  const data = await response.json();
  if (data.message) {
    $("no-model").textContent = data.message;
    $("no-model").hidden = false;
    $("model-hint").hidden = true;
    setStatus("No trained model yet.");
  }
  buildGrid(data);
  const samples = $("samples");
  for (const sample of data.samples) {
    samples.append(el("option", { value: sample.id, textContent: `${sample.label} (test face)` }));
  }
  $("sample-row").hidden = data.samples.length === 0;
}

function buildGrid(data) {
  const table = $("models");
  const head = table.querySelector("thead tr");
  const cells = new Map(data.choices.map((c) => [`${c.network}/${c.optimizer}`, c]));
  for (const label of Object.values(data.optimizers)) head.append(el("th", { textContent: label }));
  const body = table.querySelector("tbody");
  let first = null;
  for (const network of data.networks) {
    const row = el("tr", {}, el("th", { textContent: network }));
    for (const optimizer of Object.keys(data.optimizers)) {
      const choice = cells.get(`${network}/${optimizer}`);
      const td = el("td", { "data-network": network, "data-optimizer": optimizer });
      const input = el("input", { type: "radio", name: "model", disabled: !choice });
      const label = el("label", {}, input);
      if (choice) {
        input.value = choice.key;
        const acc = choice.accuracy === null ? "not tested" : `acc ${pct(choice.accuracy)}`;
        label.append(el("span", { class: "acc", textContent: (choice.champion ? "\u2605 " : "") + acc }));
        if (choice.ci) label.append(el("span", { class: "ci", textContent: `95 % CI ${pct(choice.ci[0])} \u2013 ${pct(choice.ci[1])}` }));
        label.append(el("span", { class: choice.demo ? "data demo" : "data", textContent: choice.demo ? `${choice.dataset} \u00b7 demo` : (choice.dataset || "data ?") }));
        label.title = `${choice.run_name || choice.run_id} (registered version ${choice.key}); trained on ${choice.trained_on}`;
        input.addEventListener("change", () => select(choice, td));
        if (!first || choice.champion) first = [choice, td, input];
      } else {
        td.classList.add("none");
        label.append(el("span", { class: "ci", textContent: "no run" }));
        label.title = `no trained run of ${network} with ${data.optimizers[optimizer]}`;
      }
      td.append(label);
      row.append(td);
    }
    body.append(row);
  }
  table.hidden = false;
  if (first) { first[2].checked = true; select(first[0], first[1]); }
}

function select(choice, td) {
  state.choice = choice;
  document.querySelectorAll("td.selected").forEach((c) => c.classList.remove("selected"));
  td.classList.add("selected");
  if (state.lastImage) analyse(state.lastImage);
  else if (choice.demo) setStatus(`Model: ${choice.network} / ${choice.optimizer}, trained on ${choice.trained_on}.`, true);
  else setStatus(`Model: ${choice.network} / ${choice.optimizer}, trained on ${choice.dataset || "unknown data"}. Now an image.`);
}

async function analyse(blob) {
  state.lastImage = blob;
  if (!state.choice) { setStatus("Train a model first (see above).", true); return; }
  const url = URL.createObjectURL(blob);
  $("photo").src = url;
  $("boxes").replaceChildren();
  $("faces").replaceChildren();
  setStatus("Analysing\u2026");
  document.body.dataset.state = "busy";
  const started = performance.now();
  let data;
  try {
    const response = await fetch(`/api/predict?model=${encodeURIComponent(state.choice.key)}`, { method: "POST", body: blob });
    data = await response.json();
    if (!response.ok) throw new Error(data.detail || response.statusText);
  } catch (err) {
    setStatus(`Could not analyse the image: ${err.message}`, true);
    document.body.dataset.state = "error";
    return;
  }
  show(data, (performance.now() - started) / 1000);
  document.body.dataset.state = "done";
}

function show(data, seconds) {
  const n = data.faces.length;
  if (data.error) {
    setStatus(`Not an image this app can read (${data.outcome}).`, true);
    return;
  }
  const model = `${data.model.network} / ${data.model.optimizer}` + (data.model.demo ? `, a demo model of the ${data.model.dataset} set: not trained on real faces` : "");
  setStatus(n ? `${n} face${n > 1 ? "s" : ""} (${model}, ${seconds.toFixed(2)} s)` : `No face found (${data.outcome}).`, n === 0);
  const photo = $("photo");
  const place = () => {
    const scale = photo.clientWidth / data.image.width;
    $("boxes").replaceChildren(...data.faces.map((f) => {
      const [x, y, w, h] = f.box;
      const box = el("div", { class: "box" }, el("span", { textContent: `${f.face + 1}: ${f.predicted}` }));
      Object.assign(box.style, { left: `${x * scale}px`, top: `${y * scale}px`, width: `${w * scale}px`, height: `${h * scale}px` });
      return box;
    }));
  };
  if (photo.complete && photo.naturalWidth) place(); else photo.onload = place;
  $("faces").replaceChildren(...data.faces.map((f) => faceCard(f, data.classes)));
}

function faceCard(face, classes) {
  const card = el("div", { class: "face", "data-face": face.face, "data-box": face.box.join(","), "data-predicted": face.predicted },
    el("h3", { textContent: `Face ${face.face + 1}: ${face.predicted}` }));
  for (const cls of classes) {
    const p = face.probabilities[cls];
    const fill = el("div", { class: "fill" });
    fill.style.width = `${100 * p}%`;
    card.append(el("div", { class: "row" + (cls === face.predicted ? " top" : ""), "data-class": cls, "data-p": String(p) },
      el("span", { textContent: cls }), el("div", { class: "track" }, fill), el("span", { class: "pct", textContent: pct(p) })));
  }
  card.append(el("div", { class: "occlusion" }, el("img", { src: face.occlusion, alt: `occlusion map of face ${face.face + 1}` }),
    el("span", { textContent: `Occlusion map: red where hiding the face lowers P(${face.predicted}) most.` })));
  return card;
}

function setUpInput() {
  const drop = $("drop");
  $("file").addEventListener("change", (e) => { if (e.target.files[0]) analyse(e.target.files[0]); });
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) analyse(e.dataTransfer.files[0]);
  });
  $("samples").addEventListener("change", async (e) => {
    if (e.target.value === "") return;
    const response = await fetch(`/api/samples/${e.target.value}`);
    analyse(await response.blob());
  });
}

setUpInput();
loadModels().catch((err) => setStatus(`Could not list the models: ${err.message}`, true));
