// Signed-in pages: a websocket that says "changed"; the page then fetches
// itself and swaps in its live regions ([data-live-region]), leaving forms
// being filled in alone.
(function () {
  "use strict";
  function refresh() {
    fetch(window.location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var next = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-region]").forEach(function (here) {
          var there = next.getElementById(here.id);
          if (there) { here.replaceWith(there); }
        });
      });
  }
  function connect(delay) {
    if (!document.querySelector("[data-live-region]")) { return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + "/pages/live");
    socket.onopen = function () { if (connect.dropped) { connect.dropped = false; refresh(); } delay = 1000; };
    socket.onmessage = function (m) { if (m.data.indexOf('"changed"') !== -1) { refresh(); } };
    socket.onclose = function (event) {
      if (event.code === 4001) { return; }
      connect.dropped = true;
      setTimeout(function () { connect(Math.min(delay * 2, 30000)); }, delay);
    };
  }
  document.addEventListener("DOMContentLoaded", function () {
    connect(1000);
    // time left on a case, late and at risk move with the clock too, not only with changes
    // (not while someone is choosing in a form inside a live region)
    if (document.querySelector("[data-live-region]")) {
      setInterval(function () {
        var busy = document.activeElement && document.activeElement.closest("[data-live-region] form");
        if (!busy) { refresh(); }
      }, 30000);
    }
  });
})();
