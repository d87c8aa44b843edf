/* Labels on every map (grid numbers, community names), shared by the Folium maps (maps/labels.py).
   A label shows only from the zoom where its box fits in the room its polygon leaves around it, and of
   two labels whose boxes would overlap only the one of higher priority shows: decided again after each
   zoom, move and resize, because what fits depends on the zoom a person picks. Text goes in as
   textContent (names are user data). */
(function () {
  "use strict";
  if (window.gridmapLabels) return;
  var GAP = 2;  // px kept between two labels, and between a label and its polygon's edge

  function style() {
    if (document.getElementById("gridmap-label-style")) return;
    var s = document.createElement("style");
    s.id = "gridmap-label-style";
    s.textContent =
      ".gridmap-label-anchor { width: 0 !important; height: 0 !important; background: none; border: 0; }" +
      ".gridmap-label { position: absolute; left: 0; top: 0; transform: translate(-50%, -50%); white-space: nowrap;" +
      " font: 600 12px/1.25 system-ui, sans-serif; color: #0f172a; background: rgba(255,255,255,.82);" +
      " padding: 0 3px; border-radius: 3px; box-shadow: 0 0 0 1px rgba(15,23,42,.15); }" +
      ".gridmap-label.right { transform: translate(12px, -50%); }" +
      ".gridmap-label.community { font-size: 13px; color: #1e3a8a; padding: 1px 5px; cursor: pointer; }";
    document.head.appendChild(s);
  }

  function add(map, items) {
    style();
    var state = {map: map, items: []};
    items.forEach(function (item, i) {
      var span = document.createElement("span");
      span.className = "gridmap-label " + (item.kind || "grid") + (item.side === "right" ? " right" : "");
      span.textContent = item.text;
      if (item.key) span.setAttribute("data-key", item.key);
      var clickable = !!item.zoomTo;
      var marker = L.marker([item.lat, item.lng], {
        icon: L.divIcon({className: "gridmap-label-anchor", html: span, iconSize: null}),
        interactive: clickable, keyboard: false, bubblingMouseEvents: false, zIndexOffset: item.priority || 0
      }).addTo(map);
      if (clickable) marker.on("click", function () { openPlace(map, item); });
      state.items.push({item: item, order: i, marker: marker, span: span, w: 0, h: 0});
    });
    var again = function () { update(state); };
    map.on("zoomend moveend resize", again);
    map.whenReady(function () { setTimeout(again, 0); });
    (window.gridmapLabels.maps = window.gridmapLabels.maps || []).push(state);
    return state;
  }

  /* A tapped place name zooms to the place and, on a page that looks places up, asks about it: the
     label's anchor lies inside the place, where the tap itself (at a city-wide zoom) may not. */
  function openPlace(map, item) {
    map.fitBounds(item.zoomTo, {padding: [8, 8]});
    if (window.parent !== window) {
      window.parent.postMessage({type: "gridmap:click", lat: item.lat, lng: item.lng}, window.location.origin);
    }
  }

  function hide(entry) { entry.span.parentNode.style.display = "none"; entry.span.removeAttribute("data-shown"); }
  function show(entry) { entry.span.parentNode.style.display = ""; entry.span.setAttribute("data-shown", "1"); }

  function fits(map, entry, p) {
    var room = entry.item.room;
    if (!room) return true;
    var z = map.getZoom(), lat = entry.item.lat, lng = entry.item.lng;
    var across = map.project([lat, room[1]], z).x - map.project([lat, room[0]], z).x;
    var y = map.project([lat, lng], z).y;
    var below = map.project([room[2], lng], z).y - y, above = y - map.project([room[3], lng], z).y;
    return entry.w + 2 * GAP <= across && entry.h / 2 + GAP <= below && entry.h / 2 + GAP <= above;
  }

  function box(entry, p) {
    var left = entry.item.side === "right" ? p.x + 12 : p.x - entry.w / 2;
    return {l: left, r: left + entry.w, t: p.y - entry.h / 2, b: p.y + entry.h / 2};
  }
  function overlap(a, b) { return a.l < b.r + GAP && b.l < a.r + GAP && a.t < b.b + GAP && b.t < a.b + GAP; }

  function update(state) {
    var map = state.map, size = map.getSize(), candidates = [];
    state.items.forEach(function (entry) {
      if (!entry.span.parentNode) return;  // its marker is not on the map (a layer switched off)
      var p = map.latLngToContainerPoint([entry.item.lat, entry.item.lng]);
      if (p.x < -100 || p.y < -100 || p.x > size.x + 100 || p.y > size.y + 100) { hide(entry); return; }
      if (!entry.w) {  // measured once shown: the text and its font do not change
        show(entry);
        entry.w = entry.span.offsetWidth; entry.h = entry.span.offsetHeight;
      }
      if (!entry.w || !fits(map, entry, p)) { hide(entry); return; }
      candidates.push({entry: entry, box: box(entry, p)});
    });
    candidates.sort(function (a, b) {
      return (b.entry.item.priority || 0) - (a.entry.item.priority || 0) || a.entry.order - b.entry.order;
    });
    var placed = [];
    candidates.forEach(function (c) {
      for (var i = 0; i < placed.length; i++) if (overlap(c.box, placed[i])) { hide(c.entry); return; }
      placed.push(c.box);
      show(c.entry);
    });
  }

  window.gridmapLabels = {add: add, update: function () { (window.gridmapLabels.maps || []).forEach(update); }};
})();
