// The web console: every page of the console API for the admin who never
// opens a terminal. Signed in with an admin's token, kept in this tab's
// sessionStorage only (never in a URL). Texts come from messages.js.
"use strict";

const $ = (id) => document.getElementById(id);
const POLL_MS = 2000;
const DEVICE_PAGE = 100;

// An admin token as "canopyd admin-add" prints it: "cnp_", the token's ID,
// "_", its secret (same format as core/server/admins.c).
function parseToken(text) {
  const token = text.trim();
  if (!/^cnp_[0-9a-f]{16}_[0-9a-f]{64}$/.test(token))
    throw new Error(msg("signin.not-token"));
  return token;
}

// Requests carry the token; errors come back as {error, message, problems}.
async function api(method, path, body, type) {
  const headers = { Authorization: "Bearer " + sessionStorage.getItem("canopy-token") };
  if (body !== undefined) headers["Content-Type"] = type || "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body, cache: "no-store" });
  } catch (e) {
    throw { message: msg("error.unreachable"), problems: [] };
  }
  if (response.ok) return response;
  let detail = { message: msg("error.http", { status: response.status }) };
  try { detail = await response.json(); } catch (e) { /* not JSON */ }
  detail.status = response.status;
  if (response.status === 401 && sessionStorage.getItem("canopy-token")) signOut(detail.message);
  throw detail;
}

const getJson = async (path) => (await api("GET", path)).json();

function show(element, text, kind) {
  element.textContent = text;
  element.className = kind || "";
  element.hidden = false;
}

// An error with every problem the server listed, each at its line.
function showProblems(element, error) {
  show(element, error.message, "error");
  element.setAttribute("role", "alert");
  if (error.problems && error.problems.length) {
    const list = document.createElement("ul");
    list.className = "problems";
    for (const p of error.problems) {
      const item = document.createElement("li");
      // The server's sentence may name the line itself; then it is not repeated.
      item.textContent = p.line && !/^line \d/i.test(p.message)
        ? msg("error.line", { line: p.line, message: p.message }) : p.message;
      if (p.line) item.dataset.line = p.line;
      list.append(item);
    }
    element.append(list);
  }
}

function translatePage() {
  document.documentElement.lang = currentLanguage();
  document.title = msg("title");
  for (const e of document.querySelectorAll("[data-msg]")) e.textContent = msg(e.dataset.msg);
  for (const e of document.querySelectorAll("[data-msg-label]"))
    e.setAttribute("aria-label", msg(e.dataset.msgLabel));
}

function cell(row, text, className) {
  const c = row.insertCell();
  c.textContent = text;
  if (className) c.className = className;
  return c;
}

function formatBytes(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

function formatTime(value) {
  if (value === null || value === undefined || value === "") return "–";
  const date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
  return isNaN(date) ? String(value) : date.toLocaleString();
}

function progressBar(value, max, label) {
  const bar = document.createElement("progress");
  bar.max = max > 0 ? max : 1;
  bar.value = max > 0 ? value : 0;
  bar.setAttribute("aria-label", label);
  return bar;
}

// A datetime-local input's value (the browser's local time) as the API
// wants it: RFC 3339 in UTC, whole seconds; "" stays "".
function inputTime(value) {
  if (!value) return "";
  return new Date(value).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function formatRate(bits) {
  return `${(bits / 1e6).toFixed(1)} Mbit/s`;
}

const percent = (done, total) => (total > 0 ? Math.floor((done * 100) / total) : 0);

// Pages ------------------------------------------------------------------

const pages = {};
let current = null;
let pollTimer = null;

function showPage(name) {
  if (!pages[name]) name = "settings";
  for (const e of document.querySelectorAll(".page")) e.hidden = e.id !== "page-" + name;
  for (const a of document.querySelectorAll("#nav a"))
    if (a.dataset.page === name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  clearInterval(pollTimer);
  pollTimer = null;
  if (name !== "admins") {  // a token is shown once, not kept on the page
    $("admin-token").value = "";
    $("admin-token-box").hidden = true;
  }
  current = name;
  pages[name].load().catch((error) => showProblems($("notice"), error));
  if (pages[name].poll) pollTimer = setInterval(() => pages[name].poll(), POLL_MS);
}

function onHashChange() {
  if (sessionStorage.getItem("canopy-token")) showPage(location.hash.slice(1));
}

// Sign in and out --------------------------------------------------------

async function signIn() {
  const me = await getJson("/api/v1/whoami");
  const info = await getJson("/api/v1/server-id");
  $("whoami").textContent = msg("signin.as", { name: me.name, role: me.role });
  $("version").textContent = info.version;
  $("server-id").textContent = info.server_id;
  $("page-signin").hidden = true;
  $("session").hidden = false;
  $("nav").hidden = false;
  $("signin-error").hidden = true;
  showPage(location.hash.slice(1) || "settings");
}

async function onSignIn(event) {
  event.preventDefault();
  try {
    sessionStorage.setItem("canopy-token", parseToken($("token").value));
    $("token").value = "";
    await signIn();
  } catch (error) {
    sessionStorage.removeItem("canopy-token");
    show($("signin-error"), error.status === 401
      ? msg("signin.refused", { message: error.message }) : error.message, "error");
    $("token").focus();
  }
}

function signOut(reason) {
  sessionStorage.removeItem("canopy-token");
  $("admin-token").value = "";
  $("admin-token-box").hidden = true;
  clearInterval(pollTimer);
  pollTimer = null;
  current = null;
  for (const e of document.querySelectorAll(".page")) e.hidden = true;
  $("page-signin").hidden = false;
  $("session").hidden = true;
  $("nav").hidden = true;
  $("notice").hidden = true;
  if (reason) show($("signin-error"), reason, "error");
  else show($("notice"), msg("signin.out"));
  $("token").focus();
}

// Settings ---------------------------------------------------------------

function fillSettings(s) {
  $("server-name").value = s.server_name;
  $("optimization").checked = s.distribution_optimization;
  $("groups").value = s.assigned_groups.join("\n");
  $("no-office").value = s.no_office_clients;
}

pages.settings = {
  async load() { fillSettings(await getJson("/api/v1/settings")); },
};

async function onSave(event) {
  event.preventDefault();
  const body = JSON.stringify({
    server_name: $("server-name").value.trim(),
    distribution_optimization: $("optimization").checked,
    assigned_groups: $("groups").value.split("\n").map((g) => g.trim()).filter((g) => g),
    no_office_clients: $("no-office").value,
  });
  try {
    fillSettings(await (await api("PUT", "/api/v1/settings", body)).json());
    show($("settings-result"), msg("settings.saved"), "ok");
  } catch (error) {
    showProblems($("settings-result"), error);
  }
}

async function onPublish() {
  const button = $("publish");
  const started = Date.now();
  button.disabled = true;
  show($("publish-result"), msg("publish.running"));
  try {
    const answer = await (await api("POST", "/api/v1/publish")).json();
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    let text = msg("publish.done", { count: answer.published, seconds });
    if (answer.copying > 0) text += " " + msg("publish.copying", { count: answer.copying });
    show($("publish-result"), text, "ok");
  } catch (error) {
    showProblems($("publish-result"), error);
  } finally {
    button.disabled = false;
  }
}

// Devices: a page at a time, sorted and searched by the server -----------

const devicesView = { offset: 0, total: 0 };

function devicesQuery() {
  const q = new URLSearchParams({
    offset: devicesView.offset, limit: $("devices-limit").value, sort: $("devices-sort").value,
  });
  const search = $("devices-search").value.trim();
  if (search) q.set("search", search);
  return q;
}

function addDeviceRow(body, d) {
  const row = body.insertRow();
  const name = cell(row, d.name || d.device_id);
  name.title = d.device_id;
  cell(row, d.office);
  cell(row, d.preference.lead ? `${d.preference.rank} (${msg("devices.lead")})`
                              : String(d.preference.rank), "number");
  cell(row, d.preference.why);
  cell(row, msg(d.online ? "devices.yes" : "devices.no"), d.online ? "ok" : "");
  cell(row, d.agent_version);
  cell(row, formatTime(d.last_seen));
}

pages.devices = {
  async load() {
    const limit = Number($("devices-limit").value);
    const answer = await getJson("/api/v1/devices?" + devicesQuery());
    const body = $("devices").tBodies[0];
    body.textContent = "";
    for (const d of answer.devices) addDeviceRow(body, d);
    devicesView.total = answer.total;
    const first = answer.total ? devicesView.offset + 1 : 0;
    $("devices-range").textContent = msg("devices.range", {
      first, last: devicesView.offset + answer.devices.length, total: answer.total,
    });
    $("devices-prev").disabled = devicesView.offset === 0;
    $("devices-next").disabled = devicesView.offset + limit >= answer.total;
    if (answer.total === 0) show($("devices-result"), msg("devices.none"));
    else $("devices-result").hidden = true;
  },
};

function devicesPage(step) {
  const limit = Number($("devices-limit").value);
  devicesView.offset = Math.max(0, devicesView.offset + step * limit);
  pages.devices.load().catch((error) => showProblems($("devices-result"), error));
}

// Offices and topology ---------------------------------------------------

pages.offices = {
  async load() {
    const answer = await getJson("/api/v1/offices");
    const body = $("offices").tBodies[0];
    body.textContent = "";
    for (const o of answer.offices) {
      const row = body.insertRow();
      cell(row, o.name);
      cell(row, o.parent || "–");
      const type = o.transfer_class
        ? msg("offices.class", { type: o.type, class: o.transfer_class }) : o.type;
      cell(row, o.automatic ? `${type} (${msg("offices.automatic")})` : type);
      cell(row, o.subnets.join(", "));
      cell(row, o.wan_rate ? formatRate(o.wan_rate) : msg("offices.unlimited"));
      cell(row, o.wan_schedule || msg("offices.no-schedule"));
      cell(row, o.wan_rate_now === undefined ? "–"
                : o.wan_rate_now ? formatRate(o.wan_rate_now) : msg("offices.unlimited"));
      cell(row, o.time_zone || "–");
      cell(row, `${o.devices} (${o.online})`, "number");
    }
  },
};

async function onUpload(event) {
  event.preventDefault();
  const result = $("topology-result");
  const file = $("topology-file").files[0];
  result.removeAttribute("role");
  if (!file) {
    show(result, msg("topology.choose"), "error");
    return;
  }
  try {
    const answer = await (await api("PUT", "/api/v1/topology", await file.text(), "text/csv")).json();
    show(result, answer.message, "ok");
    result.setAttribute("role", "status");
    await pages.offices.load();
  } catch (error) {
    showProblems(result, error);
  }
}

// Saves what @path answers as file @name; returns its text.
async function download(path, name) {
  const blob = await (await api("GET", path)).blob();
  const link = document.createElement("a");
  link.href = URL.createObjectURL(blob);
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  return blob.text();
}

// Content ----------------------------------------------------------------

let contentList = [];

pages.content = {
  async load() {
    const [list, store] = await Promise.all([getJson("/api/v1/content"),
                                             getJson("/api/v1/content-store")]);
    contentList = list;
    const stored = new Map(store.contents.map((c) => [c.id, c]));
    const body = $("content").tBodies[0];
    body.textContent = "";
    if (list.length === 0) {
      const c = cell(body.insertRow(), msg("content.none"));
      c.colSpan = 7;
    }
    for (const c of list) {
      const row = body.insertRow();
      cell(row, c.id, "id");
      cell(row, c.name);
      cell(row, c.version);
      cell(row, formatBytes(c.size), "number");
      const s = stored.get(c.id);
      cell(row, s ? (s.stored ? msg("devices.yes") : s.reason || msg("devices.no")) : "–");
      cell(row, c.expires ? formatTime(c.expires) : msg("content.never"));
      const remove = document.createElement("button");
      remove.type = "button";
      remove.textContent = "✕";
      remove.setAttribute("aria-label", msg("content.remove", c));
      remove.title = msg("content.remove", c);
      remove.addEventListener("click", () => removeContent(c));
      row.insertCell().append(remove);
    }
    fillExpiryChoice();
  },
};

function fillExpiryChoice() {
  const select = $("expiry-content");
  const chosen = select.value;
  select.textContent = "";
  for (const c of contentList) {
    const option = document.createElement("option");
    option.value = c.id;
    option.textContent = `${c.name} ${c.version} (${c.id})`;
    select.append(option);
  }
  if (chosen) select.value = chosen;
}

async function onExpiry(event) {
  event.preventDefault();
  const result = $("expiry-result");
  try {
    const body = JSON.stringify({ expires: inputTime($("expiry-time").value) });
    const c = await (await api("POST", "/api/v1/content/expiry?id=" +
                               encodeURIComponent($("expiry-content").value), body)).json();
    show(result, msg("content.expiry-done", {
      ...c, expires: c.expires ? formatTime(c.expires) : msg("content.never"),
    }), "ok");
    await pages.content.load();
  } catch (error) {
    showProblems(result, error);
  }
}

async function removeContent(c) {
  try {
    await api("DELETE", "/api/v1/content?id=" + encodeURIComponent(c.id));
    show($("content-result"), msg("content.removed", c), "ok");
    await pages.content.load();
  } catch (error) {
    showProblems($("content-result"), error);
  }
}

// The server answers when it has read the whole package; until then the
// page shows how long it has been reading.
async function onRegister(event) {
  event.preventDefault();
  const result = $("content-result");
  const button = $("content-register");
  const started = Date.now();
  const tick = () => show(result, msg("content.reading",
                                      { seconds: Math.round((Date.now() - started) / 1000) }));
  const body = JSON.stringify({
    name: $("content-name").value.trim(), version: $("content-version").value.trim(),
    location: $("content-location").value.trim(),
  });
  button.disabled = true;
  $("content-progress").hidden = false;
  result.removeAttribute("role");
  tick();
  const timer = setInterval(tick, 1000);
  try {
    const c = await (await api("POST", "/api/v1/content", body)).json();
    show(result, msg("content.registered", { ...c, size: formatBytes(c.size) }), "ok");
    result.setAttribute("role", "status");
    if (current === "content") await pages.content.load();
  } catch (error) {
    showProblems(result, error);
  } finally {
    clearInterval(timer);
    button.disabled = false;
    $("content-progress").hidden = true;
  }
}

// Deployments: per office and per device, polled while the page shows ---

const openDevices = new Set();     // deployments whose device list is open
const deviceOffsets = new Map();   // deployment → offset of its device page

function fillContentChoice() {
  const select = $("deploy-content");
  const chosen = select.value;
  select.textContent = "";
  for (const c of contentList) {
    const option = document.createElement("option");
    option.value = c.id;
    option.textContent = `${c.name} ${c.version} (${c.id})`;
    select.append(option);
  }
  if (chosen) select.value = chosen;
}

function officeTable(d) {
  const table = document.createElement("table");
  table.className = "offices";
  const head = table.createTHead().insertRow();
  for (const k of ["office", "done", "progress", "lead", "peer-bytes", "earlier-bytes",
                   "wan-bytes", "savings", "class"]) {
    const th = document.createElement("th");
    th.textContent = msg("deploy." + k);
    head.append(th);
  }
  const body = table.createTBody();
  if (d.offices.length === 0) cell(body.insertRow(), msg("deploy.no-office")).colSpan = 9;
  for (const o of d.offices) {
    const row = body.insertRow();
    cell(row, o.office);
    cell(row, `${o.done}/${o.devices}`, "number");
    row.insertCell().append(progressBar(o.done, o.devices, `${o.office}: ${percent(o.done, o.devices)} %`));
    cell(row, o.lead || "–");
    cell(row, formatBytes(o.bytes_office_peer), "number");
    cell(row, formatBytes(o.bytes_earlier_versions || 0), "number");
    cell(row, formatBytes(o.wan_bytes), "number");
    cell(row, `${Math.round(o.savings * 100)} %`, "number");
    cell(row, wanClass(o));
  }
  return table;
}

// The office's WAN class; a background lead's rate and queueing delay
// once it has reported them.
function wanClass(o) {
  if (o.transfer_class !== "background") return msg("deploy.class-normal");
  if (o.background_rate === null || o.background_rate === undefined)
    return msg("deploy.class-waiting");
  return msg("deploy.class-background", {
    rate: formatRate(o.background_rate), delay: o.queueing_delay_ms ?? "–",
  });
}

async function deviceTable(d, holder) {
  const offset = deviceOffsets.get(d.id) || 0;
  let answer;
  try {
    answer = await getJson(`/api/v1/deployments/${encodeURIComponent(d.id)}/devices?` +
                           new URLSearchParams({ offset, limit: DEVICE_PAGE }));
  } catch (error) {
    // A server without the per-device endpoint answers 404 for the route;
    // asked again at each refresh, so an upgraded server is noticed.
    if (error.status === 404) {
      show(holder, msg("deploy.per-office-only"), "hint");
      return;
    }
    throw error;
  }
  const table = document.createElement("table");
  table.className = "devices";
  const head = table.createTHead().insertRow();
  for (const k of ["device", "office", "state", "progress", "sources", "error"]) {
    const th = document.createElement("th");
    th.textContent = msg("deploy." + k);
    head.append(th);
  }
  const body = table.createTBody();
  for (const v of answer.devices) {
    const row = body.insertRow();
    cell(row, v.name || v.device_id).title = v.device_id;
    cell(row, v.office);
    cell(row, v.role && v.role !== "peer" ? `${v.state} (${v.role})` : v.state, "state-" + v.state);
    const p = row.insertCell();
    p.append(progressBar(v.percent, 100, `${v.name}: ${v.percent} %`), ` ${v.percent} %`);
    cell(row, (v.sources || []).join(", "));
    cell(row, v.error || "", v.error ? "error" : "");
  }
  const scroll = document.createElement("div");
  scroll.className = "scroll";
  scroll.append(table);
  holder.textContent = "";
  holder.append(scroll);
  if (answer.total > DEVICE_PAGE) holder.append(pager(d.id, offset, answer));
}

function pager(id, offset, answer) {
  const box = document.createElement("div");
  box.className = "pager";
  const prev = document.createElement("button");
  const next = document.createElement("button");
  prev.type = next.type = "button";
  prev.textContent = msg("page.previous");
  next.textContent = msg("page.next");
  prev.disabled = offset === 0;
  next.disabled = offset + DEVICE_PAGE >= answer.total;
  prev.addEventListener("click", () => { deviceOffsets.set(id, offset - DEVICE_PAGE); pages.deployments.poll(); });
  next.addEventListener("click", () => { deviceOffsets.set(id, offset + DEVICE_PAGE); pages.deployments.poll(); });
  const range = document.createElement("span");
  range.textContent = msg("devices.range", {
    first: offset + 1, last: offset + answer.devices.length, total: answer.total,
  });
  box.append(prev, range, next);
  return box;
}

function deploymentCard(d) {
  const card = document.createElement("article");
  card.className = "deployment";
  card.dataset.id = d.id;
  const title = document.createElement("h3");
  title.textContent = msg("deploy.summary", {
    ...d, groups: d.groups.join(", "), content: contentName(d.content),
  });
  const overall = document.createElement("p");
  overall.className = "overall";
  const pct = percent(d.done, d.devices);
  overall.append(progressBar(d.done, d.devices, `${d.id}: ${pct} %`));
  const figure = document.createElement("span");
  figure.className = "percent";
  figure.textContent = ` ${pct} %`;
  overall.append(figure);
  card.append(title, overall);
  if (d.start || d.deadline || d.window) {
    const timing = document.createElement("p");
    timing.className = "timing";
    timing.textContent = msg("deploy.timing", {
      start: d.start ? formatTime(d.start) : msg("deploy.any-time"),
      deadline: d.deadline ? formatTime(d.deadline) : "–",
      window: d.window || msg("deploy.any-time"),
    });
    card.append(timing);
  }
  if (d.state !== "cancelled" && d.state !== "retired") {
    const cancel = document.createElement("button");
    cancel.type = "button";
    cancel.className = "cancel";
    cancel.textContent = msg("deploy.cancel", d);
    cancel.addEventListener("click", () => cancelDeployment(d.id));
    card.append(cancel);
  }
  if (d.state !== "retired") {
    const retire = document.createElement("button");
    retire.type = "button";
    retire.className = "retire";
    retire.textContent = msg("deploy.retire", d);
    retire.addEventListener("click", () => retireDeployment(d.id));
    card.append(retire);
  }
  if (d.uninstalled && d.uninstalled.length) {
    const u = document.createElement("p");
    u.className = "uninstalled";
    u.textContent = msg("deploy.uninstalled", {
      list: d.uninstalled.map((x) => `${x.device}: ${x.outcome}`).join("; "),
    });
    card.append(u);
  }
  if (d.failures && d.failures.length) {
    const f = document.createElement("p");
    f.className = "error";
    f.textContent = msg("deploy.failures", {
      list: d.failures.map((x) => `${x.device}: ${x.reason}`).join("; "),
    });
    card.append(f);
  }
  const scroll = document.createElement("div");
  scroll.className = "scroll";
  scroll.append(officeTable(d));
  card.append(scroll);
  const details = document.createElement("details");
  details.open = openDevices.has(d.id);
  const summary = document.createElement("summary");
  summary.textContent = msg("deploy.devices", d);
  const holder = document.createElement("div");
  details.append(summary, holder);
  details.addEventListener("toggle", () => {
    if (details.open) {
      openDevices.add(d.id);
      deviceTable(d, holder).catch((error) => showProblems(holder, error));
    } else {
      openDevices.delete(d.id);
    }
  });
  card.append(details);
  return { card, details, holder };
}

function contentName(id) {
  const c = contentList.find((x) => x.id === id);
  return c ? `${c.name} ${c.version}` : id;
}

async function refreshDeployments() {
  const list = await getJson("/api/v1/deployments");
  const box = $("deployments");
  const cards = list.map(deploymentCard);
  // Device tables are fetched before the swap, so nothing flickers.
  await Promise.all(cards.filter((c) => c.details.open)
    .map((c) => deviceTable(list.find((d) => d.id === c.card.dataset.id), c.holder)
      .catch((error) => showProblems(c.holder, error))));
  const focused = document.activeElement && document.activeElement.closest(".deployment");
  const focusId = focused ? focused.dataset.id : null;
  const focusClass = focused ? document.activeElement.className : null;
  box.replaceChildren(...cards.map((c) => c.card));
  // Keep the keyboard user's place across a refresh.
  if (focusId) {
    const again = box.querySelector(`.deployment[data-id="${CSS.escape(focusId)}"]` +
                                    (focusClass ? ` .${CSS.escape(focusClass)}` : ""));
    if (again) again.focus();
  }
  if (list.length === 0) show($("deployments-result"), msg("deploy.none"));
  else $("deployments-result").hidden = true;
}

pages.deployments = {
  async load() {
    contentList = await getJson("/api/v1/content");
    fillContentChoice();
    if (!$("deploy-groups").value) {
      const s = await getJson("/api/v1/settings");
      const groups = $("deploy-groups");
      // The admin may have begun typing while the settings loaded: what
      // they typed is never added to or replaced.
      if (!groups.value && document.activeElement !== groups) {
        groups.value = s.assigned_groups.join("\n");
      }
    }
    await refreshDeployments();
  },
  poll() {
    refreshDeployments().catch((error) => showProblems($("deployments-result"), error));
  },
};

async function onDeploy(event) {
  event.preventDefault();
  const result = $("deploy-result");
  if (!$("deploy-content").value) {
    show(result, msg("deploy.no-content"), "error");
    return;
  }
  const fields = {
    content: $("deploy-content").value,
    groups: $("deploy-groups").value.split("\n").map((g) => g.trim()).filter((g) => g),
    destination: $("deploy-destination").value.trim(),
  };
  const start = inputTime($("deploy-start").value);
  const deadline = inputTime($("deploy-deadline").value);
  const daily = $("deploy-window").value.trim();
  if (start) fields.start = start;
  if (deadline) fields.deadline = deadline;
  if (daily) fields.window = daily;
  if ($("deploy-background").checked) fields.background = true;
  const body = JSON.stringify(fields);
  try {
    const answer = await (await api("POST", "/api/v1/deployments", body)).json();
    show(result, msg("deploy.created", answer), "ok");
    result.setAttribute("role", "status");
    await refreshDeployments();
  } catch (error) {
    showProblems(result, error);
  }
}

async function cancelDeployment(id) {
  if (!confirm(msg("deploy.confirm-cancel", { id }))) return;
  try {
    await api("POST", "/api/v1/deployments/cancel?id=" + encodeURIComponent(id));
    show($("deploy-result"), msg("deploy.cancelled", { id }), "ok");
    await refreshDeployments();
  } catch (error) {
    showProblems($("deploy-result"), error);
  }
}

async function retireDeployment(id) {
  if (!confirm(msg("deploy.confirm-retire", { id }))) return;
  try {
    await api("POST", "/api/v1/deployments/retire?id=" + encodeURIComponent(id));
    show($("deploy-result"), msg("deploy.retired", { id }), "ok");
    await refreshDeployments();
  } catch (error) {
    showProblems($("deploy-result"), error);
  }
}

// Health, licences, audit ------------------------------------------------

pages.health = { async load() {} };

async function onHealth() {
  const table = $("health");
  const body = table.tBodies[0];
  $("health-run").disabled = true;
  try {
    const report = await getJson("/api/v1/health");
    body.textContent = "";
    for (const check of report.checks) {
      const row = body.insertRow();
      cell(row, check.name);
      cell(row, check.status, "status-" + check.status);
      cell(row, check.message);
    }
    show($("health-overall"), msg("health.overall", { status: report.status }),
         "status-" + report.status);
    table.hidden = false;
  } catch (error) {
    showProblems($("health-overall"), error);
  } finally {
    $("health-run").disabled = false;
  }
}

pages.licences = { async load() {} };

async function onLicences() {
  const name = "activated-licences.csv";
  try {
    const text = await download("/api/v1/licences/report.csv", name);
    const rows = text.split("\n").filter((line) => line.trim()).length - 1;
    show($("licences-result"), msg("licences.downloaded", { name, rows }), "ok");
  } catch (error) {
    showProblems($("licences-result"), error);
  }
}

const auditView = { offset: 0, limit: 50 };

pages.audit = {
  async load() {
    const answer = await getJson("/api/v1/audit?" +
                                 new URLSearchParams({ offset: auditView.offset, limit: auditView.limit }));
    const body = $("audit").tBodies[0];
    body.textContent = "";
    for (const e of answer.entries) {
      const row = body.insertRow();
      cell(row, formatTime(e.time));
      cell(row, e.actor);
      cell(row, e.action);
      cell(row, e.detail);
    }
    $("audit-range").textContent = msg("audit.range", {
      first: answer.total ? auditView.offset + 1 : 0,
      last: auditView.offset + answer.entries.length, total: answer.total,
    });
    $("audit-prev").disabled = auditView.offset === 0;
    $("audit-next").disabled = auditView.offset + auditView.limit >= answer.total;
    if (answer.total === 0) show($("audit-result"), msg("audit.none"));
    else $("audit-result").hidden = true;
  },
};

function auditPage(step) {
  auditView.offset = Math.max(0, auditView.offset + step * auditView.limit);
  pages.audit.load().catch((error) => showProblems($("audit-result"), error));
}

// Admins: add (the token shown once), revoke a token, remove -----------

function smallButton(text, label, kind, handler) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = kind;
  button.textContent = text;
  button.setAttribute("aria-label", label);
  button.title = label;
  button.addEventListener("click", handler);
  return button;
}

pages.admins = {
  async load() {
    const answer = await getJson("/api/v1/admins");
    const body = $("admins").tBodies[0];
    body.textContent = "";
    for (const a of answer.admins) {
      const row = body.insertRow();
      cell(row, a.name);
      cell(row, a.role);
      const tokens = row.insertCell();
      const list = document.createElement("ul");
      list.className = "tokens";
      for (const t of a.tokens) {
        const item = document.createElement("li");
        item.textContent = `${t.id} · ${formatTime(t.created)} · ${t.expires ? formatTime(t.expires) : msg("admins.never")} `;
        item.append(smallButton("✕", msg("admins.revoke", { id: t.id, name: a.name }), "cancel",
                                () => adminChange("DELETE", `/api/v1/admins/${encodeURIComponent(a.name)}/tokens/${encodeURIComponent(t.id)}`,
                                                  msg("admins.revoked", { id: t.id, name: a.name }))));
        list.append(item);
      }
      tokens.append(list);
      row.insertCell().append(smallButton(msg("admins.remove", a), msg("admins.remove", a), "cancel",
        () => confirm(msg("admins.confirm-remove", a)) &&
              adminChange("DELETE", "/api/v1/admins/" + encodeURIComponent(a.name),
                          msg("admins.removed", a))));
    }
  },
};

async function adminChange(method, path, done) {
  $("admin-token-box").hidden = true;
  try {
    await api(method, path);
    show($("admin-result"), done, "ok");
    await pages.admins.load();
  } catch (error) {
    showProblems($("admin-result"), error);
  }
}

async function onAddAdmin(event) {
  event.preventDefault();
  const body = JSON.stringify({
    name: $("admin-name").value.trim(), role: $("admin-role").value,
    expires_days: Number($("admin-expires").value || 0),
  });
  $("admin-token-box").hidden = true;
  try {
    const answer = await (await api("POST", "/api/v1/admins", body)).json();
    show($("admin-result"), msg("admins.added", answer), "ok");
    $("admin-token").value = answer.token;
    $("admin-token-box").hidden = false;
    $("admin-token").select();
    await pages.admins.load();
  } catch (error) {
    showProblems($("admin-result"), error);
  }
}

// Wiring -----------------------------------------------------------------

function on(id, event, handler) { $(id).addEventListener(event, handler); }

document.addEventListener("DOMContentLoaded", () => {
  translatePage();
  on("signin-form", "submit", onSignIn);
  on("signout", "click", () => signOut());
  on("settings-form", "submit", onSave);
  on("publish", "click", onPublish);
  let searchTimer = null;
  on("devices-form", "submit", (e) => { e.preventDefault(); devicesView.offset = 0; devicesPage(0); });
  on("devices-search", "input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { devicesView.offset = 0; devicesPage(0); }, 300);
  });
  on("devices-sort", "change", () => { devicesView.offset = 0; devicesPage(0); });
  on("devices-limit", "change", () => { devicesView.offset = 0; devicesPage(0); });
  on("devices-prev", "click", () => devicesPage(-1));
  on("devices-next", "click", () => devicesPage(1));
  on("topology-form", "submit", onUpload);
  on("topology-download", "click", () => download("/api/v1/topology", "topology.csv")
    .catch((error) => showProblems($("topology-result"), error)));
  on("content-form", "submit", onRegister);
  on("deploy-form", "submit", onDeploy);
  on("expiry-form", "submit", onExpiry);
  on("health-run", "click", onHealth);
  on("licences-download", "click", onLicences);
  on("audit-prev", "click", () => auditPage(-1));
  on("audit-next", "click", () => auditPage(1));
  on("admin-form", "submit", onAddAdmin);
  window.addEventListener("hashchange", onHashChange);
  if (sessionStorage.getItem("canopy-token"))
    signIn().catch((error) => signOut(error.message));
  else
    $("token").focus();
});
