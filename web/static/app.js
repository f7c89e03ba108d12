// actiontag's pages: click a timeline segment to seek the player there, or step from
// segment to segment with the keyboard, a playhead following the player; follow
// unfinished jobs (and uploads the watcher has not recorded yet) without reloading;
// ask before a form that deletes.
"use strict";

const POLL_MS = 1500;
const FINISHED = new Set(["done", "failed", "superseded"]);

function seek(seconds) {
  const player = document.getElementById("player");
  if (!player || !Number.isFinite(seconds)) return;
  const go = () => { player.currentTime = seconds; };
  if (player.readyState >= 1) go(); else player.addEventListener("loadedmetadata", go, { once: true });
}

document.addEventListener("click", (event) => {
  const target = event.target.closest("[data-start]");
  if (!target || !document.getElementById("player")) return;
  event.preventDefault();
  seek(parseFloat(target.dataset.start));
  markCurrent(target.classList.contains("segment") ? target : null);
});

// The newest job's timeline (the first on the page) is the one keys step through.
function segmentStarts() {
  const timeline = document.querySelector(".job .timeline");
  if (!timeline) return [];
  return [...timeline.querySelectorAll(".segment")]
    .map((el) => ({ el, start: parseFloat(el.dataset.start) }))
    .filter((s) => Number.isFinite(s.start))
    .sort((a, b) => a.start - b.start);
}

// The segment after (step 1) or before (step -1) the player's position: "before" skips
// the one playing when it began more than a moment ago, as a player's previous does.
function stepSegment(step) {
  const player = document.getElementById("player");
  const segments = segmentStarts();
  if (!player || !segments.length) return null;
  const now = player.currentTime;
  const EPSILON = 0.05;
  let target = null;
  if (step > 0) target = segments.find((s) => s.start > now + EPSILON);
  else target = [...segments].reverse().find((s) => s.start < now - EPSILON);
  if (!target) return null;
  seek(target.start);
  markCurrent(target.el);
  return target;
}

function markCurrent(element) {
  document.querySelectorAll(".segment.current").forEach((el) => el.classList.remove("current"));
  if (element) element.classList.add("current");
}

function typing(target) {
  return target.closest && target.closest("input, textarea, select, [contenteditable]");
}

document.addEventListener("keydown", (event) => {
  if (event.altKey || event.ctrlKey || event.metaKey || typing(event.target)) return;
  const onTimeline = event.target.closest && event.target.closest(".timeline");
  let step = 0;
  if (event.key === "n" || event.key === "]") step = 1;
  else if (event.key === "p" || event.key === "[") step = -1;
  else if (onTimeline && event.key === "ArrowRight") step = 1;
  else if (onTimeline && event.key === "ArrowLeft") step = -1;
  if (!step) return;
  event.preventDefault();
  const target = stepSegment(step);
  if (target && onTimeline) target.el.focus();
});

// Each timeline's playhead at the player's position, moved every frame while it plays.
function followPlayer() {
  const player = document.getElementById("player");
  if (!player) return;
  let frame = 0;
  const place = () => {
    document.querySelectorAll(".timeline[data-span]").forEach((timeline) => {
      const span = parseFloat(timeline.dataset.span);
      const head = timeline.querySelector(".playhead");
      if (!head || !(span > 0)) return;
      const fraction = Math.max(0, Math.min(1, player.currentTime / span));
      head.style.left = `${(fraction * 100).toFixed(3)}%`;
      head.classList.add("shown");
    });
  };
  const tick = () => {
    place();
    frame = player.paused ? 0 : requestAnimationFrame(tick);
  };
  player.addEventListener("play", () => { if (!frame) frame = requestAnimationFrame(tick); });
  ["timeupdate", "seeked", "loadedmetadata"].forEach((kind) => player.addEventListener(kind, place));
}
followPlayer();

document.addEventListener("submit", (event) => {
  const form = event.target.closest("form[data-confirm]");
  if (form && !window.confirm(form.dataset.confirm)) event.preventDefault();
});

// A player the browser cannot feed (a format it does not decode, a file gone from the
// inbox) says so, with the download link, instead of staying black at 0:00.
async function explainPlayerError(player) {
  const box = document.getElementById("player-message");
  if (!box || !box.hidden) return;
  let reason = "Your browser cannot play this video.";
  try {
    const response = await fetch(player.currentSrc || player.src, {
      credentials: "same-origin",
      headers: { Range: "bytes=0-0" },
    });
    if (response.status === 410 || response.status === 404) {
      const body = await response.json().catch(() => ({}));
      const detail = String(body.detail || response.status).replace(/\.$/, "");
      reason = `The video's file cannot be served: ${detail}.`;
    }
  } catch (error) {
    reason = "The video could not be loaded from the server.";
  }
  box.querySelector('[data-field="player-reason"]').textContent = reason;
  box.hidden = false;
  player.hidden = true;
}

function watchPlayer() {
  const player = document.getElementById("player");
  if (!player) return;
  player.addEventListener("error", () => explainPlayerError(player));
  if (player.error) explainPlayerError(player);  // failed before this script ran
}
watchPlayer();

// A moment's "play from here" link: seek there, and play where the browser lets a page
// start playing (it may want a click on the player first).
function seekFromHash() {
  const match = /^#t=([0-9.]+)$/.exec(location.hash);
  if (!match) return;
  seek(parseFloat(match[1]));
  const player = document.getElementById("player");
  if (player) player.play().catch(() => {});
}

async function getJSON(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
  if (response.status === 404) return null;
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

function showState(element, state) {
  const field = element.querySelector('[data-field="state"]');
  if (!field) return;
  let badge = field.classList.contains("state") ? field : field.querySelector(".state");
  if (!badge) {
    badge = document.createElement("span");
    field.replaceChildren(badge);
  }
  badge.className = `state state-${state}`;
  badge.textContent = state;
}

async function followJob(element) {
  const id = element.dataset.pollJob;
  const job = await getJSON(`/api/jobs/${encodeURIComponent(id)}`);
  if (!job) return;
  if (element.classList.contains("job") && element.dataset.state !== job.state) {
    // The video page: swap in the job's panel (results, timeline) as the server renders it.
    const response = await fetch(`/jobs/${encodeURIComponent(id)}/panel`, { credentials: "same-origin" });
    if (response.ok) {
      const holder = document.createElement("div");
      holder.innerHTML = await response.text();  // server-rendered, every value escaped
      const panel = holder.querySelector("section.job");
      if (panel) element.replaceWith(panel);
    }
    return;
  }
  showState(element, job.state);
  const label = element.querySelector('[data-field="label"]');
  const confidence = element.querySelector('[data-field="confidence"]');
  if (job.top && label) label.textContent = job.top.label;
  if (job.top && confidence) confidence.textContent = `${Math.round(job.top.confidence * 100)}%`;
  if (FINISHED.has(job.state)) delete element.dataset.pollJob;
}

async function followUpload(element) {
  const video = await getJSON(`/api/videos/${encodeURIComponent(element.dataset.pollSha256)}`);
  if (!video || !video.jobs.length) return;
  const job = video.jobs[video.jobs.length - 1];
  const field = element.querySelector('[data-field="state"]');
  const link = document.createElement("a");
  link.href = video.page;
  link.textContent = `video ${video.video_id}`;
  const badge = document.createElement("span");
  badge.className = `state state-${job.state}`;
  badge.textContent = job.state;
  const parts = [badge, " ", link];
  if (job.top) parts.push(` ${job.top.label} ${Math.round(job.top.confidence * 100)}%`);
  if (job.error) parts.push(` ${job.error}`);
  field.replaceChildren(...parts);
  if (FINISHED.has(job.state)) delete element.dataset.pollSha256;
}

let polling = false;

async function poll() {
  polling = true;
  const work = [];
  document.querySelectorAll("[data-poll-job]").forEach((el) => work.push(followJob(el)));
  document.querySelectorAll("[data-poll-sha256]").forEach((el) => work.push(followUpload(el)));
  await Promise.allSettled(work);
  if (document.querySelector("[data-poll-job], [data-poll-sha256]")) setTimeout(poll, POLL_MS);
  else polling = false;
}

// For the upload page's script: follow the files it just placed.
window.actiontagPoll = () => { if (!polling) { polling = true; setTimeout(poll, POLL_MS); } };

document.addEventListener("DOMContentLoaded", () => {
  seekFromHash();
  if (document.querySelector("[data-poll-job], [data-poll-sha256]")) window.actiontagPoll();
});
