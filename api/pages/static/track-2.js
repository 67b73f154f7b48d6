// The tracking page: times in the reader's own time zone, and a websocket that
// says "changed" whenever the shipment changes; the page then fetches itself
// again and swaps its content in. No library, nothing from another host.
(function () {
  "use strict";
  function localTimes(root) {
    // "Friday 10 January, 18:00 CET": a 24-hour clock in the reader's (the recipient's) own zone
    var lang = document.documentElement.lang === "es" ? "es-ES" : "en-GB";
    var format = new Intl.DateTimeFormat(lang, {
      weekday: "long", day: "numeric", month: "long", hour: "2-digit", minute: "2-digit", hourCycle: "h23",
      timeZoneName: "short"
    });
    root.querySelectorAll("time[datetime]").forEach(function (el) {
      var when = new Date(el.getAttribute("datetime"));
      if (!isNaN(when)) { el.textContent = format.format(when); }
    });
  }
  function refresh() {
    return fetch(window.location.href, { headers: { "Accept": "text/html" }, cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : null; })
      .then(function (html) {
        if (!html) { return; }
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("tracking");
        var here = document.getElementById("tracking");
        if (next && here) { here.replaceWith(next); localTimes(next); document.title = next.ownerDocument.title; }
      });
  }
  function connect(delay) {
    var box = document.getElementById("tracking");
    if (!box) { return; }
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    var socket = new WebSocket(scheme + window.location.host + box.dataset.live);
    socket.onopen = function () { delay = 1000; if (connect.dropped) { connect.dropped = false; refresh(); } };
    socket.onmessage = function (message) {
      if (message.data.indexOf('"changed"') !== -1) { refresh(); }
    };
    socket.onclose = function (event) {
      if (event.code === 4001) { return; }
      connect.dropped = true;
      var state = document.getElementById("live-state");
      if (state) { state.textContent = state.dataset.offline; }
      setTimeout(function () { connect(Math.min(delay * 2, 30000)); }, delay);
    };
  }
  document.addEventListener("DOMContentLoaded", function () { localTimes(document); connect(1000); });
})();
