// The traveller display (display.md): draws the screen the kiosk computes, follows it by
// server push (/api/display/stream), reconnects by itself, and shows "out of order" when
// it has heard nothing from the kiosk for more than 3 s. No sound, nothing from elsewhere.
"use strict";

(function () {
  const LOST_MS = 3000;
  const RECONNECT_MS = 1000;
  const ICONS = ["qr", "spinner", "check", "cross", "hand", "exit", "padlock", "clock", "warning"];
  const iconData = {}; // icon name -> data: URL, so a lost kiosk still has its warning sign
  const main = document.getElementById("screen");
  const icon = document.getElementById("icon");
  const lines = document.getElementById("lines");
  const holder = document.getElementById("holder");
  let lastHeard = Date.now();
  let lostScreen = null; // the kiosk's own out-of-order screen, in its languages
  let shown = null;
  let source = null;
  let lastAttempt = 0;

  function render(screen) {
    const key = JSON.stringify(screen);
    if (key === shown) return;
    shown = key;
    main.className = "screen colour-" + screen.colour + " screen-" + screen.screen +
      (screen.flash ? " flash" : "");
    main.dataset.screen = screen.screen;
    icon.src = iconData[screen.icon] || "/static/icon-" + screen.icon + ".svg";
    icon.alt = "";
    lines.replaceChildren();
    screen.lines.forEach(function (line, i) {
      const block = document.createElement("div");
      block.className = "line " + (i === 0 ? "main" : "second") + " " + line.key;
      screen.langs.forEach(function (lang) {
        const p = document.createElement("p");
        p.lang = lang;
        p.textContent = line.text[lang] || "";
        block.appendChild(p);
      });
      lines.appendChild(block);
    });
    if (screen.holder) {
      holder.textContent = screen.holder;
      holder.hidden = false;
    } else {
      holder.hidden = true;
      holder.textContent = "";
    }
  }

  function heard() {
    lastHeard = Date.now();
  }

  function connect() {
    lastAttempt = Date.now();
    if (source) source.close();
    source = new EventSource("/api/display/stream");
    source.addEventListener("screen", function (e) {
      heard();
      render(JSON.parse(e.data));
    });
    source.addEventListener("ping", heard);
    source.onerror = function () {
      // A network error makes EventSource retry by itself; an answer that is not a stream
      // (a full server, a restart half done) closes it for good: start a new one then.
      if (source.readyState === EventSource.CLOSED) {
        setTimeout(connect, RECONNECT_MS);
      }
    };
  }

  function fetchLostScreen() {
    fetch("/api/display/lost", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (s) { if (s) lostScreen = s; })
      .catch(function () { /* tried again while the kiosk is lost */ });
  }

  setInterval(function () {
    if (Date.now() - lastHeard > LOST_MS) {
      // Whatever the browser's own retry does (it may back off), try again every second:
      // the kiosk's screen comes back about a second after a daemon restart.
      if (Date.now() - lastAttempt > RECONNECT_MS) {
        connect();
        if (!lostScreen) fetchLostScreen();
        if (!iconData.warning) fetchIcons();
      }
      render(lostScreen || {
        screen: "out_of_order", icon: "warning", colour: "grey", flash: false,
        lines: [], langs: [], holder: null,
      });
    }
  }, 250);

  function fetchIcons() {
    ICONS.forEach(function (name) {
      fetch("/static/icon-" + name + ".svg", { cache: "no-store" })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (svg) {
          if (svg) iconData[name] = "data:image/svg+xml;charset=utf-8," + encodeURIComponent(svg);
        })
        .catch(function () { /* the file URL is used instead */ });
    });
  }

  fetchIcons();
  fetchLostScreen();
  connect();
})();
