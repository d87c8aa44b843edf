/* The city map over vector tiles (gridmap/maps/city.py builds the Folium map that starts it).
 *
 * Areas come from /tiles/{layer}/{z}/{x}/{y}.mvt, drawn by the vendored Leaflet.VectorGrid. The
 * finest level legible at the zoom is filled with the colours of the chosen property and answers
 * clicks; the coarser levels stay as outlines for orientation. A click opens the area's popup,
 * tells the page (a `gridmap:area` event on document) and drills down: it zooms to the area at
 * the zoom where its children are legible.
 *
 * For pages that embed the map (the dashboard):
 *   window.GridmapCityMap = {map, colour(level, valuesByCode, title, breaks?), flyTo(level, code)}
 * Every string shown comes from the server's catalogue (config.labels); names from the data are
 * set as text, never as HTML.
 */
(function () {
  "use strict";

  // Leaflet 1.8 removed L.DomEvent.fakeStop, which VectorGrid 1.3's canvas tiles still call on a
  // click: without it every click on an area throws before any handler runs.
  if (window.L && L.DomEvent && !L.DomEvent.fakeStop) {
    L.DomEvent.fakeStop = function () { return true; };
  }

  var COLOURS = ["#ffffb2", "#fecc5c", "#fd8d3c", "#f03b20", "#bd0026"];  // ColorBrewer YlOrRd, 5 classes
  var NO_DATA = "#d9d9d9";
  var OUTLINE = {districts: ["#4a148c", 3], streets: ["#1a237e", 2.5], communities: ["#00695c", 2], grids: ["#37474f", 1]};

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function quintiles(values) {
    var v = values.filter(function (x) { return typeof x === "number" && isFinite(x); }).sort(function (a, b) { return a - b; });
    var out = [];
    if (!v.length) { return out; }
    [0.2, 0.4, 0.6, 0.8].forEach(function (q) {
      var b = v[Math.min(v.length - 1, Math.floor(q * (v.length - 1) + 0.5))];
      if (b > 0 && (!out.length || b > out[out.length - 1])) { out.push(b); }
    });
    return out;
  }

  function classOf(value, breaks) {
    if (typeof value !== "number" || !isFinite(value)) { return -1; }
    var k = 0;
    while (k < breaks.length && value > breaks[k]) { k += 1; }
    return Math.min(k, COLOURS.length - 1);
  }

  function start(map, cfg) {
    var labels = cfg.labels || {};
    var custom = {};  // level → {values, title, breaks}: colours a page gave through colour()
    var layers = {};
    var selected = null;  // {level, code}
    var tooltip = L.tooltip({sticky: true, direction: "top", opacity: 0.9});
    var api = {map: map, layers: layers, tilesLoaded: 0, lastArea: null};

    function bandOf(level) {
      var i = cfg.levels.indexOf(level);
      var next = cfg.levels[i + 1];
      return [cfg.minZoom[level], next ? cfg.minZoom[next] - 1 : 22];
    }

    function activeLevel(zoom) {
      var active = null;
      cfg.levels.forEach(function (l) { if (zoom >= cfg.minZoom[l]) { active = l; } });
      return active;
    }

    function colouring(level) {
      if (custom[level]) { return custom[level]; }
      return {values: null, title: (labels.properties || {})[cfg.colourBy] || cfg.colourBy,
              breaks: ((cfg.breaks || {})[level] || {})[cfg.colourBy] || []};
    }

    function valueOf(level, props) {
      var c = colouring(level);
      if (c.values) { return Object.prototype.hasOwnProperty.call(c.values, props.code) ? c.values[props.code] : null; }
      return props[cfg.colourBy];
    }

    function styleFor(level) {
      return function (props, zoom) {
        var line = OUTLINE[level];
        if (activeLevel(zoom) !== level) {
          return {fill: false, stroke: true, color: line[0], weight: line[1], opacity: 0.8};
        }
        var k = classOf(valueOf(level, props), colouring(level).breaks);
        return {fill: true, fillColor: k < 0 ? NO_DATA : COLOURS[k], fillOpacity: 0.6,
                stroke: true, color: line[0], weight: Math.max(1, line[1] - 1), opacity: 0.9};
      };
    }

    function url(layer) {
      return cfg.tileUrl.replace("{layer}", layer);
    }

    function popupFor(level, p) {
      var box = el("div", null, "city-popup");
      box.appendChild(el("strong", p.name || p.code));
      box.appendChild(el("div", ((labels.levels || {})[level] || level) + " · " + p.code, "city-popup-code"));
      cfg.properties.forEach(function (prop) {
        box.appendChild(el("div", ((labels.properties || {})[prop] || prop) + ": " + (p[prop] === undefined ? "—" : p[prop])));
      });
      var c = custom[level];
      if (c && c.values && Object.prototype.hasOwnProperty.call(c.values, p.code)) {
        box.appendChild(el("div", c.title + ": " + c.values[p.code]));
      }
      return box;
    }

    function highlight(level, code) {
      if (selected && layers[selected.level]) { layers[selected.level].resetFeatureStyle(selected.code); }
      selected = {level: level, code: code};
      var s = styleFor(level)({code: code}, Math.round(map.getZoom()));
      s.color = "#0d47a1"; s.weight = 4; s.opacity = 1;
      if (s.fill) { s.fillColor = s.fillColor || NO_DATA; }
      layers[level].setFeatureStyle(code, s);
    }

    function bounds(level, code) {
      var u = cfg.boundsUrl.replace("{level}", encodeURIComponent(level)).replace("{code}", encodeURIComponent(code));
      return fetch(u, {credentials: "same-origin", headers: {Accept: "application/json"}}).then(function (r) {
        if (!r.ok) { throw new Error("bounds " + r.status); }
        return r.json();
      }).then(function (body) {
        var b = body.bounds;
        return L.latLngBounds([b[1], b[0]], [b[3], b[2]]);
      });
    }

    function zoomInto(b, band) {
      var z = map.getBoundsZoom(b, false, L.point(16, 16));
      z = Math.max(band[0], Math.min(band[1], z));
      map.flyTo(b.getCenter(), z, {duration: 0.6});
      return z;
    }

    // Show one area: its own level's zoom band.
    function flyTo(level, code) {
      return bounds(level, code).then(function (b) {
        var z = zoomInto(b, bandOf(level));
        map.once("moveend", function () { if (layers[level]) { highlight(level, code); } });
        return z;
      });
    }

    // A click: the popup, the page's event, then down to the next level (a grid: to the grid itself).
    function drill(level, code) {
      var i = cfg.levels.indexOf(level);
      var next = cfg.levels[i + 1];
      return bounds(level, code).then(function (b) {
        return zoomInto(b, next ? bandOf(next) : bandOf(level));
      });
    }

    // Panes one above the other: finer levels over coarser ones, incidents on top.
    cfg.levels.forEach(function (level, i) {
      var pane = map.createPane("gm-" + level);
      pane.style.zIndex = String(410 + i * 10);
      var styles = {};
      styles[level] = styleFor(level);
      var layer = L.vectorGrid.protobuf(url(level), {
        pane: "gm-" + level, rendererFactory: L.canvas.tile, interactive: true,
        minZoom: cfg.minZoom[level], maxZoom: 22, vectorTileLayerStyles: styles,
        getFeatureId: function (f) { return f.properties.code; },
        fetchOptions: {credentials: "same-origin"}
      });
      layer.on("tileload", function () { api.tilesLoaded += 1; });
      layer.on("click", function (e) {
        var p = e.layer && e.layer.properties;
        if (!p) { return; }
        L.DomEvent.stopPropagation(e);
        L.popup({maxWidth: 280}).setLatLng(e.latlng).setContent(popupFor(level, p)).openOn(map);
        api.lastArea = {level: level, code: p.code, name: p.name};
        highlight(level, p.code);
        document.dispatchEvent(new CustomEvent("gridmap:area", {detail: {level: level, code: p.code, name: p.name}}));
        drill(level, p.code);
      });
      layer.on("mouseover", function (e) {
        var p = e.layer && e.layer.properties;
        if (!p) { return; }
        tooltip.setLatLng(e.latlng).setContent(el("span", (p.name || "") + " " + p.code)).addTo(map);
      });
      layer.on("mouseout", function () { map.removeLayer(tooltip); });
      layer.addTo(map);
      layers[level] = layer;
    });

    if (cfg.incidents) {
      var pane = map.createPane("gm-incidents");
      pane.style.zIndex = "460";
      // SVG, not canvas: a canvas tile on top would take every click meant for the areas beneath;
      // SVG lets only the points take them (city.css).
      var inc = L.vectorGrid.protobuf(url("incidents"), {
        pane: "gm-incidents", rendererFactory: L.svg.tile, interactive: true, minZoom: cfg.minZoom.incidents,
        maxZoom: 22, fetchOptions: {credentials: "same-origin"},
        vectorTileLayerStyles: {incidents: {radius: 5, fill: true, fillColor: "#c62828", fillOpacity: 0.9,
                                            color: "#ffffff", weight: 1}}
      });
      inc.on("click", function (e) {
        var p = e.layer && e.layer.properties;
        if (!p) { return; }
        L.DomEvent.stopPropagation(e);
        var box = el("div", null, "city-popup");
        box.appendChild(el("strong", (cfg.categories || {})[p.category] || p.category));
        box.appendChild(el("div", (labels.incident || "#") + " " + p.id));
        box.appendChild(el("div", (labels.status || "status") + ": " + ((labels.statuses || {})[p.status] || p.status)));
        box.appendChild(el("div", (labels.level || "level") + ": " + ((labels.levels_incident || {})[p.level] || p.level)));
        L.popup().setLatLng(e.latlng).setContent(box).openOn(map);
      });
      inc.addTo(map);
      layers.incidents = inc;
    }

    // Only the active level's pane takes clicks: the outlines beneath must not swallow them.
    function activate() {
      var active = activeLevel(Math.round(map.getZoom()));
      cfg.levels.forEach(function (level) {
        var pane = map.getPane("gm-" + level);
        if (pane) { pane.style.pointerEvents = level === active ? "auto" : "none"; }
      });
      legend.update(active);
    }

    // The selector of what colours the areas.
    var picker = L.control({position: "topright"});
    picker.onAdd = function () {
      var box = el("div", null, "leaflet-bar city-picker");
      var label = el("label", labels.colourBy || "Colour by");
      var select = el("select");
      select.id = "city-colour-by";
      cfg.properties.forEach(function (p) {
        var o = el("option", (labels.properties || {})[p] || p);
        o.value = p;
        if (p === cfg.colourBy) { o.selected = true; }
        select.appendChild(o);
      });
      select.addEventListener("change", function () {
        cfg.colourBy = select.value;
        custom = {};
        cfg.levels.forEach(function (level) { layers[level].redraw(); });
        activate();
      });
      label.appendChild(select);
      box.appendChild(label);
      L.DomEvent.disableClickPropagation(box);
      return box;
    };
    picker.addTo(map);

    var legend = L.control({position: "bottomright"});
    legend.onAdd = function () {
      this._div = el("div", null, "leaflet-bar city-legend");
      this._div.id = "city-legend";
      return this._div;
    };
    legend.update = function (level) {
      var div = this._div;
      if (!div) { return; }
      div.textContent = "";
      if (!level) { div.appendChild(el("div", labels.zoomIn || "")); return; }
      var c = colouring(level);
      div.appendChild(el("strong", c.title));
      div.appendChild(el("div", (labels.levels || {})[level] || level, "city-legend-level"));
      var b = c.breaks;
      var n = Math.min(b.length + 1, COLOURS.length);
      for (var k = 0; k < n; k += 1) {
        var row = el("div", null, "city-legend-row");
        var sw = el("span", null, "city-swatch");
        sw.style.background = COLOURS[k];
        row.appendChild(sw);
        var text = k === 0 ? "≤ " + (b.length ? b[0] : "") : (k === b.length ? "> " + b[k - 1] : b[k - 1] + " – " + b[k]);
        if (!b.length) { text = labels.all || "—"; }
        row.appendChild(el("span", text));
        div.appendChild(row);
      }
      var none = el("div", null, "city-legend-row");
      var sw0 = el("span", null, "city-swatch");
      sw0.style.background = NO_DATA;
      none.appendChild(sw0);
      none.appendChild(el("span", labels.noData || "—"));
      div.appendChild(none);
    };
    legend.addTo(map);

    map.on("zoomend", activate);
    activate();

    // Colour a level by the page's own figures (e.g. a KPI of the dashboard): valuesByCode maps an
    // area code to a number; breaks (rising class limits) default to the quintiles of the values.
    api.colour = function (level, valuesByCode, title, breaks) {
      if (!layers[level] || cfg.levels.indexOf(level) < 0) { throw new Error("unknown level " + level); }
      var values = valuesByCode || {};
      custom[level] = {values: values, title: title || "", breaks: breaks || quintiles(Object.keys(values).map(function (k) { return values[k]; }))};
      layers[level].redraw();
      activate();
    };
    api.flyTo = flyTo;
    api.activeLevel = function () { return activeLevel(Math.round(map.getZoom())); };
    window.GridmapCityMap = api;
    document.dispatchEvent(new CustomEvent("gridmap:citymap", {detail: {map: map}}));
    return api;
  }

  window.GridmapCity = {start: start};
}());
