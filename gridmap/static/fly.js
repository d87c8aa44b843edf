/* The page beside a map flies it to a feature and highlights it: a row of a list (a blind spot, a grid,
   an incident) posts {type: "gridmap:fly", key} and the map fits that feature, registered by its key
   (maps/labels.py Feature), and outlines it. Only the page that embeds the map may steer it. */
(function () {
  "use strict";
  if (window.gridmapFly) return;
  var features = {};
  var HIGHLIGHT = {color: "#f59e0b", weight: 5, opacity: 1, fill: false, interactive: false,
                   className: "gridmap-flown"};
  var still = window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  function register(key, layer) { features[key] = layer; }

  function attach(map) {
    var glow = L.featureGroup().addTo(map);
    window.addEventListener("message", function (event) {
      if (event.origin !== window.location.origin || event.source !== window.parent) return;
      var d = event.data || {};
      if (d.type === "gridmap:fly" && typeof d.key === "string") fly(map, glow, d.key);
    });
    window.gridmapFly.to = function (key) { return fly(map, glow, key); };
  }

  function fly(map, glow, key) {
    var layer = features[key];
    if (!layer) return false;
    glow.clearLayers();
    if (layer.getLatLng) {  // a point: its ring, at a street zoom
      var at = layer.getLatLng();
      glow.addLayer(L.circleMarker(at, {radius: 14, color: HIGHLIGHT.color, weight: 4, fill: false,
                                        interactive: false, className: HIGHLIGHT.className}));
      var z = Math.max(map.getZoom(), 17);
      if (still) map.setView(at, z); else map.flyTo(at, z, {duration: 0.5});
    } else {
      glow.addLayer(L.geoJSON(layer.toGeoJSON(), {style: HIGHLIGHT}));
      var bounds = layer.getBounds();
      // no closer than a street unless the map is already closer (a courtyard opens at 18.5): a small
      // feature is shown among its surroundings, and the map never zooms out to show a feature in view
      var opts = {padding: [24, 24], maxZoom: Math.max(18, map.getZoom())};
      if (still) map.fitBounds(bounds, opts); else map.flyToBounds(bounds, L.extend({duration: 0.5}, opts));
    }
    glow.bringToFront();
    return true;
  }

  window.gridmapFly = {register: register, attach: attach};
})();
