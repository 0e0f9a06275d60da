// The dashboard's import form, sent by htmx: how much of the file is uploaded, then a notice while
// the server checks and stores it. The server answers with HX-Redirect, and the dashboard reloads
// with the result (or the line that was wrong). Without JavaScript the form posts as a plain form.
(function () {
  "use strict";

  const form = document.querySelector("[data-import-form]");
  const status = document.getElementById("import-status");
  if (!form || !status) return;
  const bar = status.querySelector("progress");
  const text = status.querySelector("[data-import-text]");
  const megabytes = (bytes) => (bytes / 1e6).toFixed(1) + " MB";

  function show(message, fraction) {
    status.hidden = false;
    text.textContent = message;
    if (fraction === null) bar.removeAttribute("value"); // indeterminate: the server is at work
    else bar.value = 100 * fraction;
  }

  form.addEventListener("htmx:beforeRequest", function () {
    const file = form.querySelector('input[type="file"]').files[0];
    show("Uploading " + (file ? file.name + " (" + megabytes(file.size) + ")" : "the file") + "…", 0);
  });

  // htmx reports the upload's progress and the reply's under one name; only the upload has a body to wait for.
  let uploaded = false;
  form.addEventListener("htmx:xhr:progress", function (event) {
    const { loaded, total } = event.detail;
    if (uploaded || !total) return;
    if (loaded < total) {
      show("Uploading: " + megabytes(loaded) + " of " + megabytes(total), loaded / total);
    } else {
      uploaded = true;
      show("Uploaded. Checking every line, then storing: a large file takes a minute. This page reloads with the result.", null);
    }
  });

  function failed(message) {
    uploaded = false;
    bar.value = 0;
    status.hidden = false;
    text.textContent = message;
  }
  form.addEventListener("htmx:responseError", function (event) {
    failed("The import failed on the server (HTTP " + event.detail.xhr.status + "); nothing was stored. Try again, or ask an administrator.");
  });
  form.addEventListener("htmx:sendError", function () {
    failed("The server could not be reached; nothing was stored. Check the connection and try again.");
  });
})();
