// The city dashboard: a click on a row drills down; the city map (when installed) is coloured by the chosen KPI
// of the child areas and drills down on a click of an area. The page works without this script (rows hold links).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("dashboard-config").textContent);

  function go(level, code) {
    var params = new URLSearchParams({level: level});
    if (code) params.set("code", code);
    params.set("from", config.window.from);
    params.set("to", config.window.to);
    params.set("period", config.window.period);
    window.location.assign(config.page + "?" + params.toString());
  }

  document.querySelectorAll("table.drill tbody tr[data-code]").forEach(function (row) {
    row.addEventListener("click", function (event) {
      if (event.target.closest("a")) return;  // the link navigates by itself
      go(row.dataset.level, row.dataset.code);
    });
  });

  var select = document.getElementById("map-kpi");

  function colour() {
    var map = window.GridmapCityMap;
    if (!map || !config.childLevel || typeof map.colour !== "function") return;
    var kpi = select ? select.value : "reported";
    map.colour(config.childLevel, config.values[kpi] || {}, config.labels[kpi] + " · " + config.title);
  }

  if (select) select.addEventListener("change", colour);
  document.addEventListener("gridmap:area", function (event) {
    var d = event.detail || {};
    if (d.level && d.code && d.code !== config.code) go(d.level, d.code);
  });
  // the map's script may load after this one: colour once it says it is ready, and now if it already is
  document.addEventListener("gridmap:ready", colour);
  colour();
})();
