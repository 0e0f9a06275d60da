// The study settings page: the guidelines preview shows the server's refusal (a 400, e.g. text past
// PREFLAB_MAX_TEXT_CHARS) in place of the preview; htmx swaps only 2xx answers by default.
(function () {
  "use strict";
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "guidelines-preview" && event.detail.xhr.status === 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();
