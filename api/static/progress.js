// PageLedger console: the progress of background work (a report run, an audit verify).
// A <progress data-poll="URL"> is updated from the JSON state at URL every second; when the work
// is done or has failed the page is reloaded, and the server shows the result. Without this
// script the page has a Refresh link that does the same.
"use strict";
(function () {
  var bar = document.querySelector("progress[data-poll]");
  if (!bar) return;
  var url = bar.getAttribute("data-poll");
  var phase = document.getElementById("progress-phase");
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
      .then(function (s) {
        bar.value = Number(s.progress) || 0;
        bar.textContent = Math.round((Number(s.progress) || 0) * 100) + "%";
        if (phase) phase.textContent = s.phase || s.state;
        if (s.state === "done" || s.state === "failed") { window.location.reload(); return; }
        window.setTimeout(poll, 1000);
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
})();
