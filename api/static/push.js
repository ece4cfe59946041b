// Pushing a new version from the model page (api/routes/push_pages.py): a dropped or chosen ZIP
// is sent as it is; a folder is packed here first as `modelfarm push` packs it
// (modelfarm/packing.py): the same files (predict.py at its top; train.py, samples/ and caches
// left out), sorted by path the way Python sorts paths, fixed timestamps, and files over
// STORE_ABOVE stored rather than deflated, so that the same folder gives the same bytes. A browser
// cannot see a file's executable bit: every file gets mode 0644, as most of a model's are.
// The ZIP goes to the farm's own origin with an upload progress bar, then the page follows the
// build's events (the log as it comes) until the version is READY or FAILED.
import { Zip, ZipDeflate, ZipPassThrough } from "/static/vendor/fflate/esm/browser.js";

const LEFT_OUT = new Set(["train.py", "samples", "__pycache__", ".ipynb_checkpoints"]);
const FIXED_TIME = new Date(2020, 0, 1, 0, 0, 0); // local: the ZIP's DOS time is local time
const STORE_ABOVE = 8 * 1024 ** 2;
const SLICE_BYTES = 1024 ** 2; // fixed, so that deflate sees the same chunks each time
const MODE = 0o644 << 16; // the ZIP's external attributes: a Unix mode
const UNIX = 3;

const section = document.querySelector("[data-push]");
if (section) {
  const $ = (id) => document.getElementById(id);
  const view = {
    state: $("push-state"), progress: $("push-progress"), percent: $("push-percent"),
    error: $("push-error"), log: $("push-log"), done: $("push-done"),
  };
  const chosen = (files) => push(section, view, files).catch((error) => fail(view, error.message));
  // The input is emptied once read, so that choosing the same again pushes again.
  const taken = (input) => {
    const files = folderFiles(input.files);
    input.value = "";
    return files;
  };
  $("push-zip").addEventListener("change", (event) => {
    const files = taken(event.target);
    if (files.every(([path]) => /\.zip$/i.test(path))) chosen(files);
    else fail(view, "Choose a ZIP file (.zip), or a folder with the other button.");
  });
  $("push-folder").addEventListener("change", (event) => chosen(taken(event.target)));
  const drop = $("push-drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    dropped(event.dataTransfer).then(chosen, (error) => fail(view, error.message));
  });
}

// [relative path, File] of each file chosen: a folder's paths drop the folder's own name.
function folderFiles(files) {
  return Array.from(files, (file) => {
    const parts = (file.webkitRelativePath || file.name).split("/");
    return [parts.length > 1 ? parts.slice(1).join("/") : parts[0], file];
  });
}

async function push(section, view, files) {
  reset(view);
  if (!files.length) return;
  const zipOnly = files.length === 1 && /\.zip$/i.test(files[0][0]) && !files[0][0].includes("/");
  view.state.textContent = zipOnly ? "Uploading the ZIP…" : "Packing the folder…";
  const body = zipOnly ? files[0][1] : await pack(files);
  view.state.textContent = "Uploading…";
  const created = await upload(section, view, body);
  view.state.textContent = `v${created.version.number}: ${created.version.status}`;
  follow(view, created);
}

// The folder's ZIP, as modelfarm/packing.py writes it.
async function pack(files) {
  const kept = files
    .map(([path, file]) => [path.split("/"), file])
    .filter(([parts]) => !parts.some((part) => LEFT_OUT.has(part)))
    .sort((a, b) => compareParts(a[0], b[0]));
  if (!kept.some(([parts]) => parts.length === 1 && parts[0] === "predict.py")) {
    throw new Error("This folder has no predict.py at its top: choose a model's folder.");
  }
  const chunks = [];
  let finished;
  const written = new Promise((resolve, reject) => { finished = { resolve, reject }; });
  const zip = new Zip((error, data, final) => {
    if (error) return finished.reject(error);
    chunks.push(data);
    if (final) finished.resolve(new Blob(chunks, { type: "application/zip" }));
  });
  for (const [parts, file] of kept) {
    await add(zip, parts.join("/"), file);
  }
  zip.end();
  return written;
}

async function add(zip, name, file) {
  const entry = file.size > STORE_ABOVE ? new ZipPassThrough(name) : new ZipDeflate(name, { level: 6 });
  Object.assign(entry, { mtime: FIXED_TIME, attrs: MODE, os: UNIX });
  zip.add(entry);
  if (file.size === 0) return entry.push(new Uint8Array(0), true);
  for (let start = 0; start < file.size; start += SLICE_BYTES) {
    const slice = await file.slice(start, start + SLICE_BYTES).arrayBuffer();
    entry.push(new Uint8Array(slice), start + SLICE_BYTES >= file.size);
  }
}

// Python's order of paths: part by part, each by code point (not by UTF-16 unit).
function compareParts(a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    const order = compareCodePoints(a[i], b[i]);
    if (order) return order;
  }
  return a.length - b.length;
}

function compareCodePoints(a, b) {
  const x = Array.from(a);
  const y = Array.from(b);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const order = x[i].codePointAt(0) - y[i].codePointAt(0);
    if (order) return order;
  }
  return x.length - y.length;
}

function upload(section, view, body) {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", section.dataset.push);
    request.setRequestHeader("Content-Type", "application/zip");
    request.setRequestHeader("X-CSRF-Token", section.dataset.csrf);
    view.progress.hidden = false;
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) shown(view, event.loaded / event.total);
    });
    request.upload.addEventListener("load", () => shown(view, 1));
    request.addEventListener("load", () => {
      const answer = parsed(request.responseText);
      if (request.status === 202) resolve(answer);
      else reject(new Error(answer.detail || `The farm answered ${request.status}.`));
    });
    request.addEventListener("error", () => reject(new Error("The upload failed: check the connection and try again.")));
    request.send(body);
  });
}

function shown(view, fraction) {
  const percent = Math.floor(fraction * 100);
  view.progress.value = percent;
  view.percent.textContent = `${percent} %`;
}

function parsed(text) {
  try {
    return JSON.parse(text);
  } catch {
    return {};
  }
}

// The build's events (with the session cookie): its status, its log lines, then its end.
function follow(view, created) {
  const source = new EventSource(created.events);
  const number = created.version.number;
  view.log.hidden = false;
  source.addEventListener("status", (event) => {
    view.state.textContent = `v${number}: ${JSON.parse(event.data).status}`;
  });
  source.addEventListener("log", (event) => {
    view.log.textContent += JSON.parse(event.data).line + "\n";
  });
  source.addEventListener("done", (event) => {
    source.close();
    const version = JSON.parse(event.data);
    view.state.textContent = `v${number}: ${version.status}`;
    if (version.error) fail(view, version.error);
    const link = document.createElement("a");
    link.href = created.page;
    link.textContent = `Open v${number}`;
    view.done.replaceChildren(link);
    view.done.hidden = false;
  });
}

function reset(view) {
  view.error.hidden = true;
  view.done.hidden = true;
  view.log.hidden = true;
  view.log.textContent = "";
  view.progress.hidden = true;
  shown(view, 0);
  view.percent.textContent = "";
}

function fail(view, sentence) {
  view.error.textContent = sentence;
  view.error.hidden = false;
}

// The files dropped: one ZIP, or a folder's (walked), or loose files (a folder's top).
async function dropped(transfer) {
  const entries = Array.from(transfer.items, (item) => item.webkitGetAsEntry()).filter(Boolean);
  if (entries.length === 1 && entries[0].isDirectory) return walk(entries[0], "");
  const found = [];
  for (const entry of entries) {
    found.push(...(entry.isDirectory ? await walk(entry, `${entry.name}/`) : [[entry.name, await fileOf(entry)]]));
  }
  return found;
}

async function walk(directory, prefix) {
  const found = [];
  for (const entry of await allEntries(directory.createReader())) {
    const path = prefix + entry.name;
    if (entry.isDirectory) found.push(...(await walk(entry, `${path}/`)));
    else found.push([path, await fileOf(entry)]);
  }
  return found;
}

// readEntries answers a batch at a time, and an empty one at the end.
async function allEntries(reader) {
  const all = [];
  for (;;) {
    const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
    if (!batch.length) return all;
    all.push(...batch);
  }
}

function fileOf(entry) {
  return new Promise((resolve, reject) => entry.file(resolve, reject));
}
