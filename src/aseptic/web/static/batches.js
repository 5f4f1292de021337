// Batches and the QA release workflow: the list with release states, one batch's record, what
// blocks its release (every reason, as the gate says it), the review and release e-signature forms,
// finding assessments, a release-grant request and the evidence package download. Every action is an
// API call the enforcement point decides; a refusal shows the server's reasons, word for word.
"use strict";

import { api, show, cell, extraViews, findingForms, route } from "/ui/app.js";

const $ = (id) => document.getElementById(id);
const NOT_PERMITTED = "Not permitted for your role.";
const STATE_CLASS = { running: "running", "awaiting review": "waiting", reviewed: "waiting", released: "released" };
let current = null; // the batch shown in the detail panel
let roles = null; // the caller's roles: which forms to offer (the server decides either way)
let session = null; // the token the view was drawn for: another sign-in starts afresh

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "text") node.textContent = value; else node.setAttribute(key, value);
  }
  node.append(...children);
  return node;
}

function view() {
  let section = $("batches-view");
  if (section) return section;
  section = el("section", { id: "batches-view", hidden: "" },
    el("h1", { text: "Batches" }),
    el("p", { class: "hint", text: "Release needs another person's review of this version of the record, verified evidence, no open finding, and a qa_approver's e-signature (approved for release) from a managed console with an approved release grant." }),
    el("table", { id: "batches-table" }, el("thead", {}, el("tr", {}, ...["Batch", "State", "Start (UTC)", "End (UTC)", "Findings", ""].map((h) => el("th", { text: h })))), el("tbody")),
    el("p", { id: "batches-note", class: "status" }),
    el("div", { id: "batch-detail", hidden: "" }));
  document.querySelector("main").append(section);
  return section;
}

function reasonsOf(result) {
  const error = result.body && result.body.error;
  if (result.status === 403 && error && !(error.reasons || []).length) return [NOT_PERMITTED];
  if (error && error.reasons && error.reasons.length) return error.reasons;
  if (error && error.message) return [error.message];
  return [`HTTP ${result.status}`];
}

function list(items, cls) {
  return el("ul", { class: cls }, ...items.map((text) => el("li", { text })));
}

function badge(state) { return el("span", { class: `state ${STATE_CLASS[state] || ""}`, text: state }); }

async function batches() {
  const token = sessionStorage.getItem("aseptic.token");
  if (token !== session) { session = token; current = null; }
  roles = null;
  view();
  show("batches");
  const result = await api("/api/batches");
  const body = $("batches-table").querySelector("tbody");
  body.replaceChildren();
  $("batches-table").hidden = result.status !== 200;
  if (result.status !== 200) { $("batches-note").textContent = result.status === 403 ? NOT_PERMITTED : reasonsOf(result).join("; "); return; }
  const rows = result.body.batches;
  $("batches-note").textContent = `${rows.length} batches`;
  for (const b of rows.slice().reverse()) {
    const open = el("button", { type: "button", class: "link", "data-batch": b.batch_id, text: "Open" });
    open.addEventListener("click", () => detail(b.batch_id));
    const state = el("td"); state.append(badge(b.state));
    const findings = cell(b.findings ? `${b.open_findings} open of ${b.findings}` : "none");
    const tr = el("tr", { "data-batch": b.batch_id });
    const action = el("td"); action.append(open);
    tr.append(cell(b.batch_id), state, cell(b.start), cell(b.end), findings, action);
    body.append(tr);
  }
  if (current) await detail(current);
}

// -- one batch ----------------------------------------------------------------------------------------

function signatureForm(id, meaning, action, batchId) {
  const password = el("input", { id: `${id}-password`, type: "password", maxlength: "1024", autocomplete: "off" });
  const totp = el("input", { id: `${id}-totp`, inputmode: "numeric", maxlength: "6", autocomplete: "off" });
  const error = el("div", { id: `${id}-error`, class: "error", role: "alert" });
  const form = el("form", { id: `${id}-form`, class: "esign", novalidate: "" },
    el("p", { class: "meaning", text: `Meaning of this signature: "${meaning}" on batch ${batchId}, binding this version of the record.` }),
    el("label", { text: "Password" }, password),
    el("label", { text: "Authenticator code (needed at your first signature of this session)" }, totp),
    el("button", { type: "submit", text: action }), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.replaceChildren();
    const code = totp.value.trim();
    const problems = [];
    if (!password.value) problems.push("Enter your password: a signature needs it every time (21 CFR 11.200).");
    if (code && !/^[0-9]{6}$/.test(code)) problems.push("The authenticator code is six digits.");
    if (problems.length) { error.append(list(problems)); return; }
    const body = { password: password.value, ...(code ? { totp_code: code } : {}) };
    const result = await api(`/api/batches/${encodeURIComponent(batchId)}/${id}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    password.value = ""; totp.value = "";
    if (result.status === 200) { await batches(); return; }
    const reasons = reasonsOf(result).map((r) => r === "second factor required"
      ? "Your first signature of this session needs your authenticator code as well as your password." : r);
    error.append(el("p", { text: `${action} refused (HTTP ${result.status}):` }), list(reasons));
  });
  return form;
}

// The form that closes a finding with a signed assessment: in a batch's detail (ids assess-<leaf>)
// and in the Findings view (ids finding-assess-<leaf>), which calls ``done`` after a success.
function assessmentForm(finding, done = batches, prefix = "assess") {
  const id = `${prefix}-${finding.leaf}`;
  const reason = el("textarea", { id: `${id}-reason`, maxlength: "2000", rows: "2" });
  const impact = el("textarea", { id: `${id}-impact`, maxlength: "2000", rows: "2" });
  const password = el("input", { id: `${id}-password`, type: "password", maxlength: "1024", autocomplete: "off" });
  const totp = el("input", { id: `${id}-totp`, inputmode: "numeric", maxlength: "6", autocomplete: "off" });
  const error = el("div", { id: `${id}-error`, class: "error", role: "alert" });
  const form = el("form", { id: `${id}-form`, class: "esign", novalidate: "" },
    el("p", { class: "meaning", text: `Close finding ${finding.leaf}: a signed assessment (meaning "reviewed").` }),
    el("label", { text: "Reason: what was investigated and found (at least 10 characters)" }, reason),
    el("label", { text: "Impact on product quality (at least 10 characters)" }, impact),
    el("label", { text: "Password" }, password),
    el("label", { text: "Authenticator code (at your first signature of this session)" }, totp),
    el("button", { type: "submit", text: "Sign assessment" }), error);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.replaceChildren();
    const problems = [];
    if (reason.value.trim().length < 10) problems.push("Give the reason: what was investigated and what it showed (at least 10 characters).");
    if (impact.value.trim().length < 10) problems.push("State the impact on product quality, even if none (at least 10 characters).");
    if (!password.value) problems.push("Enter your password: a signature needs it every time.");
    const code = totp.value.trim();
    if (code && !/^[0-9]{6}$/.test(code)) problems.push("The authenticator code is six digits.");
    if (problems.length) { error.append(list(problems)); return; }
    const body = { reason: reason.value.trim(), impact: impact.value.trim(), password: password.value, ...(code ? { totp_code: code } : {}) };
    const result = await api(`/api/findings/${finding.leaf}/assessment`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    password.value = ""; totp.value = "";
    if (result.status === 200) { await done(); return; }
    error.append(el("p", { text: `Assessment refused (HTTP ${result.status}):` }), list(reasonsOf(result)));
  });
  return form;
}

function grantButton(batchId) {
  const note = el("span", { id: "grant-note", class: "status" });
  const button = el("button", { id: "request-grant", type: "button", text: "Request a release grant (two-person rule)" });
  button.addEventListener("click", async () => {
    const result = await api("/api/grants", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ action: "release_batch", scope: { type: "Batch", id: batchId }, reason: `QA release of batch ${batchId}` }),
    });
    note.textContent = result.status === 200
      ? `Grant ${result.body.grant_id} requested: another qa_approver must approve it.`
      : `Grant request refused: ${reasonsOf(result).join("; ")}`;
  });
  return el("p", {}, button, " ", note);
}

async function download(batchId, note) {
  note.textContent = "Preparing the evidence package…";
  const token = sessionStorage.getItem("aseptic.token");
  const response = await fetch(`/api/batches/${encodeURIComponent(batchId)}/package`, { headers: { Authorization: `Bearer ${token}` } });
  if (!response.ok) { note.textContent = `Package refused (HTTP ${response.status}).`; return; }
  const url = URL.createObjectURL(await response.blob());
  const link = el("a", { id: "package-link", href: url, download: `evidence-${batchId}.zip`, text: `evidence-${batchId}.zip` });
  note.replaceChildren("Ready: ", link, " (verify offline: aseptic ledger verify --bundle bundle.json --trust site.pub)");
}

async function detail(batchId) {
  current = batchId;
  if (roles === null) { const me = await api("/api/whoami"); roles = me.status === 200 ? me.body.roles || [] : []; }
  const panel = $("batch-detail");
  const result = await api(`/api/batches/${encodeURIComponent(batchId)}`);
  panel.hidden = false;
  if (result.status !== 200) { panel.replaceChildren(el("h2", { text: `Batch ${batchId}` }), list(reasonsOf(result), "error")); return; }
  const b = result.body, record = b.record;
  const heading = el("h2", { text: `Batch ${b.batch_id} ` }); heading.append(badge(b.state));
  const facts = el("dl", {},
    el("dt", { text: "record sha256" }), el("dd", { text: b.sha256 }),
    el("dt", { text: "window" }), el("dd", { text: `leaves ${record.window.first_leaf}..${record.window.last_leaf ?? "open"}; ${record.start ?? "–"} .. ${record.end ?? "–"}` }),
    el("dt", { text: "phases" }), el("dd", { text: record.phases.map((p) => `${p.phase} ${p.start.slice(11, 16)}–${p.end.slice(11, 16)}`).join(", ") || "none" }),
    el("dt", { text: "equipment" }), el("dd", { text: `${record.equipment.unit ?? "–"} (${record.equipment.devices.join(", ")})` }),
    el("dt", { text: "materials" }), el("dd", { text: Object.entries(record.materials).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ") || "none" }),
    el("dt", { text: "genealogy" }), el("dd", { text: `${record.genealogy.inputs.join(", ") || "–"} → ${record.genealogy.outputs.join(", ") || "–"}` }),
    el("dt", { text: "deviations" }), el("dd", { text: String(record.deviations.length) }),
    el("dt", { text: "evidence" }), el("dd", { id: "evidence-status", text: b.evidence_problems.length ? `DOES NOT VERIFY: ${b.evidence_problems.join("; ")}` : "verified (every record in the log re-verified)" }));
  const parts = [heading, facts];

  const blocked = el("div", { id: "release-status" });
  if (b.state === "released") blocked.append(el("p", { class: "ok", text: "Released." }));
  else if (b.release_blocked_by.length) blocked.append(el("p", { class: "error", text: "Release blocked:" }), list(b.release_blocked_by, "blocked"));
  else blocked.append(el("p", { class: "ok", text: "Nothing in the record blocks release (the approver's own rights are checked when signing)." }));
  parts.push(blocked);

  const findings = el("table", { id: "batch-findings" }, el("thead", {}, el("tr", {}, ...["Leaf", "Detector", "Technique", "Time", "Status", "Assessment"].map((h) => el("th", { text: h })))));
  const fbody = el("tbody");
  for (const f of b.findings) {
    const a = f.assessment;
    fbody.append(el("tr", { "data-finding": String(f.leaf) }, cell(f.leaf), cell(f.detector), cell(f.technique), cell(f.time), cell(f.status),
      cell(a ? `${a.printed_name} at ${a.when}: ${a.reason} (impact: ${a.impact})` : "–")));
  }
  findings.append(fbody);
  parts.push(el("h3", { text: "Findings in the batch's window" }), b.findings.length ? findings : el("p", { class: "status", text: "none" }));
  if (roles.includes("qa_reviewer") || roles.includes("qa_approver")) {
    for (const f of b.findings.filter((x) => x.status === "open")) parts.push(assessmentForm(f));
  }

  const sigs = el("table", { id: "batch-signatures" }, el("thead", {}, el("tr", {}, ...["Leaf", "Meaning", "Printed name", "User", "Time (UTC)", "This version"].map((h) => el("th", { text: h })))));
  const sbody = el("tbody");
  for (const s of b.signatures) {
    sbody.append(el("tr", {}, cell(s.leaf), cell(s.meaning === "approved" ? "approved for release" : s.meaning), cell(s.printed_name), cell(s.signer), cell(s.when), cell(s.current ? "yes" : "no (older version)")));
  }
  sigs.append(sbody);
  parts.push(el("h3", { text: "Signatures" }), b.signatures.length ? sigs : el("p", { class: "status", text: "none yet" }));

  const qa = roles.includes("qa_reviewer") || roles.includes("qa_approver");
  if (b.state !== "released" && b.state !== "running" && roles.includes("qa_reviewer")) {
    parts.push(el("h3", { text: "Review (qa_reviewer)" }), signatureForm("review", "reviewed", "Sign review", b.batch_id));
  }
  if (b.state !== "released" && b.state !== "running" && roles.includes("qa_approver")) {
    parts.push(el("h3", { text: "Release (qa_approver)" }), grantButton(b.batch_id), signatureForm("release", "approved for release", "Sign release", b.batch_id));
  }
  if (!qa && b.state !== "released") {
    parts.push(el("p", { id: "sign-note", class: "status", text: "Reviewing, releasing and assessing findings need the qa_reviewer or qa_approver role." }));
  }
  if (b.state !== "running") {
    const note = el("span", { id: "package-note", class: "status" });
    const button = el("button", { id: "package-button", type: "button", text: "Download evidence package" });
    button.addEventListener("click", () => download(b.batch_id, note));
    parts.push(el("h3", { text: "Evidence package" }), el("p", {}, button, " ", note));
  }
  panel.replaceChildren(...parts);
}

extraViews.batches = batches;
findingForms.make = (finding, done) => assessmentForm(finding, done, "finding-assess");
if (location.hash === "#batches" && sessionStorage.getItem("aseptic.token")) route();
