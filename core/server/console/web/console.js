// The web console: the Peer Distribution settings over the console API,
// signed in with an admin's token, kept for this browser tab only.
"use strict";

const $ = (id) => document.getElementById(id);

// An admin token as "canopyd admin-add" prints it: "cnp_", the token's ID,
// "_", its secret (same format as core/server/admins.c).
function parseToken(text) {
  const token = text.trim();
  if (!/^cnp_[0-9a-f]{16}_[0-9a-f]{64}$/.test(token))
    throw new Error("This is not an admin token: a token starts with \"cnp_\" and is 85 " +
                    "characters long. The shared key no longer opens the console; ask an " +
                    "administrator for a token (\"canopyd admin-add NAME --role ROLE\" on the " +
                    "server).");
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
    throw { message: "The server cannot be reached; check that canopyd runs.", problems: [] };
  }
  if (response.ok) return response;
  let detail = { message: `The server answered HTTP ${response.status}.` };
  try { detail = await response.json(); } catch (e) { /* not JSON */ }
  detail.status = response.status;
  throw detail;
}

function show(element, text, kind) {
  element.textContent = text;
  element.className = kind || "";
  element.hidden = false;
}

function showProblems(element, error) {
  show(element, error.message, "error");
  if (error.problems && error.problems.length) {
    const list = document.createElement("ul");
    list.className = "problems";
    for (const p of error.problems) {
      const item = document.createElement("li");
      item.textContent = p.message;
      list.append(item);
    }
    element.append(list);
  }
}

function fillSettings(s) {
  $("server-name").value = s.server_name;
  $("optimization").checked = s.distribution_optimization;
  $("groups").value = s.assigned_groups.join("\n");
  $("no-office").value = s.no_office_clients;
}

async function connect() {
  const me = await (await api("GET", "/api/v1/whoami")).json();
  show($("whoami"), `Signed in as ${me.name} (${me.role}).`);
  const info = await (await api("GET", "/api/v1/server-id")).json();
  $("server-id").textContent = info.server_id;
  $("version").textContent = info.version;
  fillSettings(await (await api("GET", "/api/v1/settings")).json());
  $("settings-area").hidden = false;
  $("forget").hidden = false;
  await onDeployments();
  $("key-error").hidden = true;
}

async function onKey(event) {
  event.preventDefault();
  try {
    sessionStorage.setItem("canopy-token", parseToken($("key").value));
    $("key").value = "";
    await connect();
  } catch (error) {
    sessionStorage.removeItem("canopy-token");
    $("settings-area").hidden = true;
    show($("key-error"), error.message, "error");
  }
}

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
    show($("settings-result"), "Saved. The settings are in force now.", "ok");
  } catch (error) {
    showProblems($("settings-result"), error);
  }
}

async function onUpload(event) {
  event.preventDefault();
  const file = $("topology-file").files[0];
  if (!file) {
    show($("topology-result"), "Choose the topology spreadsheet (CSV) first.", "error");
    return;
  }
  try {
    const answer = await (await api("PUT", "/api/v1/topology", await file.text(), "text/csv")).json();
    show($("topology-result"), answer.message, "ok");
  } catch (error) {
    showProblems($("topology-result"), error);
  }
}

async function download(path, name, status) {
  try {
    const blob = await (await api("GET", path)).blob();
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  } catch (error) {
    if (status) showProblems(status, error);
    else alert(error.message);
  }
}

async function onHealth() {
  const table = $("health");
  const body = table.querySelector("tbody");
  body.textContent = "";
  try {
    const report = await (await api("GET", "/api/v1/health")).json();
    for (const check of report.checks) {
      const row = body.insertRow();
      row.insertCell().textContent = check.name;
      const status = row.insertCell();
      status.textContent = check.status;
      status.className = check.status === "ok" ? "ok" : check.status;
      row.insertCell().textContent = check.message;
    }
  } catch (error) {
    body.insertRow().insertCell().textContent = error.message;
  }
  table.hidden = false;
}

async function onPublish() {
  const button = $("publish");
  const started = Date.now();
  button.disabled = true;
  show($("publish-result"), "Publishing…");
  try {
    const answer = await (await api("POST", "/api/v1/publish")).json();
    const seconds = ((Date.now() - started) / 1000).toFixed(1);
    const copying = answer.copying > 0
      ? ` The content store is copying ${answer.copying} content item(s) it lacks from their ` +
        "origin; \"canopyctl content-store\" shows when each is seeded."
      : "";
    show($("publish-result"), `Published ${answer.published} content item(s) in ${seconds} s; ` +
         "every deployment is offered again to the devices online." + copying, "ok");
  } catch (error) {
    showProblems($("publish-result"), error);
  } finally {
    button.disabled = false;
  }
}

function formatBytes(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit++; }
  return unit === 0 ? `${value} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

// One row per office of each deployment; a deployment without offices yet
// still gets a row, so it does not vanish from the view.
function addDeploymentRows(body, d) {
  const label = `${d.id} (${d.content} → ${d.groups.join(", ")}: ${d.done}/${d.devices} done)`;
  const offices = d.offices.length ? d.offices : [null];
  offices.forEach((o, i) => {
    const row = body.insertRow();
    row.insertCell().textContent = i === 0 ? label : "";
    if (o === null) {
      const cell = row.insertCell();
      cell.colSpan = 6;
      cell.textContent = "No target device known yet.";
      return;
    }
    row.insertCell().textContent = o.office;
    row.insertCell().textContent = `${o.done}/${o.devices}`;
    row.insertCell().textContent = o.lead || "–";
    row.insertCell().textContent = formatBytes(o.bytes_office_peer);
    row.insertCell().textContent = formatBytes(o.wan_bytes);
    row.insertCell().textContent = `${Math.round(o.savings * 100)} %`;
  });
}

async function onDeployments() {
  const table = $("deployments");
  const body = table.querySelector("tbody");
  try {
    const list = await (await api("GET", "/api/v1/deployments")).json();
    body.textContent = "";
    for (const d of list) addDeploymentRows(body, d);
    table.hidden = list.length === 0;
    if (list.length === 0)
      show($("deployments-result"), "No deployments yet; create one with canopyctl deploy.");
    else
      $("deployments-result").hidden = true;
  } catch (error) {
    table.hidden = true;
    showProblems($("deployments-result"), error);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("key-form").addEventListener("submit", onKey);
  $("forget").addEventListener("click", () => {
    sessionStorage.removeItem("canopy-token");
    location.reload();
  });
  $("settings-form").addEventListener("submit", onSave);
  $("topology-form").addEventListener("submit", onUpload);
  $("topology-download").addEventListener("click",
    () => download("/api/v1/topology", "topology.csv", $("topology-result")));
  $("health-run").addEventListener("click", onHealth);
  $("publish").addEventListener("click", onPublish);
  $("deployments-refresh").addEventListener("click", onDeployments);
  $("licences-download").addEventListener("click",
    () => download("/api/v1/licences/report.csv", "activated-licences.csv"));
  if (sessionStorage.getItem("canopy-token"))
    connect().catch((error) => show($("key-error"), error.message, "error"));
});
