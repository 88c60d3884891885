/* craton-wf console: small helpers shared by the pages, no framework.
 *
 * Pages carry their data in data- attributes (the Content-Security-Policy
 * allows no inline script). `craton.csrf()` is the page's CSRF token, sent by
 * `craton.post` in the X-CSRF-Token header; `craton.stream` follows one of the
 * console's Server-Sent Event streams, resuming from the last event id after
 * a dropped connection (the browser's EventSource does that by itself).
 */
"use strict";
window.craton = (function () {
  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }
  function post(url, fields) {
    var body = new URLSearchParams(fields || {});
    return fetch(url, {
      method: "POST", body: body, credentials: "same-origin",
      headers: {"X-CSRF-Token": csrf(), "Accept": "application/json"}
    });
  }
  function stream(url, handlers) {
    var source = new EventSource(url, {withCredentials: true});
    Object.keys(handlers).forEach(function (name) {
      source.addEventListener(name, function (event) {
        var data = null;
        try { data = JSON.parse(event.data); } catch (e) { data = event.data; }
        handlers[name](data, event);
      });
    });
    source.addEventListener("end", function () { source.close(); });
    return source;
  }
  function text(tag, content, className) {
    var node = document.createElement(tag);
    node.textContent = content;  // never innerHTML: a line is text, whatever it holds
    if (className) { node.className = className; }
    return node;
  }
  return {csrf: csrf, post: post, stream: stream, text: text};
})();
