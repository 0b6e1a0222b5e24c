// The leaderboard's explanation is folded below the table: a link to it (or a URL ending in #how-to-read) opens it.
(function () {
  "use strict";
  var fold = document.getElementById("how-to-read-fold");
  if (!fold) { return; }
  function openFor(hash) {
    if (hash && fold.querySelector(hash)) { fold.open = true; }
  }
  document.querySelectorAll("a[href^='#']").forEach(function (link) {
    link.addEventListener("click", function () { openFor(link.getAttribute("href")); });
  });
  openFor(window.location.hash);
})();
