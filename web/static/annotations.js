// The video page's corrections: each button sends one annotation to the API (confirm,
// relabel, adjust, delete, a new segment from the player's position, or an undo), then
// the server renders the people's segments again and the page swaps them in.
"use strict";

function section() {
  return document.getElementById("annotations");
}

function say(message) {
  const field = section().querySelector('[data-field="annotation-error"]');
  if (field) field.textContent = message;
}

function detailOf(answer, status) {
  // Our errors carry a sentence; FastAPI's 422 a list of what each field lacks.
  if (answer && typeof answer.detail === "string") return answer.detail;
  if (answer && Array.isArray(answer.detail)) {
    return answer.detail.map((e) => `${(e.loc || []).slice(1).join(".")}: ${e.msg}`).join("; ");
  }
  return `the server answered ${status}`;
}

async function send(method, path, body) {
  const panel = section();
  const response = await fetch(`/api/videos/${encodeURIComponent(panel.dataset.video)}${path}`, {
    method,
    credentials: "same-origin",
    headers: {
      Accept: "application/json",
      "Content-Type": "application/json",
      "X-CSRF-Token": panel.dataset.csrf,
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.ok) return true;
  let answer = null;
  try { answer = await response.json(); } catch (error) { answer = null; }
  say(detailOf(answer, response.status));
  return false;
}

async function refresh() {
  const panel = section();
  const response = await fetch(`/videos/${encodeURIComponent(panel.dataset.video)}/annotations/panel`, {
    credentials: "same-origin",
  });
  if (!response.ok) { say(`the segments could not be read again (${response.status}): reload the page`); return; }
  const holder = document.createElement("div");
  holder.innerHTML = await response.text();  // server-rendered, every value escaped
  const fresh = holder.querySelector("section.annotations");
  if (fresh) panel.replaceWith(fresh);
}

function number(row, name) {
  const value = row.querySelector(`input[name="${name}"]`).value;
  return value === "" ? null : Number(value);
}

function target(row) {
  if (row.dataset.segmentId) return { segment_id: Number(row.dataset.segmentId) };
  return { annotation_id: Number(row.dataset.annotationId) };
}

function newSegment(panel) {
  const player = document.getElementById("player");
  const start = player ? player.currentTime : 0;
  const length = Number(panel.querySelector('input[name="new-length"]').value) || 2;
  let end = start + length;
  if (player && Number.isFinite(player.duration) && player.duration > start) end = Math.min(end, player.duration);
  const label = panel.querySelector('input[name="new-label"]').value;
  return { action: "new", start_s: Number(start.toFixed(3)), end_s: Number(end.toFixed(3)), label };
}

function request(button) {
  const act = button.dataset.act;
  const panel = section();
  if (act === "new") return ["POST", "/annotations", newSegment(panel)];
  const row = button.closest("tr.person");
  if (act === "undo") return ["DELETE", `/annotations/${encodeURIComponent(button.dataset.undo)}`, undefined];
  const body = { action: act, ...target(row) };
  if (act === "relabel") body.label = row.querySelector('input[name="label"]').value;
  if (act === "adjust") {
    body.start_s = number(row, "start_s");
    body.end_s = number(row, "end_s");
  }
  return ["POST", "/annotations", body];
}

document.addEventListener("click", async (event) => {
  const button = event.target.closest("#annotations [data-act]");
  if (!button) return;
  event.preventDefault();
  say("");
  button.disabled = true;
  try {
    const [method, path, body] = request(button);
    if (await send(method, path, body)) await refresh();
  } catch (error) {
    say(`the change was not sent (${error.message}): try again`);
  } finally {
    button.disabled = false;
  }
});

// A job that finishes while the page is open (app.js swaps its done panel in) may be
// the one the people's segments now start from: read them again, unless someone is
// typing in them (a reload shows them then).
new MutationObserver((changes) => {
  const done = changes.some((change) => [...change.addedNodes].some(
    (node) => node.nodeType === Node.ELEMENT_NODE && node.matches("section.job") && node.dataset.state === "done",
  ));
  const panel = section();
  if (!done || !panel) return;
  if (panel.contains(document.activeElement)) {
    say("a job finished: reload the page to correct its segments");
    return;
  }
  refresh();
}).observe(document.body, { childList: true, subtree: true });
