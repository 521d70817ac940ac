// The page: settings -> /sdapi/v1/txt2img or /img2img, progress polled by the job's id, results in a gallery.

import { ApiError, call, useSecret } from "./api.js";
import { MaskCanvas } from "./mask.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 250;
const mask = new MaskCanvas($("mask"), $("brush"));
let initImage = null; // base64 PNG/JPEG of the picked file, without the data: prefix
let running = null; // the id of the job in flight

function showError(error) {
  $("error").textContent = error ? String(error.message || error) : "";
}

function options(select, items) {
  for (const [value, text] of items) select.append(new Option(text, value));
}

async function start() {
  try {
    await loadPickers();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return askForKey();
    showError(error);
  }
  $("key-form").hidden = true;
  $("studio").hidden = false;
}

function askForKey(message = "") {
  $("studio").hidden = true;
  $("key-form").hidden = false;
  showError(message);
  $("key-form").append($("error"));
  $("key").focus();
}

$("key-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (!(await useSecret($("key").value))) return askForKey("The server refused this key.");
  document.querySelector(".output").prepend($("error"));
  showError("");
  start();
});

async function loadPickers() {
  const [models, samplers] = await Promise.all([call("GET", "/sdapi/v1/sd-models"), call("GET", "/sdapi/v1/samplers")]);
  $("model").replaceChildren();
  options($("model"), models.map((m) => [m.title, m.model_name]));
  $("sampler").replaceChildren();
  options($("sampler"), samplers.map((s) => [s.name, s.name]));
  try {
    const loras = await call("GET", "/sdapi/v1/loras");
    $("lora").replaceChildren(new Option("add a LoRA…", ""));
    options($("lora"), loras.map((l) => [l.name, l.alias || l.name]));
    $("lora-label").hidden = loras.length === 0;
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
  }
}

// Picking a LoRA adds its A1111 tag to the prompt, where its weight can be edited.
$("lora").addEventListener("change", () => {
  const name = $("lora").value;
  if (name) $("prompt").value = `${$("prompt").value.trim()} <lora:${name}:1>`.trim();
  $("lora").value = "";
});

$("init-image").addEventListener("change", () => {
  const file = $("init-image").files[0];
  if (!file) return removeImage();
  const reader = new FileReader();
  reader.onload = () => {
    const url = String(reader.result);
    initImage = url.split(",")[1];
    $("init-preview").onload = () => {
      mask.resize($("init-preview").naturalWidth, $("init-preview").naturalHeight);
      $("mask-tools").hidden = false;
    };
    $("init-preview").src = url;
  };
  reader.readAsDataURL(file);
});

function removeImage() {
  initImage = null;
  $("init-image").value = "";
  $("mask-tools").hidden = true;
  mask.clear();
}

$("remove-image").addEventListener("click", removeImage);
$("clear-mask").addEventListener("click", () => mask.clear());

function number(id) {
  const value = $(id).value;
  return value === "" ? undefined : Number(value);
}

function request(id) {
  const body = {
    prompt: $("prompt").value,
    negative_prompt: $("negative-prompt").value,
    width: number("width"),
    height: number("height"),
    steps: number("steps"),
    cfg_scale: number("cfg-scale"),
    sampler_name: $("sampler").value,
    seed: number("seed"),
    override_settings: { sd_model_checkpoint: $("model").value },
    force_task_id: id,
  };
  if (!initImage) return ["/sdapi/v1/txt2img", body];
  const painted = mask.png();
  Object.assign(body, { init_images: [initImage], denoising_strength: number("strength") });
  if (painted) body.mask = painted;
  return ["/sdapi/v1/img2img", body];
}

function newId() {
  return `page-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

$("generate-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  if (running) return;
  showError("");
  running = newId();
  const [path, body] = request(running);
  setBusy(true);
  const polling = poll(running);
  try {
    const answer = await call("POST", path, body);
    addToGallery(answer);
    const stopped = $("status").textContent.startsWith("Interrupting");
    $("progress").value = 1;
    $("status").textContent = stopped ? "Interrupted" : "Done";
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) askForKey("The key was refused; enter it again.");
    else showError(error);
    $("status").textContent = "";
  } finally {
    running = null;
    await polling;
    setBusy(false);
  }
});

function setBusy(busy) {
  $("generate").disabled = busy;
  $("interrupt").disabled = !busy;
  $("preview").hidden = !busy;
  if (busy) {
    $("progress").value = 0;
    $("status").textContent = "Queued";
    $("preview").removeAttribute("src");
  }
}

// Progress of one job until it is answered; a 404 means it is not queued yet.
async function poll(id) {
  while (running === id) {
    try {
      const answer = await call("GET", `/sdapi/v1/progress?id_task=${encodeURIComponent(id)}`);
      if (running !== id) break;
      showProgress(answer);
    } catch (error) {
      if (!(error instanceof ApiError && error.status === 404)) break;
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

function showProgress(answer) {
  const { sampling_step: step, sampling_steps: steps } = answer.state;
  $("progress").value = Math.max($("progress").value, answer.progress);
  if (steps) {
    const eta = answer.eta_relative > 0 ? `, about ${answer.eta_relative.toFixed(1)} s left` : "";
    $("status").textContent = `Step ${step} of ${steps}${eta}`;
  }
  if (answer.current_image) $("preview").src = `data:image/png;base64,${answer.current_image}`;
}

$("interrupt").addEventListener("click", async () => {
  if (!running) return;
  try {
    await call("POST", `/sdapi/v1/interrupt?id_task=${encodeURIComponent(running)}`);
    $("status").textContent = "Interrupting…";
  } catch (error) {
    showError(error);
  }
});

function addToGallery(answer) {
  const info = JSON.parse(answer.info || "{}");
  answer.images.forEach((image, i) => {
    const seed = (info.all_seeds || [])[i] ?? info.seed ?? "";
    const url = `data:image/png;base64,${image}`;
    const item = document.createElement("li");
    const picture = new Image();
    picture.src = url;
    picture.alt = `${info.prompt || "image"} (seed ${seed})`;
    const link = document.createElement("a");
    link.href = url;
    link.download = `sdrt-${seed}.png`;
    link.textContent = "Download";
    item.append(picture, link);
    $("gallery").prepend(item);
  });
}

start();
