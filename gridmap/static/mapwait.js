/* The "Loading map…" line over each map's iframe (templates/_map.html): shown while the iframe
   loads — again each time a page points it at a new map (the planner does after every edit) —
   hidden once the iframe holds a drawn Leaflet map, and turned into an error when it loaded
   something else (an error page, a refused request). */
(function () {
  "use strict";
  if (window.gridmapMapWait) return;  // the macro may be used twice on one page
  window.gridmapMapWait = true;

  function drawn(frame) {
    try { return !!frame.contentDocument.querySelector(".leaflet-container"); } catch (e) { return false; }
  }
  function watch(status) {
    var frame = document.getElementById(status.getAttribute("data-map"));
    if (!frame) return;
    var text = status.querySelector(".map-status-text"), loading = text.textContent;
    function show() { text.textContent = loading; status.classList.remove("error"); status.hidden = false; }
    function settle() {
      if (!frame.getAttribute("src")) return;  // the planner's frame gets its src once the plan is loaded
      if (drawn(frame)) { status.hidden = true; return; }
      text.textContent = status.getAttribute("data-failed");
      status.classList.add("error");
      status.hidden = false;
    }
    frame.addEventListener("load", settle);
    new MutationObserver(show).observe(frame, {attributes: true, attributeFilter: ["src"]});
    // A map that finished before this deferred script ran fires no further load event.
    try {
      var doc = frame.contentDocument;
      if (frame.getAttribute("src") && doc && doc.readyState === "complete" && doc.URL !== "about:blank") settle();
    } catch (e) { /* not readable yet: its load event is still to come */ }
  }
  Array.prototype.forEach.call(document.querySelectorAll(".map-status[data-map]"), watch);
})();
