// Aseptic dashboard: a thin client of the HTTP API. Everything shown comes from an authenticated
// API call; a view the caller's role may not see says so instead of failing silently.
"use strict";

const TREND_TAGS = [
  ["temperature_k", "Temperature", "K"],
  ["ph", "pH", ""],
  ["dissolved_o2_mg_per_l", "Dissolved O2", "mg/L"],
  ["offgas_co2_pct", "Off-gas CO2", "%"],
  ["volume_l", "Volume", "L"],
  ["paa_softsensor_mg_per_l", "PAA (soft sensor)", "mg/L"],
];
const POLL_MS = 1000;
const WINDOW_POINTS = 720;

const $ = (id) => document.getElementById(id);
let token = sessionStorage.getItem("aseptic.token");
let timers = [];
// Views added by other modules of the dashboard (ops.js: threat simulation, policies;
// batches.js: batch release), by hash.
export const extraViews = {};
// The signed-assessment form for an open finding (batches.js provides it), offered in the Findings
// view to the roles whose policy lets them close findings; the server decides either way.
export const findingForms = { make: null };
let myRoles = [];

export async function api(path, options = {}) {
  const headers = { Accept: "application/json", ...(options.headers || {}) };
  if (token) headers.Authorization = `Bearer ${token}`;
  const response = await fetch(path, { ...options, headers });
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (response.status === 401 && token) { logout("Your session ended: sign in again."); }
  return { status: response.status, body };
}

function errorText(result) {
  const detail = result.body && (result.body.error || result.body.detail);
  return typeof detail === "string" ? detail : `HTTP ${result.status}`;
}

export function show(view) {
  for (const section of document.querySelectorAll("main > section")) section.hidden = section.id !== `${view}-view`;
  for (const link of document.querySelectorAll("#nav a")) link.classList.toggle("active", link.hash === `#${view}`);
}

function stopTimers() { timers.forEach(clearInterval); timers = []; }

function logout(message = "") {
  token = null;
  sessionStorage.removeItem("aseptic.token");
  stopTimers();
  $("nav").hidden = true; $("logout").hidden = true; $("who").textContent = "";
  $("login-error").textContent = message;
  show("login");
}

async function login(event) {
  event.preventDefault();
  const code = $("totp").value.trim();
  if (!/^[0-9]{6}$/.test(code)) { $("login-error").textContent = "The authenticator code is six digits."; return; }
  const result = await api("/api/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ username: $("username").value.trim(), password: $("password").value, totp_code: code }),
  });
  $("password").value = ""; $("totp").value = "";
  if (result.status !== 200) { $("login-error").textContent = "Sign-in failed: check name, password and code."; return; }
  token = result.body.token;
  sessionStorage.setItem("aseptic.token", token);
  await start();
}

async function start() {
  const me = await api("/api/whoami");
  if (me.status !== 200) { logout(); return; }
  myRoles = me.body.roles || [];
  $("who").textContent = `${me.body.name} (${myRoles.join(", ")})`;
  $("nav").hidden = false; $("logout").hidden = false; $("login-error").textContent = "";
  route();
}

export function route() {
  if (!token) { show("login"); return; }
  stopTimers();
  const view = (location.hash || "#overview").slice(1);
  const views = { overview, findings, ledger, audit, access, ...extraViews };
  (views[view] || overview)();
}

// -- overview: live trends --------------------------------------------------------------------------

export function svg(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  return node;
}

function drawTrend(card, points) {
  const chart = card.querySelector("svg");
  chart.replaceChildren();
  const finite = points.filter((p) => p.value !== null);
  if (finite.length < 2) return;
  const width = 320, height = 120, pad = 4;
  const t0 = finite[0].t, t1 = finite[finite.length - 1].t;
  let lo = Math.min(...finite.map((p) => p.value)), hi = Math.max(...finite.map((p) => p.value));
  if (hi === lo) { hi += 1e-9; lo -= 1e-9; }
  const x = (t) => pad + ((t - t0) / Math.max(t1 - t0, 1)) * (width - 2 * pad);
  const y = (v) => height - 14 - ((v - lo) / (hi - lo)) * (height - 24);
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  chart.append(svg("line", { x1: pad, x2: width - pad, y1: height - 12, y2: height - 12 }));
  chart.append(svg("polyline", { points: finite.map((p) => `${x(p.t).toFixed(1)},${y(p.value).toFixed(1)}`).join(" ") }));
  const label = (text, ax, ay, anchor) => { const t = svg("text", { x: ax, y: ay, "text-anchor": anchor }); t.textContent = text; chart.append(t); };
  label(hi.toPrecision(5), pad, 10, "start");
  label(lo.toPrecision(5), pad, height - 16, "start");
  label(new Date(t1).toISOString().slice(11, 19) + "Z", width - pad, height - 2, "end");
}

function trendCard(tag, title, unit) {
  const card = document.createElement("div");
  card.className = "card"; card.dataset.tag = tag;
  const heading = document.createElement("h2");
  const name = document.createElement("span"); name.textContent = title;
  const value = document.createElement("span"); value.className = "value"; value.textContent = "…";
  heading.append(name, value);
  const chart = svg("svg", { role: "img", "aria-label": `${title} trend` });
  const note = document.createElement("p"); note.className = "denied";
  card.append(heading, chart, note);
  card.state = { points: [], from: null, unit };
  return card;
}

async function refreshTrend(card) {
  const state = card.state;
  const query = state.from ? `?from=${encodeURIComponent(state.from)}` : "";
  const result = await api(`/api/tags/${encodeURIComponent(card.dataset.tag)}/readings${query}`);
  const note = card.querySelector(".denied");
  if (result.status !== 200) { note.textContent = result.status === 403 ? "Not permitted for your role." : errorText(result); return; }
  note.textContent = "";
  const fresh = result.body.readings.filter((r) => !state.from || r.time > state.from);
  for (const reading of fresh) state.points.push({ t: Date.parse(reading.time), value: reading.value, time: reading.time });
  if (state.points.length > WINDOW_POINTS) state.points.splice(0, state.points.length - WINDOW_POINTS);
  if (state.points.length) {
    const last = state.points[state.points.length - 1];
    state.from = last.time;
    card.querySelector(".value").textContent = last.value === null ? "bad quality" : `${last.value.toPrecision(5)} ${state.unit}`;
    card.dataset.lastTime = last.time;
  } else {
    card.querySelector(".value").textContent = "no readings yet";
  }
  drawTrend(card, state.points);
}

// The active batch and where it was read: the plant (through the write gateway) or, when no plant is
// configured or reachable, the ledger (the latest batch with a lineage START and no COMPLETE).
export function batchText(body) {
  if (body.source !== "ledger") {
    return `Active batch ${body.batch || "none"}${body.phase ? `, phase ${body.phase}` : ""} (from the plant)`;
  }
  const why = body.plant === "unreachable" ? "plant unreachable" : "no plant configured";
  if (!body.batch) return `Active batch none (from the ledger; ${why})`;
  const phase = body.phase ? `phase ${body.phase} (last logged)` : "phase: from the plant only";
  return `Active batch ${body.batch}, ${phase} (from the ledger; ${why})`;
}

async function overview() {
  show("overview");
  const grid = $("trends");
  grid.replaceChildren(...TREND_TAGS.map(([tag, title, unit]) => trendCard(tag, title, unit)));
  const batch = await api("/api/batches/active");
  $("batch").textContent = batch.status === 200 ? batchText(batch.body)
    : batch.status === 403 ? "Active batch: not permitted for your role." : "No batch information available.";
  const tick = () => { for (const card of grid.children) refreshTrend(card); };
  tick();
  timers.push(setInterval(tick, POLL_MS));
}

// -- findings ----------------------------------------------------------------------------------------

export function cell(text) { const td = document.createElement("td"); td.textContent = text ?? "–"; return td; }

async function findings() {
  show("findings");
  const result = await api("/api/findings");
  const body = $("findings-table").querySelector("tbody");
  const forms = $("findings-forms");
  body.replaceChildren(); forms.replaceChildren();
  if (result.status !== 200) { $("findings-note").textContent = result.status === 403 ? "Not permitted for your role." : errorText(result); return; }
  const rows = result.body.findings;
  const open = rows.filter((f) => f.status === "open");
  $("findings-note").textContent = `${rows.length} findings, ${open.length} open`;
  for (const f of rows.slice().reverse()) {
    const tr = document.createElement("tr");
    tr.dataset.finding = String(f.leaf);
    const sev = document.createElement("td"); const badge = document.createElement("span");
    badge.className = `sev ${f.severity >= 8 ? "high" : f.severity >= 5 ? "mid" : "low"}`; badge.textContent = f.severity; sev.append(badge);
    const technique = cell(f.technique ? `${f.technique} ${f.technique_name || ""}` : null);
    const tags = document.createElement("td");
    for (const c of f.contributions || []) {
      const line = document.createElement("div"); const bar = document.createElement("span");
      bar.className = "bar"; bar.style.width = `${Math.round(60 * c.share)}px`;
      line.append(bar, `${c.tag} ${(100 * c.share).toFixed(0)}%`); tags.append(line);
    }
    const a = f.assessment;
    const status = cell(a ? `closed by ${a.printed_name} at ${a.when}: ${a.reason} (impact: ${a.impact})` : f.status);
    status.className = `status-${f.status}`;
    tr.append(cell(f.leaf), cell(f.time), sev, cell(f.detector), technique, cell(f.batch_id || "outside any batch"), tags, cell(f.summary), status);
    body.append(tr);
  }
  const qa = myRoles.includes("qa_reviewer") || myRoles.includes("qa_approver");
  if (qa && findingForms.make) {
    for (const f of open.slice().reverse()) forms.append(findingForms.make(f, findings));
  } else if (open.length) {
    const note = document.createElement("p"); note.className = "status"; note.id = "findings-sign-note";
    note.textContent = "Closing a finding (a signed assessment: reason, impact on product quality) needs the qa_reviewer or qa_approver role.";
    forms.append(note);
  }
}

// -- ledger ------------------------------------------------------------------------------------------

const NOT_PERMITTED = "Not permitted for your role.";

export function denialText(result) { return result.status === 403 ? NOT_PERMITTED : errorText(result); }

function shortJson(value) {
  if (value === null || value === undefined) return null;
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 79)}…` : text;
}

async function ledger() {
  show("ledger");
  const result = await api("/api/ledger/status");
  const list = $("ledger-status");
  list.replaceChildren();
  const add = (term, value) => { const dt = document.createElement("dt"); dt.textContent = term; const dd = document.createElement("dd"); dd.textContent = value; list.append(dt, dd); };
  if (result.status !== 200) { add("status", denialText(result)); return; }
  const { latest_checkpoint: latest, cosignatures = [], last_verification: verified, ...rest } = result.body;
  for (const [key, value] of Object.entries(rest)) add(key.replaceAll("_", " "), typeof value === "object" ? JSON.stringify(value) : String(value));
  if (latest) {
    add("last checkpoint", `${latest.time} (size ${latest.size}, ${latest.leaves_since} leaves since)`);
    add("checkpoint root", latest.root);
  } else {
    add("last checkpoint", "none yet");
  }
  add("last verification", verified
    ? `${verified.ok ? "passed" : "FAILED"} at ${verified.time}${verified.size !== null && verified.size !== undefined ? ` (size ${verified.size})` : ""}${verified.reason ? `: ${verified.reason}` : ""}`
    : "never run (aseptic ledger verify)");
  const newest = cosignatures.filter((c) => latest && c.size === latest.size);
  if (cosignatures.length === 0) add("witness cosignatures", "none kept (aseptic witness cosign)");
  for (const c of newest.length ? newest : cosignatures.slice(-3)) {
    add("witness cosignature", `${c.witness} at ${c.time} over size ${c.size} (key ${c.key})`);
  }
}

// -- audit trail ---------------------------------------------------------------------------------------

function auditQuery() {
  const params = new URLSearchParams();
  for (const name of ["who", "record", "since", "until"]) {
    const value = $(`audit-${name}`).value.trim();
    if (value) params.set(name, value);
  }
  return params.toString();
}

async function loadAudit() {
  const query = auditQuery();
  const result = await api(`/api/audit${query ? `?${query}` : ""}`);
  const body = $("audit-table").querySelector("tbody");
  body.replaceChildren();
  if (result.status !== 200) { $("audit-note").textContent = denialText(result); $("audit-table").hidden = result.status === 403; return; }
  $("audit-table").hidden = false;
  const events = result.body.events;
  $("audit-note").textContent = `${events.length} entries${result.body.truncated ? " (more: narrow the filter)" : ""}${query ? " matching the filter" : ""}`;
  for (const e of events) {
    const tr = document.createElement("tr");
    tr.append(cell(e.leaf), cell(e.when), cell(e.who), cell(e.kind), cell(e.record), cell(e.change), cell(shortJson(e.old)), cell(shortJson(e.new)), cell(e.why));
    body.append(tr);
  }
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

function refusalReasons(result) {
  const error = result.body && result.body.error;
  if (error && error.reasons && error.reasons.length) return error.reasons;
  if (error && error.message) return [error.message];
  if (result.body && Array.isArray(result.body.detail)) return result.body.detail.map((d) => `${(d.loc || []).slice(-1)[0]}: ${d.msg}`);
  return [errorText(result)];
}

function showProblems(target, heading, problems) {
  target.replaceChildren();
  if (heading) { const p = document.createElement("p"); p.textContent = heading; target.append(p); }
  const ul = document.createElement("ul");
  for (const text of problems) { const li = document.createElement("li"); li.textContent = text; ul.append(li); }
  target.append(ul);
}

async function signReview(event) {
  event.preventDefault();
  const since = $("audit-review-since").value.trim(), until = $("audit-review-until").value.trim();
  const comments = $("audit-review-comments").value.trim(), code = $("audit-review-totp").value.trim();
  const problems = [];
  if (!RFC3339.test(since) || !RFC3339.test(until)) problems.push("Give the period as UTC times, e.g. 2026-03-01T00:00:00Z.");
  else if (Date.parse(since) >= Date.parse(until)) problems.push("The period must end after it starts.");
  if (comments.length < 10) problems.push("Write what the review found (at least 10 characters; \"no findings\" if none).");
  if (!$("audit-review-password").value) problems.push("Enter your password: a signature needs it every time (21 CFR 11.200).");
  if (code && !/^[0-9]{6}$/.test(code)) problems.push("The authenticator code is six digits.");
  if (problems.length) { showProblems($("audit-review-error"), "", problems); return; }
  const body = { since, until, comments, password: $("audit-review-password").value, ...(code ? { totp_code: code } : {}) };
  const result = await api("/api/audit/review", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  $("audit-review-password").value = ""; $("audit-review-totp").value = "";
  if (result.status !== 200) {
    const reasons = refusalReasons(result).map((r) => r === "second factor required"
      ? "Your first signature of this session needs your authenticator code as well as your password." : r);
    showProblems($("audit-review-error"), `Review refused (HTTP ${result.status}):`, reasons);
    return;
  }
  $("audit-review-error").replaceChildren();
  $("audit-review-comments").value = "";
  const r = result.body;
  $("audit-review-note").textContent = `Review of ${r.events_reviewed} entries signed "${r.meaning}" by ${r.printed_name} at ${r.when} (leaf ${r.leaf}, signature leaf ${r.signature_leaf}).`;
  await loadAudit();
}

async function audit() {
  show("audit");
  await loadAudit();
  const qa = myRoles.includes("qa_reviewer") || myRoles.includes("qa_approver");
  $("audit-review-form").hidden = !qa;
  $("audit-review-note").textContent = qa ? "" : "The periodic review is signed by the qa_reviewer or qa_approver role.";
  if (qa && !$("audit-review-since").value) {
    $("audit-review-since").value = $("audit-since").value.trim();
    $("audit-review-until").value = $("audit-until").value.trim();
  }
}

// -- access: recent denials and grants ------------------------------------------------------------------

async function access() {
  show("access");
  const denials = $("denials-table").querySelector("tbody");
  const grants = $("grants-table").querySelector("tbody");
  denials.replaceChildren(); grants.replaceChildren();
  $("grants-note").textContent = "";
  const result = await api("/api/decisions?denied=true&limit=100");
  const permitted = result.status === 200;
  for (const id of ["denials-table", "grants-table"]) $(id).hidden = !permitted;
  for (const heading of document.querySelectorAll("#access-view h2")) heading.hidden = !permitted;
  if (!permitted) { $("access-note").textContent = denialText(result); return; }
  const rows = result.body.decisions;
  $("access-note").textContent = `${rows.length} recent denials`;
  for (const d of rows) {
    const tr = document.createElement("tr");
    tr.append(cell(d.leaf), cell(d.time), cell(d.principal), cell(d.action), cell(d.resource), cell((d.reasons || []).join("; ") || (d.policy_ids || []).join(", ") || "no permit"));
    denials.append(tr);
  }
  const listed = await api("/api/grants");
  if (listed.status !== 200) { $("grants-note").textContent = denialText(listed); return; }
  const open = listed.body.filter((g) => g.state === "active" || g.state === "requested");
  $("grants-note").textContent = `${open.length} active or requested grants`;
  for (const g of open) {
    const tr = document.createElement("tr");
    tr.append(cell(g.grant_id), cell(g.requester), cell(g.action), cell(g.scope), cell(g.breakglass ? `${g.state} (break-glass)` : g.state), cell(g.expires), cell(g.reason));
    grants.append(tr);
  }
}

$("login-form").addEventListener("submit", login);
$("logout").addEventListener("click", () => logout());
$("audit-form").addEventListener("submit", (event) => { event.preventDefault(); loadAudit(); });
$("audit-review-form").addEventListener("submit", signReview);
window.addEventListener("hashchange", route);
if (token) start(); else logout();
