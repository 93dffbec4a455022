/* The case screen's booking section (rooms and vouchers): the room sagas' timelines fill from the
   presence channel's events as they arrive (graph:step:started / completed), and the whole section is
   re-read from the server (the progress and reservations selectors) shortly after any case event, so
   what it shows is always the server's state. Uses the socket console.js opened (window.nexaSocket). */
(function () {
  "use strict";
  const section = document.getElementById("booking");
  const socket = window.nexaSocket;
  if (!section || !socket) return;
  const caseUrn = document.body.dataset.case;
  let timer = null;

  // Several events arrive per step; one re-read after a short quiet spell is enough.
  function refresh() {
    if (timer) clearTimeout(timer);
    timer = setTimeout(function () {
      timer = null;
      if (window.htmx) htmx.ajax("GET", section.dataset.url, { target: "#booking", swap: "innerHTML" });
    }, 250);
  }

  function stepOf(payload) {
    if (!payload || payload.caseUrn !== caseUrn || !payload.stepUrn) return null;
    return section.querySelector('li[data-step="' + CSS.escape(payload.stepUrn) + '"]');
  }

  function mark(payload, status) {
    const step = stepOf(payload);
    if (step) {
      step.dataset.status = status;
      step.querySelector(".step-status").textContent = status;
    }
    refresh();
  }

  socket.on("graph:step:started", function (payload) { mark(payload, "RUNNING"); });
  socket.on("graph:step:completed", function (payload) { mark(payload, "COMPLETED"); });
  socket.on("graph:step:progress", function (payload) { if (stepOf(payload)) refresh(); });
  socket.on("subcase:state-changed", function (payload) { if (payload.caseUrn === caseUrn) refresh(); });
  socket.on("case:updated", function (payload) { if (payload.caseUrn === caseUrn) refresh(); });
})();
