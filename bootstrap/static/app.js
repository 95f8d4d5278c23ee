// The annotation page: one question at a time over the JSON API (see bootstrap/server.py).
//
// Every piece of corpus or rule text reaches the page through textContent or a text node,
// never innerHTML: a text containing <script> or <img onerror> is shown as the characters it is.
"use strict";

const ANNOTATOR = new URLSearchParams(location.search).get("session") || "default";
const CONTEXT_CHARS = 320; // shown on each side of the span when the text is longer than that
const KEYS = { a: "accept", x: "reject", " ": "ignore" };
const ANSWER_ICONS = { accept: "✓", reject: "✗", ignore: "⊘" };

const QUEUE_LIMIT = 10; // keys pressed while an answer is in flight, waiting their turn

let task = null; // the question on screen
let busy = false; // one request at a time; what is asked for meanwhile waits in `queued`
const queued = []; // [{ run, key }]: each runs on the question on screen when its turn comes
const notTaken = []; // keys refused since the queue last emptied: said in words once it has
let recentShown = []; // the recent list on screen, to say what an undo took back
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

/** Run one request with the page locked; one asked for meanwhile waits its turn, in order.
 *
 * A person answering at speed presses the next key before the last answer is stored. Each
 * queued key runs once the one before it is stored and the next question is on screen, so it
 * answers the question that follows, as it would have had the page been quicker. The queue is
 * shown while it waits; a key beyond QUEUE_LIMIT is refused, and said to be once the queue has
 * emptied, never dropped unseen. On an error, show it and redraw from the server (the question
 * may have been answered in another tab); the keys still waiting are refused too, since they
 * were meant for questions that are not the ones now shown. */
async function run(action, key = "") {
  if (busy) {
    if (queued.length >= QUEUE_LIMIT) notTaken.push(describeKey(key));
    else queued.push({ run: action, key });
    renderQueue();
    return;
  }
  busy = true;
  document.body.dataset.state = "busy";
  try {
    setStatus("");
    await action();
  } catch (error) {
    notTaken.push(...queued.splice(0).map((item) => describeKey(item.key))); // meant for other questions
    setStatus(error.message, true);
    await refresh().catch(() => {}); // the server is unreachable: keep the message and the card
  } finally {
    busy = false;
    document.body.dataset.state = task ? "ready" : "done";
    const next = queued.shift();
    renderQueue();
    if (next) run(next.run, next.key);
    else if (notTaken.length) {
      addStatus(`Not taken, pressed while answers were saving: ${notTaken.splice(0).join(", ")}.`, true);
      renderQueue();
    }
  }
}

const KEY_NAMES = { accept: "a (accept)", reject: "x (reject)", ignore: "space (ignore)", undo: "backspace (undo)" };
const describeKey = (key) => KEY_NAMES[key] || key || "a click";

function renderQueue() {
  const waiting = queued.map((item) => describeKey(item.key));
  const parts = waiting.length ? [`Saving… then ${waiting.join(", then ")}.`] : [];
  if (notTaken.length) parts.push(`Not taken: ${notTaken.length} (${QUEUE_LIMIT} keys were waiting already).`);
  $("queue").hidden = parts.length === 0;
  $("queue").textContent = parts.join(" ");
  document.body.dataset.queued = String(waiting.length);
}

function setStatus(message, isError = false) {
  const status = $("status");
  status.textContent = message;
  status.classList.toggle("error", isError);
}

function addStatus(message, isError = false) {
  const status = $("status");
  status.textContent = status.textContent ? `${status.textContent} ${message}` : message;
  if (isError) status.classList.add("error");
}

// Rendering ------------------------------------------------------------------------------

function renderTask(next) {
  task = next;
  wholeText = false;
  const card = $("card");
  card.dataset.taskHash = task ? task.task_hash : "";
  $("done").hidden = Boolean(task);
  for (const part of card.querySelectorAll(".card-head, .text, .votes")) part.hidden = !task;
  if (!task) $("boundary").hidden = true;
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
  renderBoundary(task);
  renderVotes(task.votes || [], task);
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

/** Who voted what, in words: the rule or function by its name (its column id in the tooltip),
 * what its vote says about this span, and how often its votes are right so far. */
function renderVotes(votes, current) {
  const rows = votes.map((vote) => {
    const inFavour = vote.vote === current.label;
    const precision = vote.precision === null || vote.precision === undefined ? NaN : Number(vote.precision);
    const who = el("td", "lf", vote.lf.replace(/#boundary$/, ""));
    who.title = `${vote.lf} (${vote.kind})`;
    const right = el("td", "num", Number.isFinite(precision) ? `${Math.round(precision * 100)}%` : "–",
      el("span", "meter small", meterFill(precision)));
    right.title = "How often this one's votes are right, estimated from the rules' agreement and your decisions so far";
    return el("tr", inFavour ? "for" : "against", who,
      el("td", "says", el("span", inFavour ? "chip for" : "chip against", voteInWords(vote, current)),
        el("span", "visually-hidden", inFavour ? " (for)" : " (against)"),
        vote.counted === false ? el("span", "muted", " not counted: it learned from these rules") : null),
      right);
  });
  if (rows.length === 0) rows.push(el("tr", null, el("td", "muted", "no votes")));
  $("votes").tBodies[0].replaceChildren(...rows);
}

const RELATION_WORDS = { longer: "a longer span", shorter: "a shorter span inside this one", crossing: "an overlapping span" };

/** One vote as a newcomer reads it: "says DISEASE", "says not DISEASE", "matched a longer span: …". */
function voteInWords(vote, current) {
  if (vote.kind === "boundary") {
    const source = vote.lf.replace(/#boundary$/, "");
    const other = (current.overlaps || []).find((overlap) => overlap.voters.some((voter) => voter.lf === source));
    if (!other) return "matched an overlapping span, not this one";
    return `matched ${RELATION_WORDS[other.relation]}: “${other.text}”`;
  }
  if (vote.vote === current.label) return vote.kind === "proposer" ? `proposed this as ${current.label}` : `says ${current.label}`;
  if (vote.vote === "not an entity") return "says not an entity";
  return `says ${vote.vote}`; // a negative rule: "not DISEASE"
}

/** On a boundary question, what accept means and the overlapping candidates, longest first. */
function renderBoundary(current) {
  const overlaps = current.overlaps || [];
  $("boundary").hidden = overlaps.length === 0;
  if (!overlaps.length) return;
  const others = overlaps.slice(0, 3).map((overlap) => el("li", null,
    el("span", "boundary-relation", `${RELATION_WORDS[overlap.relation]}: `), el("span", "boundary-text", `“${overlap.text}”`)));
  $("boundary-meaning").replaceChildren(`Accept means exactly “${current.display.span}”`,
    ` is a ${current.label}, not more and not less. If the ${current.label} is another span, reject this one: that span is a question of its own.`);
  $("boundary-others").replaceChildren(...others);
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
  $("method").textContent = handoffSummary(handoff, progress.method_reason || progress.method);
  renderEstimates(progress.estimates);
  renderCorpus(progress.corpus);
}

/** The labels' precision and recall with 95% intervals, from exploration answers, and whether
 * another hundred decisions are likely to change much (bootstrap/estimates.py). */
function renderEstimates(estimates) {
  if (!estimates) return;
  const quality = estimates.quality || {};
  const interval = (x) => (Array.isArray(x) ? `${x[0].toFixed(2)} [${x[1].toFixed(2)}–${x[2].toFixed(2)}]` : "–");
  $("est-precision").textContent = interval(quality.precision);
  $("est-recall").textContent = interval(quality.recall);
  $("est-f").textContent = interval(quality.f);
  $("est-basis").textContent = quality.n
    ? `From the last ${quality.n} exploration answers (marked questions, drawn at random); 95% intervals.`
    : "Estimated from exploration answers (marked questions, drawn at random): none yet.";
  renderModelQuestions(estimates.model_questions);
  const hint = estimates.hint;
  if (!hint) return;
  const changes = `The next ${hint.next} decisions would change about ${Math.round(hint.expected_changes)} of ${hint.candidates} candidate labels (${(hint.share * 100).toFixed(1)}%)`;
  $("stopping-hint").textContent = hint.worth_asking
    ? `${changes}: worth asking.`
    : `${changes}: more decisions are unlikely to help. Train a model and look at what it misses, or write rules for it.`;
  $("stopping-hint").className = hint.worth_asking ? "muted" : "hint-stop";
}

/** The model's share of the questions and how often its own spans are accepted, beside the
 * rules' questions (bootstrap/ranking.py). */
function renderModelQuestions(model) {
  const line = $("model-questions");
  line.hidden = !model;
  if (!model) return;
  const accepted = (side) => {
    const n = model[`${side}_answered`];
    return n ? `${pct(model[`${side}_accepted`] / n)} of ${n} accepted` : "none answered yet";
  };
  line.textContent = `The model's own spans get ${pct(model.share)} of the ranked questions: ` +
    `theirs ${accepted("model")}, the rules' ${accepted("rules")}.`;
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
    const verdict = !last.compared ? (last.adopted ? "too few held-out accepts to compare: the model proposes, your answers judge it" : "rules kept")
      : last.adopted ? "model adopted" : "rules kept";
    parts.push(`Last model: F ${last.model_f.toFixed(2)} vs rules ${last.rules_f.toFixed(2)} on held-out texts (${verdict}).`);
  }
  parts.push(`Probabilities: ${method || "?"}.`);  // which fit, and why (the decisions decide)
  return parts.join(" ");
}

const pct = (x) => `${Math.round(x * 100)}%`;

function renderRecent(recent) {
  if (!recent) return;
  recentShown = recent;
  $("recent-empty").hidden = recent.length > 0;
  $("recent").replaceChildren(...recent.map((item) => {
    const buttons = ["accept", "reject", "ignore"].map((answer) => {
      const button = el("button", `small ${answer}${item.answer === answer ? " active" : ""}`, ANSWER_ICONS[answer]);
      button.type = "button";
      button.title = item.answer === answer ? `answered ${answer}` : `change to ${answer}`;
      button.dataset.answer = answer;
      button.addEventListener("click", () => change(item.answer_id, answer, item));
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

/** Answer the question on screen when this runs: for a queued key, the one after the last answer. */
function answer(value) {
  return run(async () => {
    if (!task) throw new Error(`No question left to ${value}.`);
    const state = await api("POST", "/api/answer", { task_hash: task.task_hash, answer: value });
    flash(value);
    renderState(state);
  }, value);
}

/** Undo the last answer and say which one it was: the span, its label and the answer taken back. */
function undo() {
  return run(async () => {
    const shownBefore = recentShown;
    const state = await api("POST", "/api/undo", {});
    renderState(state);
    setStatus(undoneMessage(state, shownBefore));
  }, "undo");
}

function undoneMessage(state, shownBefore) {
  const hash = state.undone_task_hash;
  if (!hash) return "Nothing to undo.";
  const item = shownBefore.find((entry) => entry.task_hash === hash);
  const span = item ? item.span_text : state.task && state.task.display ? state.task.display.span : "";
  const label = item ? item.label : state.task ? state.task.label : "";
  const what = item ? `your ${item.answer} of` : "the answer on";
  return `Undid ${what} “${span}” as ${label}: it is the question again.`;
}

function change(answerId, value, item) {
  return run(async () => {
    const state = await api("POST", "/api/change", { answer_id: answerId, answer: value });
    renderProgress(state.progress);
    renderRecent(state.recent);
    setStatus(`Changed “${item.span_text}” (${item.label}) from ${item.answer} to ${value}.`);
  }, `change to ${value}`);
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

/** The rest of the corpus read in the background: how far it is, and polling until its questions join. */
let corpusPoll = null;
const WAITING_FOR_CORPUS = "No question left in the texts read so far: the rest of the corpus joins when it is read (this page checks every few seconds).";
function renderCorpus(corpus) {
  const line = $("corpus");
  line.hidden = !corpus;
  if (!corpus) return;
  const read = Number(corpus.texts_read).toLocaleString("en");
  const first = Number(corpus.texts_asked ?? corpus.first_texts).toLocaleString("en");
  if (corpus.error) {
    line.textContent = `Reading the corpus stopped: ${corpus.error}. Questions come from the first ${first} texts.`;
    line.classList.add("error");
  } else if (corpus.reading) {
    line.textContent = `Reading the corpus: ${read} texts read. Questions come from the first ${first} until it is done.`;
  } else {
    line.textContent = `Corpus read: ${read} texts.`;
  }
  const waiting = corpus.reading && !corpus.error;
  $("done").textContent = waiting ? WAITING_FOR_CORPUS : $("done").dataset.text;
  if (waiting && corpusPoll === null) {
    corpusPoll = setInterval(() => { if (!busy) run(task ? refreshProgress : refresh); }, 3000);
  } else if (!waiting && corpusPoll !== null) {
    clearInterval(corpusPoll);
    corpusPoll = null;
  }
}

async function refreshProgress() {
  renderProgress(await api("GET", "/api/progress"));
}

/** Everything from the server: this annotator's question, the progress, the recent list. */
async function refresh() {
  const [next, progress, recent] = await Promise.all([
    api("GET", query("/api/next")), api("GET", "/api/progress"), api("GET", query("/api/recent")),
  ]);
  renderState({ task: next.task, progress, recent: recent.recent });
}

start();
