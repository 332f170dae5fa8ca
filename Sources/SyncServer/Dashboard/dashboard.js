// ERP Sync audit dashboard: plain DOM, no framework, no build step. ERP values are only ever inserted as text
// (textContent, createTextNode), never as HTML. The API token lives in sessionStorage and travels only in the
// Authorization header; the progress subscription is opened with a short-lived ticket (erp.subscriptionTicket).
"use strict";

const TOKEN_KEY = "erpSyncToken";
const state = { role: null, sources: [], subscription: null };

function $(id) { return document.getElementById(id); }

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function cell(row, text, className) { row.appendChild(element("td", text, className)); }

function say(text, isError) {
  const message = $("message");
  message.textContent = text;
  message.className = isError ? "error" : "";
}

class APIError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}

// One tRPC call: GET for queries (input in the query string), POST for mutations (input as the JSON body).
async function call(path, input, isMutation) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = { "Authorization": "Bearer " + token };
  let url = "/trpc/" + path;
  const init = { method: isMutation ? "POST" : "GET", headers, cache: "no-store", credentials: "omit" };
  if (isMutation) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(input === undefined ? {} : input);
  } else if (input !== undefined) {
    url += "?input=" + encodeURIComponent(JSON.stringify(input));
  }
  const response = await fetch(url, init);
  let body;
  try { body = await response.json(); } catch (error) { throw new APIError("BAD_RESPONSE", "the server answered " + response.status); }
  if (body.error) {
    const code = body.error.data && body.error.data.code ? body.error.data.code : "ERROR";
    throw new APIError(code, body.error.message);
  }
  return body.result.data;
}

function formatLag(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  if (seconds < 120) return seconds + " s";
  if (seconds < 7200) return Math.round(seconds / 60) + " min";
  if (seconds < 172800) return Math.round(seconds / 3600) + " h";
  return Math.round(seconds / 86400) + " days";
}

// MARK: sign-in

async function signIn(token) {
  sessionStorage.setItem(TOKEN_KEY, token);
  try {
    const me = await call("erp.whoami");
    state.role = me.role;
    $("whoami").textContent = "Signed in as " + me.name + " (" + me.role + ")";
  } catch (error) {
    sessionStorage.removeItem(TOKEN_KEY);
    $("sign-in-error").textContent = error.code === "UNAUTHORIZED" ? "That token is not valid." : error.message;
    return;
  }
  document.body.classList.toggle("admin", state.role === "admin");
  if (state.role !== "admin") document.querySelectorAll(".admin-only").forEach((node) => node.remove());
  $("sign-in-section").hidden = true;
  $("sign-out").hidden = false;
  $("app").hidden = false;
  await refreshAll();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  if (state.subscription) state.subscription.close();
  location.reload();
}

// MARK: sources

async function loadSources() {
  const status = await call("erp.getStatus");
  state.sources = status.sources;
  const body = $("sources").tBodies[0];
  body.replaceChildren();
  for (const source of status.sources) {
    const row = document.createElement("tr");
    row.appendChild(element("th", source.source)).setAttribute("scope", "row");
    cell(row, source.databaseType);
    const last = source.lastSync;
    cell(row, source.running ? "RUNNING" : (last ? last.status : "never run"), "status-" + (source.running ? "RUNNING" : (last ? last.status : "")));
    cell(row, last ? last.startTime + " (" + last.recordsFetched + " rows)" : "—");
    cell(row, formatLag(source.cursorLagSeconds));
    cell(row, source.lockHolder || "free");
    const next = source.nextScheduledSyncs && source.nextScheduledSyncs[0];
    cell(row, next ? next.time + " (" + next.syncType + ")" : "not scheduled");
    cell(row, source.openQuarantine);
    if (state.role === "admin") {
      const actions = document.createElement("td");
      const sync = element("button", "Sync now");
      sync.type = "button";
      sync.dataset.action = "sync";
      sync.setAttribute("aria-label", "Sync " + source.source + " now");
      sync.addEventListener("click", () => syncNow(source.source, sync));
      actions.appendChild(sync);
      row.appendChild(actions);
    }
    body.appendChild(row);
  }
  for (const id of ["run-source", "quarantine-source", "reconciliation-source"]) {
    const select = $(id);
    const keep = select.value;
    select.querySelectorAll("option[data-source]").forEach((node) => node.remove());
    for (const source of status.sources) {
      const option = element("option", source.source);
      option.value = source.source;
      option.dataset.source = "1";
      select.appendChild(option);
    }
    if (keep) select.value = keep;
  }
}

// Opens erp.onSyncProgress for `source` with a fresh ticket; resolves once the stream is connected.
async function openProgress(source) {
  const { ticket } = await call("erp.subscriptionTicket", {}, true);
  if (state.subscription) state.subscription.close();
  const url = "/trpc/erp.onSyncProgress?input=" + encodeURIComponent(JSON.stringify({ source })) +
    "&connectionParams=" + encodeURIComponent(JSON.stringify({ ticket }));
  const events = new EventSource(url);
  state.subscription = events;
  const bar = $("sync-progress");
  const text = $("progress-text");
  $("progress-panel").hidden = false;
  $("progress-label").textContent = "Sync progress of " + source;
  bar.max = 100;
  bar.value = 0;
  text.textContent = "0 %";
  events.onmessage = (message) => {
    let event;
    try { event = JSON.parse(message.data); } catch (error) { return; }
    if (event.type === "progress") {
      const expected = Math.max(event.expected || 0, event.fetched || 0, 1);
      const percent = Math.min(99, Math.floor(100 * event.fetched / expected));
      bar.value = percent;
      text.textContent = percent + " % (" + event.fetched + " of " + expected + " rows)";
    } else if (event.type === "finished") {
      bar.value = 100;
      text.textContent = "100 % — " + event.result.status + ", " + event.result.recordsFetched + " rows";
      events.close();
      refreshAll();
    }
  };
  await new Promise((resolve) => {
    events.addEventListener("connected", resolve, { once: true });
    events.onerror = resolve;
    setTimeout(resolve, 3000);
  });
}

async function syncNow(source, button) {
  button.disabled = true;
  try {
    await openProgress(source);
    say("Syncing " + source + " …");
    const outcome = await call("erp.syncNow", { source }, true);
    say(outcome.message, !outcome.success);
    $("sync-progress").value = 100;
    $("progress-text").textContent = "100 % — " + outcome.data.status + ", " + outcome.data.recordsFetched + " rows";
  } catch (error) {
    say(error.message, true);
  } finally {
    button.disabled = false;
    await refreshAll();
  }
}

// MARK: runs

async function loadRuns() {
  const input = { limit: Number($("run-limit").value) };
  if ($("run-source").value) input.source = $("run-source").value;
  const { syncs } = await call("erp.getSyncHistory", input);
  const wanted = $("run-status").value;
  const body = $("runs").tBodies[0];
  body.replaceChildren();
  for (const run of syncs.filter((run) => !wanted || run.status === wanted)) {
    const row = document.createElement("tr");
    cell(row, run.startTime);
    cell(row, run.source);
    cell(row, run.syncType);
    cell(row, run.status, "status-" + run.status);
    cell(row, run.recordsFetched);
    cell(row, run.recordsInserted);
    cell(row, run.recordsRejected);
    const open = element("button", "Open", "secondary");
    open.type = "button";
    open.setAttribute("aria-label", "Open run " + run.syncId);
    open.addEventListener("click", () => openRun(run.syncId));
    const actions = document.createElement("td");
    actions.appendChild(open);
    row.appendChild(actions);
    body.appendChild(row);
  }
}

async function openRun(syncId) {
  const { run, errors } = await call("erp.getRun", { syncId });
  const panel = $("run-detail");
  $("run-detail-title").textContent = "Run " + run.syncId;
  const fields = $("run-fields");
  fields.replaceChildren();
  for (const [label, value] of [["Source", run.source], ["Type", run.syncType], ["Status", run.status], ["Started", run.startTime],
    ["Ended", run.endTime], ["Duration", run.duration + " ms"], ["Fetched", run.recordsFetched], ["Inserted", run.recordsInserted],
    ["Updated", run.recordsUpdated], ["Rejected", run.recordsRejected], ["Cursor", (run.cursorFrom || "(start)") + " → " + (run.cursorTo || "(start)")],
    ["Triggered by", run.triggeredBy]]) {
    fields.appendChild(element("dt", label));
    fields.appendChild(element("dd", value));
  }
  const list = $("run-errors");
  list.replaceChildren();
  for (const error of run.errors.concat(errors)) {
    list.appendChild(element("li", (error.code || error.reasonCode) + ": " + error.message + (error.externalId ? " (row " + error.externalId + ")" : "")));
  }
  if (!list.children.length) list.appendChild(element("li", "none"));
  panel.hidden = false;
  $("run-detail-title").tabIndex = -1;
  $("run-detail-title").focus();
}

// MARK: quarantine

async function loadQuarantine() {
  const input = { kind: "record", limit: 100 };
  if ($("quarantine-source").value) input.source = $("quarantine-source").value;
  const { errors } = await call("erp.getErrors", input);
  const body = $("quarantine").tBodies[0];
  body.replaceChildren();
  for (const entry of errors) {
    const row = document.createElement("tr");
    cell(row, entry.source);
    cell(row, entry.externalId || "—");
    cell(row, entry.reasonCode);
    cell(row, entry.message);
    const raw = document.createElement("td");
    raw.appendChild(element("pre", entry.rawJSON || ""));
    row.appendChild(raw);
    cell(row, entry.lastSeenAt + " (" + entry.occurrences + "×)");
    if (state.role === "admin") {
      const actions = document.createElement("td");
      const button = element("button", "Reprocess");
      button.type = "button";
      button.setAttribute("aria-label", "Reprocess row " + (entry.externalId || entry.id) + " of " + entry.source);
      button.addEventListener("click", () => reprocess(entry, button));
      actions.appendChild(button);
      row.appendChild(actions);
    }
    body.appendChild(row);
  }
  if (!errors.length) {
    const row = document.createElement("tr");
    cell(row, "No quarantined rows.");
    body.appendChild(row);
  }
}

async function reprocess(entry, button) {
  button.disabled = true;
  const input = { source: entry.source };
  if (entry.externalId) input.keys = [entry.externalId];
  try {
    const result = await call("erp.reprocess", input, true);
    say("Reprocessed " + entry.source + ": " + (result.message || "done"));
    await refreshAll();
  } catch (error) {
    say(error.code === "NOT_FOUND" ? "Reprocess is not available on this server yet (no erp.reprocess procedure)." : error.message, true);
    button.disabled = false;
  }
}

// MARK: reconciliation

const SVG = "http://www.w3.org/2000/svg";

function svgNode(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

// Grouped bars per day: source and audit values of `days` ([{day, source, audit, mismatch}]).
function drawChart(container, days, label) {
  container.replaceChildren();
  if (!days.length) { container.appendChild(element("p", "No data.")); return; }
  const width = 900, height = 240, left = 60, bottom = 40, top = 10;
  const max = Math.max(1, ...days.map((d) => Math.max(d.source, d.audit)));
  const step = (width - left) / days.length;
  const bar = Math.max(1, step / 2 - 1);
  const svg = svgNode("svg", { viewBox: "0 0 " + width + " " + height, role: "img", "aria-label": label });
  svg.appendChild(svgNode("title", {}, label));
  svg.appendChild(svgNode("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }));
  svg.appendChild(svgNode("text", { x: 0, y: top + 10 }, max.toLocaleString()));
  svg.appendChild(svgNode("text", { x: 0, y: height - bottom }, "0"));
  const scale = (value) => (height - bottom - top) * Math.max(0, value) / max;  // negative days (refunds) draw as empty
  days.forEach((d, index) => {
    const x = left + index * step;
    const source = svgNode("rect", { x, y: height - bottom - scale(d.source), width: bar, height: scale(d.source), class: d.mismatch ? "mismatch" : "source" });
    source.appendChild(svgNode("title", {}, d.day + ": source " + d.source.toLocaleString()));
    const audit = svgNode("rect", { x: x + bar, y: height - bottom - scale(d.audit), width: bar, height: scale(d.audit), class: "audit" });
    audit.appendChild(svgNode("title", {}, d.day + ": audit " + d.audit.toLocaleString()));
    svg.appendChild(source);
    svg.appendChild(audit);
  });
  const labelEvery = Math.max(1, Math.ceil(days.length / 8));
  days.forEach((d, index) => {
    if (index % labelEvery === 0) svg.appendChild(svgNode("text", { x: left + index * step, y: height - bottom + 16 }, d.day));
  });
  container.appendChild(svg);
}

function showReconciliation(report) {
  const summary = $("reconciliation-summary");
  const body = $("mismatches").tBodies[0];
  body.replaceChildren();
  if (!report) {
    summary.textContent = "No reconciliation stored for this source yet.";
    drawChart($("count-chart"), [], "");
    drawChart($("sum-chart"), [], "");
    return;
  }
  const mismatches = report.buckets.filter((b) => b.status === "mismatch");
  summary.textContent = "Reconciliation " + report.id + " of " + report.source + " at " + report.startedAt + ": " + report.buckets.length +
    " buckets, " + (mismatches.length ? mismatches.length + " differ" : "all match") + " (" + report.durationMs + " ms).";
  summary.className = mismatches.length ? "status-mismatch" : "status-match";
  const byDay = new Map();
  for (const b of report.buckets) {
    const day = byDay.get(b.day) || { day: b.day || "(no date)", sourceRows: 0, auditRows: 0, sourceAmount: 0, auditAmount: 0, mismatch: false };
    day.sourceRows += b.sourceRows;
    day.auditRows += b.auditRows;
    day.sourceAmount += Number(b.sourceAmount);
    day.auditAmount += Number(b.auditAmount);
    day.mismatch = day.mismatch || b.status === "mismatch";
    byDay.set(b.day, day);
  }
  const days = [...byDay.values()].sort((a, b) => a.day.localeCompare(b.day));
  drawChart($("count-chart"), days.map((d) => ({ day: d.day, source: d.sourceRows, audit: d.auditRows, mismatch: d.mismatch })), "Rows per day, source and audit");
  drawChart($("sum-chart"), days.map((d) => ({ day: d.day, source: d.sourceAmount, audit: d.auditAmount, mismatch: d.mismatch })), "Amount per day, source and audit");
  for (const b of mismatches) {
    const row = document.createElement("tr");
    cell(row, b.day);
    cell(row, b.pdv);
    cell(row, b.sourceRows + " / " + b.sourceAmount);
    cell(row, b.auditRows + " / " + b.auditAmount);
    cell(row, b.notYetSynced);
    cell(row, b.quarantined);
    cell(row, b.missing.join(", ") || "—", b.missing.length ? "status-mismatch" : "");
    cell(row, b.extra.join(", ") || "—", b.extra.length ? "status-mismatch" : "");
    cell(row, b.different.join(", ") || "—", b.different.length ? "status-mismatch" : "");
    body.appendChild(row);
  }
  if (!mismatches.length) {
    const row = document.createElement("tr");
    cell(row, "No bucket differs.");
    body.appendChild(row);
  }
}

async function loadReconciliation() {
  const source = $("reconciliation-source").value;
  const { reconciliation } = await call("erp.getReconciliation", source ? { source } : {});
  showReconciliation(reconciliation);
}

async function reconcileNow(button) {
  button.disabled = true;
  say("Reconciling " + $("reconciliation-source").value + " …");
  try {
    const report = await call("erp.reconcile", { source: $("reconciliation-source").value }, true);
    showReconciliation(report);
    say("Reconciliation " + report.id + " done.");
  } catch (error) {
    say(error.message, true);
  } finally {
    button.disabled = false;
  }
}

// MARK: wiring

async function refreshAll() {
  try {
    await loadSources();
    await Promise.all([loadRuns(), loadQuarantine(), loadReconciliation()]);
  } catch (error) {
    say(error.message, true);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    $("sign-in-error").textContent = "";
    const token = $("token").value.trim();
    $("token").value = "";
    signIn(token);
  });
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", refreshAll);
  $("run-filters").addEventListener("submit", (event) => { event.preventDefault(); loadRuns().catch((e) => say(e.message, true)); });
  $("quarantine-filters").addEventListener("submit", (event) => { event.preventDefault(); loadQuarantine().catch((e) => say(e.message, true)); });
  $("reconciliation-form").addEventListener("submit", (event) => { event.preventDefault(); loadReconciliation().catch((e) => say(e.message, true)); });
  const reconcile = $("reconcile-now");
  if (reconcile) reconcile.addEventListener("click", () => reconcileNow(reconcile));
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) signIn(saved);
});
