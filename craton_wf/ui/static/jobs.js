/* The jobs list: while a listed job has not finished, the same URL is fetched again
 * every few seconds and the table's rows are swapped for the fresh ones (server-rendered
 * and escaped; nothing here builds markup from data). */
"use strict";
(function () {
  var table = document.getElementById("jobs");
  var PERIOD = 3000;
  if (!table) { return; }
  function live() { return table.querySelector('tr[data-final="false"]') !== null; }
  function refresh() {
    fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (answer) {
        if (!answer.ok || answer.redirected) { throw new Error("jobs list: " + answer.status); }
        return answer.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var fresh = doc.querySelector("#jobs tbody");
        if (fresh) { table.replaceChild(document.adoptNode(fresh), table.tBodies[0]); }
      })
      .catch(function () { /* try again at the next period */ })
      .then(function () { if (live()) { window.setTimeout(refresh, PERIOD); } });
  }
  if (live()) { window.setTimeout(refresh, PERIOD); }
})();
