// The annotation page: one question at a time over the JSON API (see bootstrap/server.py).
//
// Every piece of corpus or rule text reaches the page through textContent or a text node,
// never innerHTML: a text containing <script> or <img onerror> is shown as the characters it is.
"use strict";

const ANNOTATOR = new URLSearchParams(location.search).get("session") || "default";
const CONTEXT_CHARS = 320; // shown on each side of the span when the text is longer than that
const KEYS = { a: "accept", x: "reject", " ": "ignore" };
const ANSWER_ICONS = { accept: "✓", reject: "✗", ignore: "⊘" };

let task = null; // the question on screen
let busy = false; // one request at a time: a key pressed meanwhile is dropped, not queued
let wholeText = false;

const $ = (id) => document.getElementById(id);

/** An element with a class and children (strings become text nodes, never markup). */
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(method, path, body) {
  const options = { method, headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify({ ...body, session: ANNOTATOR });
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.detail || `${response.status} ${response.statusText}`);
  return data;
}

const query = (path) => `${path}?session=${encodeURIComponent(ANNOTATOR)}`;

/** Run one request with the page locked. On an error, show it and redraw from the server: the
 * question may have been answered in another tab, and asking it again would fail again. */
async function run(action) {
  if (busy) return;
  busy = true;
  document.body.dataset.state = "busy";
  try {
    await action();
    setStatus("");
  } catch (error) {
    setStatus(error.message, true);
    await refresh().catch(() => {}); // the server is unreachable: keep the message and the card
  } finally {
    busy = false;
    document.body.dataset.state = task ? "ready" : "done";
  }
}

function setStatus(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

// Rendering ------------------------------------------------------------------------------

function renderTask(next) {
  task = next;
  wholeText = false;
  const card = $("card");
  card.dataset.taskHash = task ? task.task_hash : "";
  $("done").hidden = Boolean(task);
  for (const part of card.querySelectorAll(".card-head, .text, .votes")) part.hidden = !task;
  for (const button of document.querySelectorAll(".action[data-answer]")) button.disabled = !task;
  if (!task) {
    $("toggle-context").hidden = true;
    return;
  }
  $("task-label").textContent = task.label;
  $("exploration").hidden = !task.exploration;
  $("scorer").hidden = task.scorer !== "model";
  const p = Number(task.probability);
  $("probability").textContent = Number.isFinite(p) ? `p = ${p.toFixed(2)}` : "p = ?";
  $("probability-fill").style.width = `${Number.isFinite(p) ? Math.round(p * 100) : 0}%`;
  renderText();
  renderVotes(task.votes || [], task.label);
}

/** The text with the span marked: all of it if short, else CONTEXT_CHARS around the span. */
function renderText() {
  const { before, span, after } = task.display;
  const head = Array.from(before); // code points: never cut an emoji in half
  const tail = Array.from(after);
  const clipHead = !wholeText && head.length > CONTEXT_CHARS;
  const clipTail = !wholeText && tail.length > CONTEXT_CHARS;
  const shownBefore = clipHead ? "…" + fromWordStart(head.slice(-CONTEXT_CHARS).join("")) : before;
  const shownAfter = clipTail ? toWordEnd(tail.slice(0, CONTEXT_CHARS).join("")) + "…" : after;
  const mark = el("mark", "span", span, el("span", "span-label", task.label));
  $("text").replaceChildren(shownBefore, mark, shownAfter);
  const toggle = $("toggle-context");
  toggle.hidden = !(clipHead || clipTail || wholeText);
  toggle.textContent = wholeText ? "show less" : "show the whole text";
}

const fromWordStart = (s) => s.replace(/^\S*\s/, "");
const toWordEnd = (s) => s.replace(/\s\S*$/, "");

function renderVotes(votes, label) {
  const rows = votes.map((vote) => {
    const inFavour = vote.vote === label;
    const precision = vote.precision === null || vote.precision === undefined ? NaN : Number(vote.precision);
    return el("tr", inFavour ? "for" : "against",
      el("td", "lf", vote.lf),
      el("td", "kind", vote.kind),
      el("td", null, el("span", inFavour ? "chip for" : "chip against", vote.vote),
        el("span", "visually-hidden", inFavour ? " (for)" : " (against)")),
      el("td", "num", Number.isFinite(precision) ? `${Math.round(precision * 100)}%` : "–",
        el("span", "meter small", meterFill(precision))));
  });
  if (rows.length === 0) rows.push(el("tr", null, el("td", "muted", "no votes")));
  $("votes").tBodies[0].replaceChildren(...rows);
}

function meterFill(fraction) {
  const fill = el("span", "meter-fill");
  fill.style.width = `${Number.isFinite(fraction) ? Math.round(Math.min(1, Math.max(0, fraction)) * 100) : 0}%`;
  return fill;
}

function renderProgress(progress) {
  if (!progress) return;
  if (progress.dataset) $("dataset").textContent = progress.dataset;
  $("answers").textContent = progress.answers ?? 0;
  const remaining = progress.remaining ?? "–";
  $("remaining").textContent = progress.total !== undefined ? `${remaining} of ${progress.total}` : remaining;
  const byAnswer = progress.by_answer || {};
  for (const answer of ["accept", "reject", "ignore"]) $(`n-${answer}`).textContent = byAnswer[answer] ?? 0;

  const handoff = progress.handoff || {};
  const needed = Number(handoff.accepts_needed_per_label) || 0;
  const accepts = { ...(progress.accepts_per_label || {}), ...(handoff.accepts || {}) };
  const items = Object.keys(accepts).sort().map((label) => {
    const n = Number(accepts[label]) || 0;
    return el("li", null,
      el("span", "handoff-label", label),
      el("span", "handoff-count", needed ? `${n} / ${needed} accepts` : `${n} accepts`),
      el("span", "meter", meterFill(needed ? n / needed : 0)));
  });
  $("handoff").replaceChildren(...items);
  $("method").textContent = handoffSummary(handoff, progress.method);
}

/** One or two sentences: who ranks the questions, and how the last trained model scored. */
function handoffSummary(handoff, method) {
  const parts = [];
  if (handoff.scorer === "model") parts.push("A trained model ranks the questions.");
  else if (handoff.training) parts.push("Training a model on the decisions so far…");
  else if (handoff.mode === "never") parts.push("The rules rank the questions (handoff off).");
  else parts.push(handoff.ready ? "Enough accepts to train a model." : "Not enough accepts to train a model yet.");
  const last = (handoff.runs || []).at(-1);
  if (last && Number.isFinite(last.model_f) && Number.isFinite(last.rules_f)) {
    const verdict = last.adopted ? "model adopted" : "rules kept";
    parts.push(`Last model: F ${last.model_f.toFixed(2)} vs rules ${last.rules_f.toFixed(2)} on held-out decisions (${verdict}).`);
  }
  parts.push(`Probabilities: ${method || "?"}.`);
  return parts.join(" ");
}

const pct = (x) => `${Math.round(x * 100)}%`;

function renderRecent(recent) {
  if (!recent) return;
  $("recent-empty").hidden = recent.length > 0;
  $("recent").replaceChildren(...recent.map((item) => {
    const buttons = ["accept", "reject", "ignore"].map((answer) => {
      const button = el("button", `small ${answer}${item.answer === answer ? " active" : ""}`, ANSWER_ICONS[answer]);
      button.type = "button";
      button.title = item.answer === answer ? `answered ${answer}` : `change to ${answer}`;
      button.dataset.answer = answer;
      button.addEventListener("click", () => change(item.answer_id, answer));
      return button;
    });
    const entry = el("li", `recent-item ${item.answer}`,
      el("div", "recent-span", el("span", "recent-text", item.span_text), el("span", "recent-label", item.label)),
      el("div", "recent-buttons", ...buttons));
    entry.dataset.answerId = item.answer_id;
    entry.title = item.text;
    return entry;
  }));
}

function renderState(state) {
  if ("task" in state) renderTask(state.task);
  renderProgress(state.progress);
  renderRecent(state.recent);
}

// Actions --------------------------------------------------------------------------------

function answer(value) {
  if (!task) return;
  const answered = task;
  return run(async () => {
    const state = await api("POST", "/api/answer", { task_hash: answered.task_hash, answer: value });
    flash(value);
    renderState(state);
  });
}

function undo() {
  return run(async () => renderState(await api("POST", "/api/undo", {})));
}

function change(answerId, value) {
  return run(async () => {
    const state = await api("POST", "/api/change", { answer_id: answerId, answer: value });
    renderProgress(state.progress);
    renderRecent(state.recent);
  });
}

function flash(value) {
  const card = $("card");
  card.classList.remove("flash-accept", "flash-reject", "flash-ignore");
  void card.offsetWidth; // restart the animation
  card.classList.add(`flash-${value}`);
}

function onKey(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  if (event.target instanceof HTMLElement && event.target.closest("input, textarea, select")) return;
  const key = event.key.length === 1 ? event.key.toLowerCase() : event.key; // caps lock on: still a
  if (key !== "Backspace" && !(key in KEYS)) return;
  event.preventDefault(); // space would scroll, backspace go back, a focused button be pressed again
  if (event.repeat) return; // a held key answers one question, not every one that follows unseen
  if (key === "Backspace") undo();
  else answer(KEYS[key]);
}

const SUGGESTIONS_SHOWN = 8; // the best ones; `bootstrap suggest-patterns` writes them all

/** Suggested pattern lines, each as the JSON line to copy and what it would have matched. */
async function suggest() {
  const { suggestions } = await api("GET", "/api/suggestions");
  const shown = suggestions.slice(0, SUGGESTIONS_SHOWN);
  const items = shown.map((item) => el("li", "suggestion",
    el("code", "suggestion-line", JSON.stringify({ ...item.pattern, comment: undefined })),
    el("span", "muted", `${item.negative ? "not " : ""}${item.label}: fixes ${item.fixes}, matches ${item.accepts} accepted / ${item.rejects} rejected`)));
  $("suggestions").replaceChildren(...(items.length ? items : [el("li", "muted", "Nothing to suggest yet.")]));
}

function start() {
  $("annotator").textContent = ANNOTATOR;
  for (const button of document.querySelectorAll(".action[data-answer]")) {
    button.addEventListener("click", () => {
      button.blur(); // else the next space press would click it again
      answer(button.dataset.answer);
    });
  }
  $("undo").addEventListener("click", undo);
  $("suggest").addEventListener("click", () => run(suggest));
  $("toggle-context").addEventListener("click", () => {
    wholeText = !wholeText;
    if (task) renderText();
  });
  document.addEventListener("keydown", onKey);
  run(refresh);
}

/** Everything from the server: this annotator's question, the progress, the recent list. */
async function refresh() {
  const [next, progress, recent] = await Promise.all([
    api("GET", query("/api/next")), api("GET", "/api/progress"), api("GET", query("/api/recent")),
  ]);
  renderState({ task: next.task, progress, recent: recent.recent });
}

start();
