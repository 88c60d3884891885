/* craton-wf console: the tasks, workflows and inventory pages' scripts.
 *
 * A build's log follows its stream while the build runs: each line arrives as
 * a Server-Sent Event and is added as text (never HTML); the build's state is
 * updated when the stream ends. The browser's EventSource resumes after the
 * last line it got when the connection drops (Last-Event-ID), so no line is
 * shown twice or lost.
 */
"use strict";
(function () {
  function followBuildLog(pre) {
    var state = document.getElementById("build-state");
    function atBottom() {
      return pre.scrollHeight - pre.scrollTop - pre.clientHeight < 40;
    }
    window.craton.stream(pre.getAttribute("data-stream"), {
      line: function (data) {
        var stick = atBottom();
        var span = window.craton.text("span", data.line, "line");
        span.setAttribute("data-seq", String(data.seq));
        pre.appendChild(span);
        pre.appendChild(document.createTextNode("\n"));
        if (stick) { pre.scrollTop = pre.scrollHeight; }
      },
      end: function (data) {
        if (state && data && data.status) {
          state.textContent = data.status;
          state.className = "state " + (data.status === "READY" ? "ok" : "bad");
        }
        pre.removeAttribute("data-stream");
        pre.setAttribute("data-ended", "true");
      },
      error: function (data) {
        if (data && data.message) {  // the stream's own error item, not a dropped connection
          pre.appendChild(window.craton.text("span", data.message, "line gap"));
        }
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var pre = document.querySelector("pre.log[data-stream]");
    if (pre && window.craton) { followBuildLog(pre); }
  });
})();
