// The city dashboard: a click on a row drills down; the city map (gridmap/maps/city.py, when the role may see it) is
// placed on the area with its children's layer drawn, coloured by the chosen KPI of the children, and drills down on a
// click of an area. The page works without this script (rows hold links).
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("dashboard-config").textContent);
  var focus = config.map || {};
  // the map's tile layers are named in the plural (gridmap.tiles.LAYERS), the dashboard's levels in the singular
  var LEVEL = {districts: "district", streets: "street", communities: "community", grids: "grid"};

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

  function cityMap() {
    var map = window.GridmapCityMap;
    return map && typeof map.colour === "function" && map.map ? map : null;
  }

  function colour() {
    var map = cityMap();
    if (!map || !config.childLevel) return;
    var kpi = select ? select.value : "reported";
    map.colour(focus.layer, config.values[kpi] || {}, config.labels[kpi] + " · " + config.title);
  }

  // The zoom at which the children's layer is the one drawn filled and clickable (tiles: districts from z8, streets
  // from z10, communities from z12, grids from z14), as close as that allows to showing the whole area.
  function clamp(z) {
    z = Math.max(focus.band[0], z);
    return focus.band[1] === null || focus.band[1] === undefined ? z : Math.min(focus.band[1], z);
  }

  function placed() {
    var map = cityMap();
    map.map.getContainer().dataset.placed = focus.layer;
    document.dispatchEvent(new CustomEvent("gridmap:dashboard-map", {detail: {layer: focus.layer}}));
  }

  function place() {
    var map = cityMap();
    if (!map || !focus.layer) return;
    var lmap = map.map;
    if (!focus.area) {  // the city: as the map opened on it, at the districts' zooms
      lmap.setView(lmap.getCenter(), clamp(lmap.getZoom()), {animate: false});
      placed();
      return;
    }
    var url = config.boundsUrl.replace("{level}", encodeURIComponent(focus.area))
      .replace("{code}", encodeURIComponent(focus.code));
    fetch(url, {credentials: "same-origin", headers: {Accept: "application/json"}}).then(function (r) {
      if (!r.ok) throw new Error("bounds " + r.status);
      return r.json();
    }).then(function (body) {
      var b = body.bounds;
      var box = L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
      lmap.setView(box.getCenter(), clamp(lmap.getBoundsZoom(box, false, L.point(16, 16))), {animate: false});
      placed();
    }).catch(function () { /* an area the tiles do not hold yet: the map stays on the city */ });
  }

  function start() {
    if (!cityMap() || start.done) return;
    start.done = true;
    colour();
    place();
  }

  if (select) select.addEventListener("change", colour);
  document.addEventListener("gridmap:area", function (event) {
    var d = event.detail || {};
    var level = LEVEL[d.level] || d.level;
    if (level && d.code && d.code !== config.code) go(level, d.code);
  });
  // the map's script may run after this one: start once it says it is ready, and now if it already is
  document.addEventListener("gridmap:citymap", function () { setTimeout(start, 0); });
  start();
})();
