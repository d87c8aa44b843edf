/* The coverage page: a blind spot's row (clicked, or Enter or Space on it) flies the map to that blind
   spot and outlines it; the map knows each one by the number the list gives it (maps/cameras.py). */
(function () {
  "use strict";
  var frame = document.getElementById("map");
  if (!frame) return;
  function fly(row) {
    Array.prototype.forEach.call(row.parentNode.children, function (tr) { tr.classList.toggle("selected", tr === row); });
    if (frame.contentWindow) {
      frame.contentWindow.postMessage({type: "gridmap:fly", key: row.getAttribute("data-key")}, window.location.origin);
    }
  }
  Array.prototype.forEach.call(document.querySelectorAll("#blind-spots tbody tr[data-key]"), function (row) {
    row.addEventListener("click", function () { fly(row); });
    row.addEventListener("keydown", function (e) {
      if (e.key === "Enter" || e.key === " ") { e.preventDefault(); fly(row); }
    });
  });
})();
