/* The regrade progress page: poll the batch's progress JSON until every
   submission has its new verdict, then reload once to show the verdicts. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.querySelector("[data-progress-url]");
    if (!box || box.dataset.done === "true") {
      return;
    }
    var bar = document.getElementById("regrade-bar");
    var finished = document.getElementById("regrade-finished");
    var state = document.getElementById("regrade-state");
    var failures = 0;

    function poll() {
      fetch(box.dataset.progressUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (!response.ok) { throw new Error("HTTP " + response.status); }
          return response.json();
        })
        .then(function (progress) {
          failures = 0;
          bar.max = progress.total;
          bar.value = progress.finished;
          finished.textContent = progress.finished;
          document.getElementById("regrade-changed").textContent = progress.changed;
          if (progress.done) {
            state.textContent = "— finished.";
            window.location.reload();
          } else {
            window.setTimeout(poll, 1000);
          }
        })
        .catch(function () {
          failures += 1;
          state.textContent = "— cannot read the progress (retrying)…";
          window.setTimeout(poll, Math.min(10000, 1000 * Math.pow(2, failures)));
        });
    }
    window.setTimeout(poll, 500);
  });
})();
