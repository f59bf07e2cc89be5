// PageLedger console: field-level save of settings, and reading a licence file into its form.
// Plain script, no framework, no build step; everything else works without it.
"use strict";
(function () {
  var csrfMeta = document.querySelector('meta[name="csrf-token"]');
  var csrf = csrfMeta ? csrfMeta.getAttribute("content") : "";

  function valueOf(input) {
    var kind = input.getAttribute("data-kind");
    if (kind === "boolean") return input.checked;
    if (kind === "integer" || kind === "number") {
      var n = Number(input.value.trim());
      return input.value.trim() === "" || isNaN(n) ? input.value : n;
    }
    return input.value;
  }

  function expectedOf(input) {
    var raw = input.getAttribute("data-expected");
    var kind = input.getAttribute("data-kind");
    if (kind === "boolean") return raw === "true";
    if (kind === "integer" || kind === "number") return Number(raw);
    return raw;
  }

  function show(input, value) {
    var kind = input.getAttribute("data-kind");
    if (kind === "password") {
      // A secret is never shown back: only whether it is set.
      input.value = "";
      var state = document.getElementById(input.id + "-state");
      if (state) state.textContent = value ? "set" : "not set";
    } else if (kind === "boolean") input.checked = !!value; else input.value = String(value);
    input.setAttribute("data-expected", String(value));
  }

  function say(box, text, ok) {
    box.textContent = text;
    box.className = "status " + (ok ? "saved" : "error");
  }

  function save(field, input) {
    var box = field.querySelector(".status");
    var name = field.getAttribute("data-setting");
    say(box, "Saving…", true);
    fetch("/api/v1/settings/" + encodeURIComponent(name), {
      method: "PATCH", credentials: "same-origin",
      headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
      body: JSON.stringify({value: valueOf(input), expected: expectedOf(input)})
    }).then(function (r) {
      return r.json().then(function (body) { return {status: r.status, body: body}; });
    }).then(function (a) {
      if (a.status === 200) {
        show(input, a.body.value);
        say(box, "Saved.", true);
      } else if (a.status === 409) {
        // Changed meanwhile by someone else: show what it is now, so the admin decides again.
        fetch("/api/v1/settings", {credentials: "same-origin"}).then(function (r) { return r.json(); })
          .then(function (all) {
            all.settings.forEach(function (s) { if (s.name === name) show(input, s.value); });
            say(box, "Not saved: someone changed this setting meanwhile. It now shows the current value.", false);
          });
      } else {
        var errors = a.body.errors || {};
        var text = (errors.value || errors.expected || [a.body.description || a.body.title]).join(" ");
        say(box, "Not saved: " + text, false);
      }
    }).catch(function () { say(box, "Not saved: the server could not be reached.", false); });
  }

  document.querySelectorAll("[data-setting]").forEach(function (field) {
    var input = field.querySelector("input, select");
    if (!input || input.disabled) return;
    input.addEventListener("change", function () { save(field, input); });
  });

  document.querySelectorAll("input[type=file][data-fills]").forEach(function (picker) {
    picker.addEventListener("change", function () {
      var target = document.getElementById(picker.getAttribute("data-fills"));
      var file = picker.files && picker.files[0];
      if (!target || !file) return;
      if (file.size > 100000) { target.value = ""; alert("A licence file is at most 100 kB."); return; }
      file.text().then(function (text) { target.value = text; });
    });
  });
})();
