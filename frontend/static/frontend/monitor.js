/* The monitoring page's copy buttons: <button data-copy="#input-id"> copies that input's value. */
(function () {
  "use strict";
  var status = document.getElementById("mon-copy-status");
  function say(text) { if (status) { status.textContent = text; } }
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.querySelector(button.getAttribute("data-copy"));
      if (!input) { return; }
      var value = input.value;
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(value).then(function () { say("Copied."); }, function () {
          input.select(); say("Select the URL and copy it (Ctrl+C).");
        });
      } else {
        input.focus();
        input.select();
        var ok = false;
        try { ok = document.execCommand("copy"); } catch (e) { ok = false; }
        say(ok ? "Copied." : "Select the URL and copy it (Ctrl+C).");
      }
    });
  });
})();
