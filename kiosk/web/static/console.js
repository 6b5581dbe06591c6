// The technician console (display.md, The console). Everything is drawn here from the
// kiosk's own API; nothing is loaded from elsewhere, no inline script or style (the CSP).
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);
  const SVG = "http://www.w3.org/2000/svg";
  let csrf = null;
  let account = null;
  let source = null;
  let cameraTimer = null;

  function show(el, on) { el.hidden = !on; }

  function text(el, value) { el.textContent = value === null || value === undefined ? "–" : String(value); }

  async function api(method, path, body) {
    const opts = { method, credentials: "same-origin", headers: {} };
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    const resp = await fetch(path, opts);
    let data = {};
    try { data = await resp.json(); } catch (e) { data = {}; }
    return { status: resp.status, data };
  }

  // -- login ------------------------------------------------------------------------

  function showLogin(message) {
    stopLive();
    csrf = null;
    account = null;
    show($("login"), true);
    show($("live"), false);
    show($("logout"), false);
    show($("who"), false);
    $("login-error").textContent = message || "";
    $("link").textContent = "not logged in";
    $("login-name").focus();
  }

  $("login-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const name = $("login-name").value;
    const password = $("login-password").value;
    $("login-password").value = "";
    const { status, data } = await api("POST", "/console/login", { name, password });
    if (status === 200 && data.ok) {
      csrf = data.csrf;
      start();
    } else if (status === 429) {
      showLogin("Too many failed logins: wait a while and try again.");
    } else {
      showLogin("Wrong account name or password.");
    }
  });

  $("logout").addEventListener("click", async () => {
    await api("POST", "/console/logout", { csrf });
    showLogin("Logged out.");
  });

  // -- live view --------------------------------------------------------------------

  async function start() {
    const { status, data } = await api("GET", "/api/console/state");
    if (status === 401) { showLogin(""); return; }
    if (status !== 200) { $("link").textContent = "the kiosk does not answer"; setTimeout(start, 3000); return; }
    csrf = data.csrf;
    account = data.account;
    show($("login"), false);
    show($("live"), true);
    show($("logout"), true);
    show($("who"), true);
    $("who").textContent = account.name + " (" + account.role + ")";
    document.querySelectorAll("[data-action], [data-sim], #sim-present").forEach((b) => { b.disabled = !account.may_act; });
    show($("viewer-note"), !account.may_act);
    render(data);
    openStream();
  }

  function stopLive() {
    if (source) { source.close(); source = null; }
    if (cameraTimer) { clearInterval(cameraTimer); cameraTimer = null; }
  }

  function openStream() {
    if (source) source.close();
    source = new EventSource("/api/console/stream");
    source.addEventListener("state", (ev) => {
      $("link").textContent = "live";
      $("link").className = "link ok";
      render(JSON.parse(ev.data));
    });
    source.addEventListener("logout", () => showLogin("The session ended: log in again."));
    source.onerror = () => {
      // Lost the kiosk (restart, network) or the session: ask again in a moment.
      $("link").textContent = "reconnecting…";
      $("link").className = "link down";
      source.close();
      source = null;
      setTimeout(start, 2000);
    };
  }

  function render(s) {
    const g = s.gate;
    text($("mode"), g.mode);
    $("mode").className = "mode-" + g.mode;
    text($("since"), g.since);
    text($("turnstile"), g.turnstile);
    text($("light"), g.light);
    text($("sound"), g.sound);
    const occ = g.occupancy === null ? "not counted" : g.occupancy + (g.capacity ? " / " + g.capacity : "");
    text($("occupancy"), occ);
    const bar = $("occupancy-bar");
    const share = g.capacity && g.occupancy !== null ? Math.min(1, g.occupancy / g.capacity) : 0;
    bar.style.width = (share * 100).toFixed(1) + "%";
    bar.className = share >= 1 ? "full" : share >= 0.9 ? "near" : "";
    text($("backlog"), g.backlog + " events");
    text($("kversion"), g.kiosk_version || "–");
    renderHealth(g);
    renderRows($("decisions"), s.decisions, (d) => [
      d.at, d.decision, d.reason_text + " (" + d.reason + ")", d.st, d.via, d.source, d.subject,
      d.latency_ms === null ? null : d.latency_ms + " ms",
    ], (d) => "decision-" + d.decision);
    renderRows($("commands"), s.commands, (c) => [
      c.at, c.cmd, c.via, c.account, c.ok ? "ok" : "refused: " + (c.error || "?"),
    ], (c) => (c.ok ? "ok" : "refused"));
    $("tz").textContent = "(" + s.timezone + ")";
    $("chart-day").textContent = s.charts.day;
    drawBars($("entries-chart"), s.charts.entries_per_hour, s.charts.entries_per_hour.map((_, h) => String(h)), 3);
    const edges = s.charts.latency_edges_ms;
    const labels = edges.map((e) => "≤" + e).concat([">" + edges[edges.length - 1]]);
    drawBars($("latency-chart"), s.charts.latency_counts, labels, 1);
    show($("sim"), !!s.simulation);
    if (s.simulation && !cameraTimer) startCamera();
  }

  const HEALTH_NAMES = { camera: "Camera", scanner: "Scanner", status: "Status service", broker: "Broker", clock: "Clock", disk: "Disk", relay: "Relay" };

  function renderHealth(g) {
    const ul = $("health");
    ul.textContent = "";
    Object.keys(HEALTH_NAMES).forEach((part) => {
      const state = g.health[part] || "off";
      const li = document.createElement("li");
      li.className = "h-" + state;
      const name = document.createElement("span");
      name.textContent = HEALTH_NAMES[part];
      const st = document.createElement("strong");
      // Never colour alone: the word says it too.
      st.textContent = state === "ok" ? "✓ ok" : state === "down" ? "✗ down" : "– off";
      li.append(name, st);
      ul.append(li);
    });
    const extra = document.createElement("li");
    extra.className = g.clock_trusted ? "h-ok" : "h-down";
    extra.append(Object.assign(document.createElement("span"), { textContent: "Clock trusted" }),
      Object.assign(document.createElement("strong"), { textContent: g.clock_trusted ? "✓ yes" : "✗ no" }));
    ul.append(extra);
  }

  function renderRows(tbody, rows, cells, rowClass) {
    tbody.textContent = "";
    rows.forEach((r) => {
      const tr = document.createElement("tr");
      tr.className = rowClass(r);
      cells(r).forEach((c) => {
        const td = document.createElement("td");
        text(td, c);
        tr.append(td);
      });
      tbody.append(tr);
    });
  }

  // A bar chart drawn as SVG: counts, one label per bar (every `every`-th shown).
  function drawBars(svg, counts, labels, every) {
    svg.textContent = "";
    const W = 480, H = 180, left = 32, bottom = 22, top = 10;
    const max = Math.max(1, ...counts);
    const bw = (W - left - 4) / counts.length;
    const axis = document.createElementNS(SVG, "line");
    axis.setAttribute("x1", left); axis.setAttribute("x2", W); axis.setAttribute("y1", H - bottom); axis.setAttribute("y2", H - bottom);
    axis.setAttribute("class", "axis");
    svg.append(axis);
    [0, max].forEach((v) => {
      const t = document.createElementNS(SVG, "text");
      t.setAttribute("x", left - 4); t.setAttribute("y", H - bottom - (v / max) * (H - bottom - top) + 4);
      t.setAttribute("text-anchor", "end"); t.setAttribute("class", "tick");
      t.textContent = String(v);
      svg.append(t);
    });
    counts.forEach((c, i) => {
      const h = (c / max) * (H - bottom - top);
      const r = document.createElementNS(SVG, "rect");
      r.setAttribute("x", left + i * bw + 1); r.setAttribute("width", Math.max(1, bw - 2));
      r.setAttribute("y", H - bottom - h); r.setAttribute("height", h);
      r.setAttribute("class", "bar");
      const title = document.createElementNS(SVG, "title");
      title.textContent = labels[i] + ": " + c;
      r.append(title);
      svg.append(r);
      if (i % every === 0) {
        const t = document.createElementNS(SVG, "text");
        t.setAttribute("x", left + i * bw + bw / 2); t.setAttribute("y", H - 6);
        t.setAttribute("text-anchor", "middle"); t.setAttribute("class", "tick");
        t.textContent = labels[i];
        svg.append(t);
      }
    });
  }

  // -- actions ----------------------------------------------------------------------

  document.querySelectorAll("[data-action]").forEach((button) => {
    button.addEventListener("click", async () => {
      const question = button.dataset.confirm;
      if (question && !window.confirm(question)) return;
      const action = button.dataset.action;
      $("action-result").textContent = action + "…";
      const { status, data } = await api("POST", "/api/console/action", { action, csrf });
      if (status === 401) { showLogin("The session ended: log in again."); return; }
      $("action-result").textContent = action + ": " + (data.ok ? "done" : "refused (" + (data.error || status) + ")");
      $("action-result").className = data.ok ? "ok" : "error";
    });
  });

  // -- the simulated world ----------------------------------------------------------

  async function sim(body) {
    body.csrf = csrf;
    const { status, data } = await api("POST", "/api/sim/world", body);
    if (status === 401) { showLogin("The session ended: log in again."); return; }
    $("sim-result").textContent = body.action + ": " + (data.ok ? "done" : "refused (" + (data.error || status) + ")");
    $("sim-result").className = data.ok ? "ok" : "error";
  }

  document.querySelectorAll("[data-sim]").forEach((button) => {
    button.addEventListener("click", () => sim(JSON.parse(button.dataset.sim)));
  });
  $("sim-present").addEventListener("click", () => sim({ action: "present", kind: $("sim-kind").value, status: $("sim-status").value, source: $("sim-source").value }));

  function startCamera() {
    const img = $("camera");
    const refresh = () => { img.src = "/api/sim/camera.png?t=" + Date.now(); };
    refresh();
    cameraTimer = setInterval(refresh, 500);
  }

  start();
})();
