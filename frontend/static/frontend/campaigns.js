// Staff campaign set-up pages: the dataset/split radio fills the step-1 form's fields; the set-up page follows
// a running build by polling its status (no inline script: the pages' Content-Security-Policy forbids it).
(function () {
  "use strict";
  document.querySelectorAll("input[name='split-choice']").forEach(function (radio) {
    radio.addEventListener("change", function () {
      var form = radio.form;
      form.elements.dataset.value = radio.dataset.dataset;
      form.elements.split.value = radio.dataset.split;
    });
  });
  var steps = document.querySelector(".cs-steps-live[data-poll]");
  if (!steps) { return; }
  function poll() {
    fetch(steps.dataset.statusUrl, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (response) { return response.json(); })
      .then(function (state) {
        document.querySelector("[data-state='build_progress']").value = state.build_progress;
        document.querySelector("[data-state='comparisons']").textContent = state.comparisons;
        document.querySelector("[data-state='build_status']").textContent = state.build_status.replace("_", " ");
        if (state.build_status === "queued" || state.build_status === "running") {
          window.setTimeout(poll, 1000);
        } else {
          window.location.reload();  // built or failed: the next step's buttons change
        }
      })
      .catch(function () { window.setTimeout(poll, 3000); });
  }
  window.setTimeout(poll, 1000);
})();
