// The upload page: files dropped on it, or chosen and sent with the button, go in one
// request each (the API's POST /api/videos), each with its own progress bar; the page
// is never POSTed, so a reload sends nothing again. Without this script the form posts
// and is redirected to its summary.
"use strict";

(function () {
  const form = document.getElementById("upload");
  const list = document.getElementById("upload-list");
  const input = document.getElementById("upload-files");
  const drop = document.getElementById("drop");
  if (!form || !list || !input || !drop) return;
  const csrf = form.querySelector('input[name="csrf"]').value;
  const maxBytes = Number(form.dataset.maxBytes);

  function row(file) {
    const item = document.createElement("li");
    item.className = "upload";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = file.name;  // text, never markup
    const bar = document.createElement("progress");
    bar.max = 100;
    bar.value = 0;
    const state = document.createElement("span");
    state.dataset.field = "state";
    state.textContent = "waiting";
    item.append(name, bar, state);
    list.append(item);
    return { item, bar, state };
  }

  function settle(parts, text, failed) {
    parts.bar.value = 100;
    parts.state.textContent = text;
    parts.item.classList.add(failed ? "upload-failed" : "upload-done");
  }

  function send(file) {
    const parts = row(file);
    if (maxBytes && file.size > maxBytes) {
      settle(parts, "refused: larger than the upload limit", true);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const request = new XMLHttpRequest();
      request.open("POST", "/api/videos");
      request.setRequestHeader("X-CSRF-Token", csrf);
      request.responseType = "json";
      request.upload.addEventListener("progress", (event) => {
        if (event.lengthComputable) parts.bar.value = Math.round((100 * event.loaded) / event.total);
        parts.state.textContent = `${parts.bar.value}%`;
      });
      request.addEventListener("load", () => {
        const body = request.response || {};
        const placed = (body.files || [])[0];
        if (!placed) {
          settle(parts, `refused: ${body.detail || request.status}`, true);
        } else if (placed.refused) {
          settle(parts, `refused: ${placed.refused}`, true);
        } else if (placed.duplicate_of !== null) {
          settle(parts, "already in the library: ", false);
          const link = document.createElement("a");
          link.href = `/videos/${encodeURIComponent(placed.duplicate_of)}`;
          link.textContent = `video ${placed.duplicate_of}`;
          parts.state.append(link);
        } else {
          settle(parts, "uploaded: waiting for the watcher", false);
          parts.item.dataset.pollSha256 = placed.sha256;
          window.actiontagPoll && window.actiontagPoll();
        }
        resolve();
      });
      request.addEventListener("error", () => {
        settle(parts, "the upload failed: the server could not be reached", true);
        resolve();
      });
      const body = new FormData();
      body.append("file", file, file.name);
      parts.state.textContent = "0%";
      request.send(body);
    });
  }

  async function sendAll(files) {
    for (const file of files) await send(file);  // one at a time: each bar moves in turn
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const files = [...input.files];
    input.value = "";
    sendAll(files);
  });
  ["dragenter", "dragover"].forEach((kind) =>
    drop.addEventListener(kind, (event) => {
      event.preventDefault();
      drop.classList.add("dragging");
    }),
  );
  ["dragleave", "drop"].forEach((kind) =>
    drop.addEventListener(kind, () => drop.classList.remove("dragging")),
  );
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    sendAll([...event.dataTransfer.files]);
  });
})();
