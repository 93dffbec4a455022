/* The console's behaviour: htmx does the server round trips; this file only
   (1) lets htmx show the server's refusals (4xx problem messages) where the action was,
   (2) keeps the presence channel (socket.io-client, /ws/cases) and applies its events to the page,
   (3) makes the manifest keyboard navigable. No framework, no build step. */
(function () {
  "use strict";
  const body = document.body;

  document.addEventListener("htmx:beforeSwap", function (event) {
    const status = event.detail.xhr.status;
    if (status >= 400 && status < 500) {  // a problem message rendered by the server: show it
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // The editor just opened: bring it into view (below the manifest on a tablet) and put the keyboard in it.
  document.addEventListener("htmx:afterSwap", function (event) {
    const target = event.detail.target;
    if (target.id !== "editor") return;
    target.scrollIntoView({ block: "nearest" });
    const first = target.querySelector("select, input:not([type=hidden]), button");
    if (first) first.focus({ preventScroll: true });
  });

  const namesNode = document.getElementById("operator-names");
  const names = namesNode ? JSON.parse(namesNode.textContent) : {};
  const me = body.dataset.me;
  const caseUrn = body.dataset.case;

  function rowOf(subCaseUrn) {
    return document.querySelector('#manifest-rows tr[data-urn="' + CSS.escape(subCaseUrn) + '"]');
  }

  function showLock(row, holder) {
    row.dataset.holder = holder || "";
    const cell = row.querySelector("td.lock");
    const edit = row.querySelector("button.edit");
    if (!holder) {
      cell.textContent = "";
    } else if (holder === me) {
      cell.textContent = "✎ " + (cell.dataset.you || "you");
    } else {
      cell.textContent = "🔒 " + (names[holder] || holder);
    }
    if (edit) edit.hidden = Boolean(holder && holder !== me);
  }

  // The passenger open in the editor changed hands (a supervisor's force-unlock, an expired lease): say so at
  // once, before the operator types anything; the server refuses the write anyway (stale fencing token).
  function warnIfLockLost(payload) {
    const editor = document.querySelector('#editor .editor[data-urn="' + CSS.escape(payload.subCaseUrn) + '"]');
    if (!editor || payload.lockedBy === me) return;
    const warning = editor.querySelector(".lock-lost");
    warning.textContent = payload.lockedBy
      ? editor.dataset.lostTo.replace("{name}", names[payload.lockedBy] || payload.lockedBy)
      : editor.dataset.lost;
    warning.hidden = false;
  }

  function onSubcaseChanged(payload) {
    warnIfLockLost(payload);
    const row = rowOf(payload.subCaseUrn);
    if (!row) return;
    row.querySelector("td.status").textContent = payload.status;
    if (payload.version !== undefined) row.dataset.version = payload.version;
    showLock(row, payload.lockedBy);
  }

  function onCaseUpdated(payload) {
    const dashboard = body.dataset.dashboardUrl;
    if (dashboard && window.htmx) {
      htmx.ajax("GET", dashboard, { target: "#live-sections", swap: "innerHTML" });
    }
    if (caseUrn && payload.caseUrn === caseUrn) {
      // A wave asked for, approved or rejected anywhere: the pending list follows.
      if (body.dataset.wavesUrl && window.htmx) {
        htmx.ajax("GET", body.dataset.wavesUrl, { target: "#waves", swap: "innerHTML" });
      }
      const status = document.getElementById("case-status");
      if (status) status.textContent = payload.status;
      const counts = document.getElementById("case-counts");
      if (counts && payload.counts) {
        counts.replaceChildren();
        Object.entries(payload.counts).forEach(function ([name, n]) {
          if (!n) return;
          const span = document.createElement("span");
          span.className = "count";
          span.dataset.status = name;
          span.append(name + " ");
          const b = document.createElement("b");
          b.textContent = n;
          span.append(b, " ");
          counts.append(span);
        });
      }
    }
  }

  function connect() {
    const tokenUrl = body.dataset.socketTokenUrl;
    if (!tokenUrl || typeof io === "undefined") return;
    const live = document.getElementById("live-status");
    const socket = io({
      path: "/ws/cases",
      transports: ["websocket"],
      // A fresh short-lived token at every (re)connect (docs/decisions.md).
      auth: function (callback) {
        fetch(tokenUrl, { credentials: "same-origin" })
          .then(function (response) { return response.json(); })
          .then(function (data) { callback({ token: data.token }); });
      },
    });
    function markLive() {
      if (live) { live.dataset.state = "online"; live.textContent = live.dataset.online || "live"; }
    }
    socket.on("connect", function () {
      // On a case page the page is live once the server acknowledged the case room (its events reach us).
      if (caseUrn) {
        socket.emit("subscribe", { caseUrn: caseUrn }, function (answer) { if (answer && answer.ok) markLive(); });
      } else {
        markLive();
      }
      // Our own socket makes us "online": refresh the dashboard's presence list once connected.
      if (body.dataset.dashboardUrl) onCaseUpdated({});
    });
    socket.on("disconnect", function () {
      if (live) { live.dataset.state = "offline"; live.textContent = live.dataset.offline || "offline"; }
    });
    socket.on("case:updated", onCaseUpdated);
    socket.on("subcase:state-changed", onSubcaseChanged);
    window.nexaSocket = socket;
  }

  // Manifest: ↑/↓ move between rows, Enter opens the focused passenger (takes the lock).
  document.addEventListener("keydown", function (event) {
    const row = event.target.closest && event.target.closest("#manifest-rows tr[data-urn]");
    if (!row) return;
    let next = null;
    if (event.key === "ArrowDown") next = row.nextElementSibling;
    else if (event.key === "ArrowUp") next = row.previousElementSibling;
    else if (event.key === "Enter" && event.target === row) {
      const edit = row.querySelector("button.edit:not([hidden])");
      if (edit) edit.click();
      event.preventDefault();
      return;
    } else return;
    if (next) { next.focus(); event.preventDefault(); }
  });

  // SLA clocks: a countdown to each review item's due time (negative and red once breached), every second.
  function tickCountdowns() {
    document.querySelectorAll("time[data-countdown]").forEach(function (node) {
      const left = Math.round((Date.parse(node.getAttribute("datetime")) - Date.now()) / 1000);
      const abs = Math.abs(left);
      const hours = Math.floor(abs / 3600);
      const minutes = String(Math.floor((abs % 3600) / 60)).padStart(2, "0");
      const seconds = String(abs % 60).padStart(2, "0");
      node.textContent = (left < 0 ? "−" : "") + (hours ? hours + ":" : "") + minutes + ":" + seconds;
      node.classList.toggle("breached", left < 0);
    });
  }
  setInterval(tickCountdowns, 1000);
  tickCountdowns();

  connect();
})();
