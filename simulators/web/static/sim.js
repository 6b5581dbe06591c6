// The simulated world's page: the camera view refreshes itself, the buttons post actions.
"use strict";

const REFRESH_MS = 700;
let csrf = null;

async function token() {
  // The console hands its CSRF token to the pages of a session through its state.
  if (csrf === null) {
    const reply = await fetch("/api/console/state", { credentials: "same-origin" });
    if (reply.ok) {
      const state = await reply.json();
      csrf = state.csrf || null;
    }
  }
  return csrf;
}

async function act(body) {
  const said = document.getElementById("said");
  body.csrf = await token();
  const reply = await fetch("/api/sim/world", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", "X-CSRF-Token": body.csrf || "" },
    body: JSON.stringify(body),
  });
  let answer = {};
  try { answer = await reply.json(); } catch (e) { answer = { error: reply.statusText }; }
  said.textContent = reply.ok ? answer.said : "Not done: " + (answer.error || reply.status);
  said.className = reply.ok ? "" : "error";
}

function refresh() {
  const img = document.getElementById("camera-view");
  const next = new Image();
  next.onload = () => { img.src = next.src; setTimeout(refresh, REFRESH_MS); };
  next.onerror = () => setTimeout(refresh, REFRESH_MS * 3);
  next.src = "/api/sim/camera.png?t=" + Date.now();
}

document.addEventListener("DOMContentLoaded", () => {
  document.getElementById("present").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const form = new FormData(ev.target);
    act({ action: "present", kind: form.get("kind"), status: form.get("status"),
          source: form.get("source") });
  });
  for (const button of document.querySelectorAll("button[data-action]")) {
    button.addEventListener("click", () => {
      const body = { action: button.dataset.action };
      if (button.dataset.state) body.state = button.dataset.state;
      act(body);
    });
  }
  setTimeout(refresh, REFRESH_MS);
});
