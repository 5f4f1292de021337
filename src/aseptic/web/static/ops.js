// Aseptic dashboard, operations views: threat-simulation results with the resilience trend, and the
// active policy set with recent denials. Same rules as app.js: every figure comes from an
// authenticated API call, and a part the caller's role may not see says so.
"use strict";

import { api, cell, denialText, extraViews, show, svg } from "/ui/app.js";

const $ = (id) => document.getElementById(id);

function element(tag, attrs = {}, text = null) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

function table(id, headings) {
  const node = element("table", { id });
  const row = element("tr");
  for (const heading of headings) row.append(element("th", {}, heading));
  node.append(element("thead"), element("tbody"));
  node.tHead.append(row);
  return node;
}

function chartBox() {
  // An HTML box around the SVG: only HTML elements honour the hidden property.
  const box = element("div", { id: "resilience-box", class: "campaign-part" });
  box.append(svg("svg", { id: "resilience-chart", class: "ops-chart", role: "img", "aria-label": "Resilience score per campaign cycle" }));
  return box;
}

// The two views' sections, added to the page once (show() switches between every main > section).
function buildSections() {
  const main = document.querySelector("main");
  const campaign = element("section", { id: "campaign-view", hidden: "" });
  campaign.append(
    element("h1", {}, "Threat simulation"),
    element("p", { class: "hint" }, "The continuous campaign runs scenarios in turn on a shadow twin (never the plant's); each cycle is a ledger entry (aseptic campaign trend)."),
    element("p", { id: "campaign-status", class: "status" }),
    element("h2", { class: "campaign-part" }, "Resilience trend"),
    chartBox(),
    element("h2", { class: "campaign-part" }, "ATT&CK technique coverage"),
    element("div", { id: "coverage", class: "coverage campaign-part" }),
    element("h2", { class: "campaign-part" }, "Latest result per scenario"),
    table("campaign-table", ["Scenario", "Techniques", "Verdict", "Detection rate", "Median TTD (h)", "p95 TTD (h)", "False alarms /100 h", "QA reject", "Cycle", "Run (UTC)"]),
  );
  const policies = element("section", { id: "policies-view", hidden: "" });
  policies.append(
    element("h1", {}, "Policies"),
    element("p", { class: "hint" }, "Cedar policies decide every request, deny by default, forbid over permit (aseptic policy show)."),
    element("dl", { id: "policy-set" }),
    element("p", { id: "policies-note", class: "status" }),
    table("policies-table", ["Policy", "Effect", "Principal", "Action", "Resource", "Conditions", "File"]),
    element("h2", { id: "policy-history-heading" }, "Policy changes"),
    table("policy-history", ["Leaf", "Time (UTC)", "Version", "By", "Policies", "Digest"]),
    element("h2", {}, "Recent denials"),
    element("p", { id: "policy-denials-note", class: "status" }),
    table("policy-denials", ["Leaf", "Time (UTC)", "Principal", "Action", "Resource", "Reasons"]),
  );
  main.append(campaign, policies);
}

// -- threat simulation -------------------------------------------------------------------------------

function num(value) { return typeof value === "number" ? String(Math.round(value * 100) / 100) : null; }

function verdict(row) {
  const badge = element("span", { class: "verdict" });
  if (row.detected === null || row.detected === undefined) { badge.classList.add("na"); badge.textContent = "not evaluable"; }
  else if (row.detected) { badge.classList.add("ok"); badge.textContent = "detected"; }
  else { badge.classList.add("missed"); badge.textContent = "MISSED"; }
  const td = element("td"); td.append(badge); return td;
}

function drawResilience(chart, cycles) {
  chart.replaceChildren();
  const width = 720, height = 220, left = 34, right = 10, top = 10, bottom = 24;
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const y = (v) => top + (1 - v / 100) * (height - top - bottom);
  const n = cycles.length;
  const x = (i) => left + (n > 1 ? i / (n - 1) : 0.5) * (width - left - right);
  const text = (value, ax, ay, anchor, cls = "") => { const t = svg("text", { x: ax, y: ay, "text-anchor": anchor, class: cls }); t.textContent = value; chart.append(t); };
  for (const v of [0, 25, 50, 75, 100]) {
    chart.append(svg("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), class: "grid" }));
    text(String(v), left - 4, y(v) + 3, "end");
  }
  if (n === 0) { text("no campaign cycle yet", width / 2, height / 2, "middle"); return; }
  const line = (values, cls) => {
    const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
    chart.append(svg("polyline", { points, class: cls }));
  };
  line(cycles.map((c) => 100 * c.resilience.coverage), "coverage");
  line(cycles.map((c) => c.resilience.score), "score");
  cycles.forEach((c, i) => {
    const dot = svg("circle", { cx: x(i).toFixed(1), cy: y(c.resilience.score).toFixed(1), r: c.findings ? 4.5 : 2.5, class: c.findings ? "alarm" : "point" });
    const title = svg("title", {});
    title.textContent = `cycle ${c.cycle} ${c.finished}: score ${c.resilience.score}, coverage ${c.resilience.techniques_detected.length}/${c.resilience.techniques_executed.length}, median TTD ${c.resilience.median_ttd_h ?? "–"} h, p95 ${c.resilience.p95_ttd_h ?? "–"} h, ${c.findings} finding(s)`;
    dot.append(title);
    chart.append(dot);
  });
  text(`cycle ${cycles[0].cycle}`, left, height - 6, "start");
  text(`cycle ${cycles[n - 1].cycle}`, width - right, height - 6, "end");
  text("— resilience score", width / 2 - 70, height - 6, "middle", "legend-score");
  text("— coverage %", width / 2 + 60, height - 6, "middle", "legend-coverage");
}

function drawCoverage(box, coverage) {
  box.replaceChildren();
  const detected = new Set(coverage.techniques_detected);
  for (const technique of coverage.techniques_executed) {
    const ok = detected.has(technique);
    box.append(element("span", { class: `technique ${ok ? "ok" : "missed"}`, title: ok ? "detected" : "missed" }, technique));
  }
  if (!coverage.techniques_executed.length) box.append(element("span", { class: "status" }, "no technique executed yet"));
}

async function campaign() {
  show("campaign");
  const status = $("campaign-status");
  const body = $("campaign-table").tBodies[0];
  body.replaceChildren();
  const result = await api("/api/campaign/results");
  const permitted = result.status === 200;
  for (const part of document.querySelectorAll("#campaign-view .campaign-part, #campaign-table")) part.hidden = !permitted;
  if (!permitted) { status.textContent = denialText(result); return; }
  const { scheduler, last_cycle: last, scenarios, coverage } = result.body;
  const schedule = scheduler.enabled
    ? `schedule on (every ${Math.round(scheduler.interval_s / 60)} min${scheduler.last_error ? `; last error: ${scheduler.last_error}` : ""})`
    : "continuous schedule off in this server (set [campaign_schedule] enabled = true)";
  status.textContent = last
    ? `Resilience score ${last.resilience.score} after cycle ${last.cycle} (${last.finished}); ${coverage.techniques_detected.length} of ${coverage.techniques_executed.length} techniques detected; ${schedule}`
    : `No campaign cycle yet; ${schedule}`;
  drawCoverage($("coverage"), coverage);
  for (const s of scenarios) {
    const tr = element("tr");
    tr.append(cell(s.id), cell((s.techniques || []).join(", ")), verdict(s), cell(num(s.detection_rate)), cell(num(s.median_ttd_h)), cell(num(s.p95_ttd_h)), cell(num(s.false_alarms_per_100h)), cell(s.impact && s.impact.qa_reject ? "yes" : "no"), cell(s.cycle), cell(s.finished));
    body.append(tr);
  }
  const trend = await api("/api/campaign/trend");
  drawResilience($("resilience-chart"), trend.status === 200 ? trend.body.cycles : []);
}

// -- policies and recent denials ----------------------------------------------------------------------

async function policies() {
  show("policies");
  const list = $("policy-set");
  const rows = $("policies-table").tBodies[0];
  const history = $("policy-history").tBodies[0];
  const denials = $("policy-denials").tBodies[0];
  list.replaceChildren(); rows.replaceChildren(); history.replaceChildren(); denials.replaceChildren();
  const add = (term, value) => list.append(element("dt", {}, term), element("dd", {}, value));
  const result = await api("/api/policies");
  const permitted = result.status === 200;
  for (const id of ["policy-set", "policies-table", "policy-history", "policy-history-heading"]) $(id).hidden = !permitted;
  if (permitted) {
    const p = result.body;
    $("policies-note").textContent = `${p.policies.length} policies`;
    add("active version", p.version === 0 ? "0 (the shipped default)" : String(p.version));
    add("digest", p.digest);
    add("running", p.restart_required ? `${p.running_digest} (restart aseptic serve to apply the active set)` : "the active set");
    for (const policy of p.policies) {
      const tr = element("tr", { class: policy.effect });
      tr.append(cell(policy.id), cell(policy.effect), cell(policy.principal), cell(policy.action), cell(policy.resource), cell(policy.conditions ? `${policy.conditions} when/unless` : "none"), cell(policy.file));
      rows.append(tr);
    }
    for (const h of p.history) {
      const tr = element("tr");
      tr.append(cell(h.leaf), cell(h.time), cell(h.version), cell(h.actor), cell(h.policies), cell(h.digest));
      history.append(tr);
    }
  } else {
    $("policies-note").textContent = denialText(result);
  }
  const recent = await api("/api/decisions?denied=true&limit=25");
  $("policy-denials").hidden = recent.status !== 200;
  if (recent.status !== 200) { $("policy-denials-note").textContent = denialText(recent); return; }
  $("policy-denials-note").textContent = `${recent.body.decisions.length} most recent denials`;
  for (const d of recent.body.decisions) {
    const tr = element("tr");
    tr.append(cell(d.leaf), cell(d.time), cell(d.principal), cell(d.action), cell(d.resource), cell((d.reasons || []).join("; ") || (d.policy_ids || []).join(", ") || "no permit"));
    denials.append(tr);
  }
}

buildSections();
extraViews.campaign = campaign;
extraViews.policies = policies;
