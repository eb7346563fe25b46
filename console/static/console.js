// The responders' console. Everything a person wrote is shown with textContent:
// no message is ever parsed as HTML.
"use strict";

const state = { me: null, view: "queue", caseId: null, socket: null, fetchedAt: 0, partners: [] };
const $ = (id) => document.getElementById(id);

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

async function api(method, path, body) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (method !== "GET" && state.me) headers["X-CSRF-Token"] = state.me.csrf;
  const response = await fetch(path, {
    method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  if (response.status === 401 && state.me) { state.me = null; show("login"); }
  if (!response.ok) throw new Error(data.message || `Error ${response.status}`);
  return data;
}

function show(view) {
  for (const id of ["login", "setup", "queue", "case", "dashboard", "audit"]) $(id).hidden = id !== view;
  $("top").hidden = !state.me;
  state.view = view;
}

function allowed(role) {
  const order = ["responder", "supervisor", "admin"];
  return state.me && order.indexOf(state.me.role) >= order.indexOf(role);
}

function minutes(seconds) {
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  return `${Math.floor(seconds / 3600)} h ${Math.floor((seconds % 3600) / 60)} min`;
}

function when(epoch) { return new Date(epoch * 1000).toLocaleString(); }

// --- alerts --------------------------------------------------------------------
let audio = null;
document.addEventListener("click", () => { if (!audio) audio = new AudioContext(); }, { once: true });

function alertP1(text) {
  const box = $("alert");
  box.textContent = text;
  box.hidden = false;
  document.title = "P1 — Hotline console";
  if (audio) {
    const tone = audio.createOscillator();
    tone.frequency.value = 880;
    tone.connect(audio.destination);
    tone.start();
    tone.stop(audio.currentTime + 0.4);
  }
}
$("alert").addEventListener("click", () => { $("alert").hidden = true; document.title = "Hotline console"; });

// --- live events ------------------------------------------------------------------
function connect() {
  const url = location.origin.replace(/^http/, "ws") + "/console/ws";
  const socket = new WebSocket(url);
  state.socket = socket;
  socket.onmessage = (message) => {
    const event = JSON.parse(message.data);
    if (event.priority === "P1" && ["opened", "handoff", "updated"].includes(event.type) && event.status !== "with_responder") {
      alertP1("P1: someone may be in danger now. Take the next most urgent.");
    }
    if (state.view === "queue") go("queue");
    if (state.view === "case" && event.case === state.caseId) loadCase(state.caseId);
  };
  socket.onclose = () => { if (state.me) setTimeout(connect, 2000); };
}

// --- queue --------------------------------------------------------------------------
async function loadQueue() {
  const data = await api("GET", "/console/api/queue");
  state.fetchedAt = Date.now();
  const rows = $("queue-rows");
  rows.replaceChildren();
  for (const item of data.queue) {
    const row = el("tr");
    row.className = `p-${item.effective} ${item.overdue ? "overdue" : ""}`;
    const priority = el("td", item.effective === item.priority ? item.priority : `${item.priority} → ${item.effective}`);
    if (item.overdue) priority.append(el("span", " overdue", "flag"));
    row.append(priority, el("td", item.reasons.join("; ")), el("td", item.language), el("td", item.channel),
      el("td", item.categories.join(", ")));
    const waiting = el("td", minutes(item.waiting_seconds), "waiting");
    waiting.dataset.seconds = item.waiting_seconds;
    row.append(waiting, el("td", item.status));
    row.addEventListener("click", () => openCase(item.id));
    rows.append(row);
  }
  $("queue-note").textContent = data.queue.length ? "" : "Nobody is waiting.";
  const held = $("held-rows");
  held.replaceChildren();
  for (const item of data.held) {
    const row = el("tr");
    row.append(el("td", item.priority), el("td", item.owner), el("td", item.language), el("td", item.channel),
      el("td", item.escalated ? "yes" : ""));
    row.addEventListener("click", () => openCase(item.id));
    held.append(row);
  }
}

async function loadAllCases() {
  const rows = $("all-rows");
  rows.replaceChildren();
  for (const item of await api("GET", "/console/api/cases")) {
    const row = el("tr");
    row.append(el("td", item.priority), el("td", item.kind.replace("_", " ")),
      el("td", item.withdrawn ? "withdrawn" : item.status.replace("_", " ")), el("td", item.owner),
      el("td", item.language), el("td", item.channel), el("td", when(item.opened_at)));
    row.addEventListener("click", () => openCase(item.id));
    rows.append(row);
  }
}

setInterval(() => {
  const elapsed = (Date.now() - state.fetchedAt) / 1000;
  for (const cell of document.querySelectorAll("td.waiting")) {
    cell.textContent = minutes(Number(cell.dataset.seconds) + elapsed);
  }
}, 1000);

$("take-next").addEventListener("click", async () => {
  try {
    const data = await api("POST", "/console/api/next", {});
    openCase(data.case);
  } catch (error) { $("queue-note").textContent = error.message; }
});

// --- case -----------------------------------------------------------------------------
async function openCase(id) {
  state.caseId = id;
  show("case");
  $("address").textContent = "";
  $("case-error").textContent = "";
  await loadCase(id);
}

function dd(list, term, value) {
  if (value === undefined || value === null || value === "" || (Array.isArray(value) && !value.length)) return;
  list.append(el("dt", term), el("dd", Array.isArray(value) ? value.join(", ") : value));
}

async function loadCase(id) {
  const data = await api("GET", `/console/api/cases/${encodeURIComponent(id)}`);
  const c = data.case;
  $("case-title").textContent = `${c.priority} · ${c.kind.replace("_", " ")} · ${c.language} · ${c.channel}`;
  $("case-status").textContent = `${c.status.replace("_", " ")}${c.owner ? " — " + c.owner : ""}` +
    `${c.escalated ? " · escalated" : ""}${c.legal_hold ? " · legal hold" : ""}` +
    `${c.withdrawn ? " · the person withdrew and deleted their data" : ""}`;
  $("hold").textContent = c.legal_hold ? "Lift legal hold…" : "Legal hold…";
  $("hold").dataset.held = c.legal_hold ? "1" : "";
  const mine = c.owner === state.me.name && c.status === "with_responder";
  $("claim").hidden = mine;
  for (const id of ["close", "escalate"]) $(id).disabled = !mine;
  $("reply-form").hidden = !mine;
  $("consent-form").hidden = !mine;
  $("refer-form").hidden = !mine;
  const summary = $("summary");
  summary.replaceChildren();
  const s = data.summary;
  dd(summary, "Asked for", s.asked_for);
  dd(summary, "Indicators", s.indicators);
  dd(summary, "Categories", s.categories);
  dd(summary, "Why this priority", s.reasons);
  for (const [name, value] of Object.entries(s.answers)) dd(summary, name.replace("_", " "), String(value));
  dd(summary, "Address", data.address);
  const transcript = $("transcript");
  transcript.replaceChildren();
  for (const entry of data.transcript) {
    const item = el("li", null, `from-${entry.sender}`);
    item.append(el("span", `${entry.sender}${entry.via ? " (" + entry.via + ")" : ""} · ${when(entry.at)}`, "meta"));
    const text = el("p", entry.text);
    if (entry.sender !== "staff") text.dir = data.direction;
    item.append(text);
    transcript.append(item);
  }
  transcript.scrollTop = transcript.scrollHeight;
  $("delivery").textContent = c.delivery && c.delivery !== "sent" ? `Last message: ${c.delivery}` : "";
  $("delivery").className = c.delivery.startsWith("failed") ? "error" : "";
  const ledger = $("ledger");
  ledger.replaceChildren();
  const revoked = new Set(data.ledger.filter((e) => e.kind === "revocation").map((e) => e.ref));
  for (const entry of data.ledger) {
    const item = el("li", `${when(entry.at)} · ${entry.by} · ${entry.kind}${entry.what ? ": " + entry.what : ""}`);
    if (entry.kind === "consent") {
      if (revoked.has(entry.id)) item.append(el("span", " (revoked)", "flag"));
      else if (mine) {
        const revoke = el("button", "Revoke");
        revoke.type = "button";
        revoke.addEventListener("click", () => act(`revocations`, { consent: entry.id }));
        item.append(" ", revoke);
      }
    }
    ledger.append(item);
  }
  await loadCanned(c.language);
}

let cannedLanguage = null;
async function loadCanned(language) {
  if (cannedLanguage === language) return;
  cannedLanguage = language;
  const select = $("canned");
  select.replaceChildren(el("option", "Canned responses…"));
  select.firstChild.value = "";
  for (const item of await api("GET", `/console/api/canned/${encodeURIComponent(language)}`)) {
    const option = el("option", item.gloss === item.text ? item.text : `${item.gloss} — ${item.text}`);
    option.value = item.text;
    select.append(option);
  }
}
$("canned").addEventListener("change", (event) => {
  if (event.target.value) $("reply").value = event.target.value;
  event.target.value = "";
});

async function act(path, body) {
  $("case-error").textContent = "";
  try {
    await api("POST", `/console/api/cases/${encodeURIComponent(state.caseId)}/${path}`, body || {});
    await loadCase(state.caseId);
  } catch (error) { $("case-error").textContent = error.message; }
}

$("claim").addEventListener("click", () => act("claim"));
$("close").addEventListener("click", () => act("close"));
$("escalate").addEventListener("click", () => {
  const reason = prompt("Why does this need a supervisor?");
  if (reason) act("escalate", { reason });
});
$("assign").addEventListener("click", () => {
  const staff = prompt("Assign to which responder (name)?");
  if (staff) act("assign", { staff });
});
$("hold").addEventListener("click", () => {
  const held = Boolean($("hold").dataset.held);
  const reason = prompt(held ? "Why lift the legal hold?" : "Why must this case be kept (legal hold)?");
  if (reason) act("hold", { hold: !held, reason });
});
$("reveal").addEventListener("click", async () => {
  const reason = prompt("Why must you see this person's address? (recorded in the audit log)");
  if (!reason) return;
  try {
    const data = await api("POST", `/console/api/cases/${encodeURIComponent(state.caseId)}/reveal`, { reason });
    $("address").textContent = `${data.channel}: ${data.address}`;
  } catch (error) { $("case-error").textContent = error.message; }
});
$("reply-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("reply").value.trim();
  if (!text) return;
  $("reply").value = "";
  act("messages", { text });
});
$("note-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("note").value.trim();
  if (!text) return;
  $("note").value = "";
  act("notes", { text });
});
$("consent-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const what = $("consent-what").value;
  act("consents", what === "referral" ? { what, partner: $("consent-partner").value } : { what });
});
$("consent-what").addEventListener("change", () => {
  $("consent-partner").hidden = $("consent-what").value !== "referral";
});
$("refer-form").addEventListener("submit", (event) => {
  event.preventDefault();
  act("referrals", { partner: $("refer-partner").value });
});

async function loadPartners() {
  state.partners = await api("GET", "/console/api/partners");
  for (const select of [$("consent-partner"), $("refer-partner")]) {
    select.replaceChildren();
    for (const partner of state.partners) {
      const option = el("option", `${partner.name} — ${partner.services.join(", ")} · ${partner.languages.join(" ")}`);
      option.value = partner.id;
      select.append(option);
    }
  }
}

// --- dashboard --------------------------------------------------------------------------
function svgNode(tag, attributes, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

const CHART_WIDTH = 420;

function chart(title, rows, bar, gap, drawRow) {
  // An inline SVG (no external library): one bar of height `bar` per row.
  const figure = el("figure");
  figure.append(el("figcaption", title));
  const svg = svgNode("svg", { width: CHART_WIDTH, height: Math.max(1, rows.length) * (bar + gap), role: "img" });
  rows.forEach((row, i) => drawRow(svg, row, i * (bar + gap)));
  figure.append(svg);
  return figure;
}

function barChart(title, series) {
  // series: [[label, value], ...]
  const bar = 18, room = CHART_WIDTH - 200;
  const max = Math.max(1, ...series.map(([, v]) => v));
  return chart(title, series, bar, 6, (svg, [label, value], y) => {
    svg.append(
      svgNode("text", { x: 0, y: y + bar - 4 }, label),
      svgNode("rect", { x: 150, y, height: bar, width: Math.max(1, (value / max) * room),
        class: `bar ${label.startsWith("P") ? "p-" + label.slice(0, 2) : ""}` }),
      svgNode("text", { x: 155 + (value / max) * room, y: y + bar - 4 }, value));
  });
}

function stackedChart(title, rows) {
  // rows: [[day, {P1: n, P2: n, ...}], ...], one bar per day, a segment per priority.
  const bar = 14, room = CHART_WIDTH - 110;
  const max = Math.max(1, ...rows.map(([, counts]) => Object.values(counts).reduce((a, b) => a + b, 0)));
  return chart(title, rows, bar, 4, (svg, [day, counts], y) => {
    svg.append(svgNode("text", { x: 0, y: y + bar - 3 }, day.slice(5)));
    let x = 60, total = 0;
    for (const priority of ["P1", "P2", "P3", "P4"]) {
      const n = counts[priority] || 0;
      if (!n) continue;
      const w = (n / max) * room;
      const rect = svgNode("rect", { x, y, height: bar, width: w, class: `bar p-${priority}` });
      rect.append(svgNode("title", {}, `${priority}: ${n}`));
      svg.append(rect);
      x += w; total += n;
    }
    svg.append(svgNode("text", { x: x + 4, y: y + bar - 3 }, total ? total : ""));
  });
}

async function loadDashboard() {
  const data = await api("GET", "/console/api/dashboard");
  const totals = {};
  const perDay = [];
  for (const [day, counts] of Object.entries(data.days)) {
    const byPriority = {};
    for (const [field, value] of Object.entries(counts)) {
      totals[field] = (totals[field] || 0) + value;
      if (field.startsWith("priority:")) byPriority[field.slice("priority:".length)] = value;
    }
    perDay.push([day, byPriority]);
  }
  const group = (prefix) => Object.entries(totals).filter(([k]) => k.startsWith(prefix))
    .map(([k, v]) => [k.slice(prefix.length), v]).sort();
  const charts = $("charts");
  charts.replaceChildren(
    stackedChart("Cases opened per day, by priority (P1 red … P4 grey)", perDay),
    barChart("By priority", group("priority:")),
    barChart("By language", group("language:")), barChart("By channel", group("channel:")),
    barChart("By category", group("category:")));
  const waits = $("waits");
  waits.replaceChildren();
  for (const [priority, w] of Object.entries(data.waits)) {
    const row = el("tr");
    row.append(el("td", priority), el("td", w.median === null ? "—" : minutes(w.median)),
      el("td", w.p90 === null ? "—" : minutes(w.p90)), el("td", minutes(w.target)), el("td", w.n));
    waits.append(row);
  }
}

// --- audit --------------------------------------------------------------------------------
async function loadAudit() {
  const data = await api("GET", "/console/api/audit");
  const v = data.verified;
  $("audit-verified").textContent = v.ok ? `Chain verified: ${v.entries} entries, none changed or missing.`
    : `THE CHAIN IS BROKEN: ${v.problem}`;
  $("audit-verified").className = v.ok ? "" : "error";
  const rows = $("audit-rows");
  rows.replaceChildren();
  for (const entry of data.entries) {
    const row = el("tr");
    row.append(el("td", when(entry.at)), el("td", entry.actor), el("td", entry.action), el("td", entry.target),
      el("td", entry.detail));
    rows.append(row);
  }
}

// --- navigation, login, setup -------------------------------------------------------------------
for (const button of document.querySelectorAll("[data-view]")) {
  button.addEventListener("click", () => go(button.dataset.view));
}

async function go(view) {
  show(view);
  if (view === "queue") await loadQueue();
  if (view === "queue" && allowed("supervisor")) await loadAllCases();
  if (view === "dashboard") await loadDashboard();
  if (view === "audit") await loadAudit();
}

async function start(me) {
  state.me = me;
  $("who").textContent = `${me.name} (${me.role})`;
  for (const node of document.querySelectorAll("[data-role]")) node.hidden = !allowed(node.dataset.role);
  connect();
  await loadPartners();
  await go("queue");
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  try {
    const me = await api("POST", "/console/api/login", Object.fromEntries(form));
    event.target.reset();
    $("login-error").textContent = "";
    await start(me);
  } catch (error) { $("login-error").textContent = error.message; }
});

$("setup-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = Object.fromEntries(new FormData(event.target));
  form.token = location.hash.slice("#setup=".length);
  try {
    const data = await api("POST", "/console/api/setup", form);
    history.replaceState(null, "", "/console/");
    $("setup-form").hidden = true;
    $("totp-uri").textContent = data.totp_uri;
    $("setup-done").hidden = false;
  } catch (error) { $("setup-error").textContent = error.message; }
});

$("logout").addEventListener("click", async () => {
  await api("POST", "/console/api/logout", {}).catch(() => {});
  state.me = null;
  if (state.socket) state.socket.close();
  show("login");
});

(async () => {
  if (location.hash.startsWith("#setup=")) { show("setup"); return; }
  try { await start(await api("GET", "/console/api/me")); } catch { show("login"); }
})();
