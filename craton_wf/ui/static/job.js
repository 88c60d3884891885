/* A job's page: live state and the log pane.
 *
 * Live state: while the job runs, the page follows its events
 * (/ui/jobs/{id}/events/stream, Server-Sent Events from the last event the page
 * was rendered with); a short while after a burst of events it fetches the
 * changing parts (/ui/jobs/{id}/live, the same template the page was rendered
 * with, for the same grid page and filters) and swaps them in.
 *
 * The log pane opens a run's log at its end (the last lines), loads earlier
 * pages on demand, and follows a run that has not finished from the last line
 * it holds. Lines are text nodes (craton.text), never markup.
 */
"use strict";
(function () {
  var live = document.getElementById("job-live");
  var pane = document.getElementById("log");
  if (!live || !pane) { return; }
  var jobId = live.getAttribute("data-job");
  var TAIL = 500, PAGE = 500, SETTLE = 700;
  var FINAL_RUN = {SUCCEEDED: 1, FAILED: 1, TIMED_OUT: 1, SKIPPED: 1, CANCELLED: 1};
  var STATE_CLASS = {SUCCEEDED: "ok", FAILED: "bad", TIMED_OUT: "bad", CANCELLED: "off",
    SKIPPED: "off", RUNNING: "live", STARTING: "live", QUEUED: "wait", PENDING: "wait"};

  function getJSON(url) {
    return fetch(url, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (answer) {
        if (!answer.ok) { throw new Error(url + ": " + answer.status); }
        return answer.json();
      });
  }

  // -- live state ------------------------------------------------------------------
  var pending = null;
  function refreshLive() {
    pending = null;
    var typing = document.activeElement;
    if (typing && typing.tagName === "INPUT" && live.contains(typing)) {
      pending = window.setTimeout(refreshLive, SETTLE);  // not under the user's cursor
      return;
    }
    var query = live.getAttribute("data-query");
    fetch("/ui/jobs/" + jobId + "/live" + (query ? "?" + query : ""),
          {credentials: "same-origin", headers: {"Accept": "text/html"}})
      .then(function (answer) {
        if (!answer.ok || answer.redirected) { throw new Error("live: " + answer.status); }
        return answer.text();
      })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        var nodes = Array.prototype.slice.call(doc.body.childNodes).map(function (node) {
          return document.adoptNode(node);
        });
        live.replaceChildren.apply(live, nodes);
        markOpenCell();
      })
      .catch(function () { /* the next event tries again */ });
  }
  function soon() { if (pending === null) { pending = window.setTimeout(refreshLive, SETTLE); } }
  if (live.getAttribute("data-running") === "true") {
    window.craton.stream(
      "/ui/jobs/" + jobId + "/events/stream?after=" + live.getAttribute("data-after"),
      {event: soon, end: soon});
  }

  // -- the log pane ----------------------------------------------------------------
  var lines = document.getElementById("log-lines");
  var title = document.getElementById("log-title");
  var stateBadge = document.getElementById("log-state");
  var following = document.getElementById("log-follow");
  var earlier = document.getElementById("log-earlier");
  var empty = document.getElementById("log-empty");
  var download = document.getElementById("log-download");
  var times = document.getElementById("log-times");
  var current = {run: null, source: null, before: null, last: 0};

  function lineNode(data) {
    var node = document.createElement("div");
    var marker = data.stream === "system" && data.line.indexOf("[craton] log ") === 0;
    node.className = "line " + data.stream + (marker ? " marker" : "");
    node.setAttribute("data-id", data.id);
    node.appendChild(window.craton.text("span", data.ts.replace("T", " ").slice(0, 23), "ts"));
    node.appendChild(window.craton.text("span", data.line, "text"));
    return node;
  }
  function showState(status) {
    stateBadge.textContent = status;
    stateBadge.className = "state " + (STATE_CLASS[status] || "wait");
  }
  function atBottom() { return lines.scrollHeight - lines.scrollTop - lines.clientHeight < 30; }
  function stopFollowing() {
    if (current.source) { current.source.close(); current.source = null; }
    following.hidden = true;
  }
  function follow(runId) {
    following.hidden = false;
    current.source = window.craton.stream(
      "/ui/jobs/" + jobId + "/logs/stream?run=" + runId + "&after=" + current.last, {
        line: function (data) {
          if (current.run !== runId || data.id <= current.last) { return; }
          var stick = atBottom();
          current.last = data.id;
          lines.appendChild(lineNode(data));
          empty.hidden = true;
          if (stick) { lines.scrollTop = lines.scrollHeight; }
        },
        end: function (data) {
          if (current.run !== runId) { return; }
          if (data && data.run_status) { showState(data.run_status); }
          following.hidden = true;
          current.source = null;
        }
      });
  }
  function markOpenCell() {
    Array.prototype.forEach.call(live.querySelectorAll("td.cell.open"), function (cell) {
      cell.classList.remove("open");
    });
    if (current.run) {
      var cell = live.querySelector('td.cell[data-run="' + current.run + '"]');
      if (cell) { cell.classList.add("open"); }
    }
  }
  function openRun(runId) {
    stopFollowing();
    current = {run: runId, source: null, before: null, last: 0};
    lines.replaceChildren();
    pane.hidden = false;
    earlier.hidden = true;
    empty.hidden = true;
    download.setAttribute("href", "/ui/jobs/" + jobId + "/runs/" + runId + "/log.txt");
    markOpenCell();
    getJSON("/ui/jobs/" + jobId + "/logs?run=" + runId + "&tail=" + TAIL).then(function (page) {
      if (current.run !== runId) { return; }
      var run = page.run;
      title.textContent = "Log of " + (run.host_name || "the job") + " · " + run.step_name +
        " (attempt " + run.attempt + (run.exit_code === null ? "" : ", exit " + run.exit_code) + ")";
      showState(run.status);
      page.lines.forEach(function (data) { lines.appendChild(lineNode(data)); });
      current.before = page.previous_before;
      current.last = page.lines.length ? page.lines[page.lines.length - 1].id : 0;
      earlier.hidden = current.before === null;
      empty.hidden = page.lines.length > 0 || !FINAL_RUN[run.status];
      lines.scrollTop = lines.scrollHeight;
      if (!FINAL_RUN[run.status]) { follow(runId); }
    }).catch(function (error) {
      title.textContent = "Log: " + error.message;
    });
  }
  earlier.addEventListener("click", function () {
    var runId = current.run;
    earlier.disabled = true;
    getJSON("/ui/jobs/" + jobId + "/logs?run=" + runId + "&before=" + current.before +
            "&limit=" + PAGE).then(function (page) {
      if (current.run !== runId) { return; }
      var height = lines.scrollHeight;
      var first = lines.firstChild;
      page.lines.forEach(function (data) { lines.insertBefore(lineNode(data), first); });
      lines.scrollTop += lines.scrollHeight - height;  // keep the lines read in place
      current.before = page.previous_before;
      earlier.hidden = current.before === null;
    }).catch(function () { /* the button stays for another try */ })
      .then(function () { earlier.disabled = false; });
  });
  times.addEventListener("change", function () {
    lines.classList.toggle("show-ts", times.checked);
  });
  document.getElementById("log-close").addEventListener("click", function () {
    stopFollowing();
    current = {run: null, source: null, before: null, last: 0};
    pane.hidden = true;
    markOpenCell();
  });
  if (pane.getAttribute("data-may") === "true") {
    document.addEventListener("click", function (event) {
      var link = event.target.closest ? event.target.closest("a.run") : null;
      if (!link || event.ctrlKey || event.metaKey || event.shiftKey) { return; }
      event.preventDefault();
      openRun(link.getAttribute("data-run"));
      window.history.replaceState(null, "", link.getAttribute("href"));
      pane.scrollIntoView({block: "nearest"});
    });
    if (pane.getAttribute("data-run")) { openRun(pane.getAttribute("data-run")); }
  }
})();
