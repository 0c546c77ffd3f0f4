// Search as you type on the directory page: the one script of the console.
// Without it the search form still works (a plain GET); with it, results follow typing.
// Loaded from the site itself (CSP script-src 'self'); it only swaps in HTML the server
// rendered and escaped for the same query.
"use strict";
document.addEventListener("DOMContentLoaded", function () {
  var input = document.getElementById("q");
  if (!input) { return; }
  var target = document.getElementById(input.dataset.results);
  var timer = null;
  var latest = 0;
  input.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var query = input.value.trim();
      var ticket = ++latest;
      var url = "/contractors?partial=1&q=" + encodeURIComponent(query);
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) { return response.ok ? response.text() : null; })
        .then(function (html) {
          if (html === null || ticket !== latest) { return; }
          target.innerHTML = html;
          history.replaceState(null, "", "/contractors?q=" + encodeURIComponent(query));
        })
        .catch(function () { /* the plain form still works */ });
    }, 250);
  });
});
