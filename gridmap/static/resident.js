/* The resident's page: address type-ahead, geolocation and map taps → /api/v1/locate → result + map.
   Every value from the server goes into the page as text (textContent), never as HTML. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("gridmap-config").textContent);
  var T = config.text;
  var input = document.getElementById("address");
  var list = document.getElementById("address-options");
  var statusEl = document.getElementById("status");
  var result = document.getElementById("result");
  var frame = document.getElementById("map");
  var locButton = document.getElementById("use-location");
  var DEBOUNCE_MS = 250;  // one request per pause in typing, not per keystroke
  var hits = [], active = -1, timer = null, searchAbort = null, locateSeq = 0;

  function fmt(template, values) {
    return template.replace(/\{(\w+)\}/g, function (all, key) { return key in values ? String(values[key]) : all; });
  }
  function $(id) { return document.getElementById(id); }
  var el = gridmap.el;
  function say(text, isError) { gridmap.say(statusEl, text, isError); }
  function getJSON(url, signal) { return gridmap.request("GET", url, undefined, null, signal); }

  /* ---- address type-ahead (ARIA combobox with a listbox) ---- */
  function closeList() {
    list.hidden = true; list.textContent = ""; hits = []; active = -1;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }
  function setActive(i) {
    var items = list.querySelectorAll("li");
    if (!items.length) return;
    active = (i + items.length) % items.length;
    items.forEach(function (li, j) { li.setAttribute("aria-selected", j === active ? "true" : "false"); });
    input.setAttribute("aria-activedescendant", items[active].id);
    items[active].scrollIntoView({block: "nearest"});
  }
  function showHits(q, found) {
    closeList();
    hits = found;
    if (!found.length) { say(fmt(T.noMatch, {q: q}), true); return; }
    say(fmt(T.results, {n: found.length}));
    found.forEach(function (hit, i) {
      var li = el("li", {id: "address-option-" + i, role: "option", "aria-selected": "false"}, hit.address);
      if (hit.name && hit.name !== hit.address) li.appendChild(el("small", {}, hit.name));
      // mousedown, not click: it fires before the input's blur would close the list
      li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(i); });
      list.appendChild(li);
    });
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
  }
  function search() {
    var q = input.value.trim();
    if (searchAbort) searchAbort.abort();
    if (!q) { closeList(); say(""); return; }
    searchAbort = new AbortController();
    say(T.searching);
    getJSON(config.urls.addresses + "?" + new URLSearchParams({q: q, limit: 8}), searchAbort.signal)
      .then(function (r) {
        if (q !== input.value.trim()) return;  // the visitor typed on; a newer search will answer
        if (r.status !== 200) { closeList(); say(r.body.message || T.failed, true); return; }
        showHits(q, r.body);
      })
      .catch(function (err) { if (err.name !== "AbortError") say(T.failed, true); });
  }
  function choose(i) {
    var hit = hits[i];
    if (!hit) return;
    input.value = hit.address;
    closeList();
    locate(hit.lon, hit.lat, hit.address);
  }
  input.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(search, DEBOUNCE_MS); });
  input.addEventListener("keydown", function (e) {
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      if (list.hidden) { if (hits.length || input.value.trim()) search(); return; }
      e.preventDefault(); setActive(active + (e.key === "ArrowDown" ? 1 : -1));
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (!list.hidden) choose(active >= 0 ? active : 0);
      else { clearTimeout(timer); search(); }
    } else if (e.key === "Escape") {
      closeList();
    }
  });
  input.addEventListener("blur", function () { setTimeout(closeList, 150); });

  /* ---- locate a point and show the answer ---- */
  // ``how``: "tap" (the map, a community's dot) or "auto" (the position the browser already lets us
  // use, or the place in the address bar); else a chosen address or the location button
  function locate(lon, lat, address, how) {
    var seq = ++locateSeq;
    if (how !== "auto") say(T.locating);
    getJSON(config.urls.locate + "?" + new URLSearchParams({lon: lon, lat: lat}))
      .then(function (r) {
        if (seq !== locateSeq) return;  // a later tap or choice superseded this one
        if (r.status === 200) {
          show(r.body, address); say(T.found); updateMap(r.body);
          setSpot({lon: lon, lat: lat, address: address || "", grid: r.body.grid ? r.body.grid.name : named(r.body.community)});
          remember(lon, lat, address);
          return;
        }
        if (r.status === 404 && !result.hidden) {
          // a tap between communities, a place in none: the answer on screen still holds, and the map
          // stays where the resident put it
          say(T.keptPrevious);
          return;
        }
        if (r.status === 404 && how === "auto") { say(""); return; }  // unasked: the overview stays
        result.hidden = true;
        setSpot(null);
        if (r.status === 404) { say(T.outside, true); if (how !== "tap") updateMap({lon: lon, lat: lat}); }
        else if (r.status === 400) say(fmt(T.badPoint, {detail: r.body.message || ""}), true);
        else say(T.failed, true);
      })
      .catch(function () { if (seq === locateSeq) say(T.failed, true); });
  }
  /* The place found goes into the address bar and the language links, so a reload or a switch of
     language shows the same answer (the page is rendered anew in the other language). */
  function remember(lon, lat, address) {
    function put(url) {
      var q = url.searchParams;
      q.set("lon", lon); q.set("lat", lat);
      if (address) q.set("address", address); else q.delete("address");
      return url;
    }
    try {
      history.replaceState(null, "", put(new URL(window.location.href)).href);
      Array.prototype.forEach.call(document.querySelectorAll("a.lang[href]"), function (a) {
        a.href = put(new URL(a.getAttribute("href"), window.location.href)).href;
      });
    } catch (e) { /* an old browser: the answer is not kept across reloads */ }
  }
  function named(x) { return x && x.name ? x.name : T.none; }
  function show(where, address) {
    $("r-address").hidden = !address;
    $("r-address").textContent = address || "";
    $("r-grid").textContent = where.grid ? where.grid.name : named(where.community);
    $("r-grid-code").textContent = where.grid ? fmt(T.gridCode, {code: where.grid.code}) : "";
    $("r-community").textContent = named(where.community);
    $("r-street").textContent = named(where.street);
    $("r-district").textContent = named(where.district);
    $("r-branch").textContent = where.party_branch || T.none;

    var workers = $("r-workers"), masked = false;
    workers.textContent = "";
    (where.workers || []).forEach(function (w) {
      var li = el("li");
      li.appendChild(el("span", {"class": "worker-name"}, w.name));
      if (w.phone && w.phone.indexOf("*") >= 0) {
        // A masked number cannot be dialled, so it is text, not a tel: link.
        masked = true;
        li.appendChild(el("span", {"class": "phone"}, w.phone));
      } else if (w.phone) {
        li.appendChild(el("a", {"class": "phone", href: "tel:" + w.phone.replace(/[^\d+]/g, ""),
                                "aria-label": fmt(T.call, {name: w.name})}, w.phone));
      }
      workers.appendChild(li);
    });
    if (!workers.children.length) workers.appendChild(el("li", {"class": "empty"}, T.noWorkers));

    var notes = [];
    if (masked) notes.push(T.maskedPhone);
    if (!where.grid) notes.push(T.noGrid);
    if (where.on_shared_edge) notes.push(T.sharedEdge);
    $("r-note").hidden = !notes.length;
    $("r-note").textContent = notes.join(" ");

    var centre = $("r-centre"), sc = where.service_centre || {};
    centre.textContent = "";
    if (sc.name) centre.appendChild(el("p", {"class": "centre-name"}, sc.name));
    if (sc.address) centre.appendChild(el("p", {}, sc.address));
    if (sc.phone) {
      var p = el("p");
      p.appendChild(el("a", {"class": "phone", href: "tel:" + sc.phone.replace(/[^\d+]/g, "")}, sc.phone));
      centre.appendChild(p);
    }
    if (!centre.children.length) centre.appendChild(el("p", {}, T.none));
    result.hidden = false;
    result.scrollIntoView({block: "nearest", behavior: "smooth"});
  }
  function updateMap(where) {
    var params = {};
    if (where.community) params.community = where.community.code;
    if (where.grid) params.grid = where.grid.code;
    if (where.lon != null) { params.lon = where.lon; params.lat = where.lat; }
    frame.src = config.urls.map + "?" + new URLSearchParams(params);
  }

  /* ---- report a problem at the place found ---- */
  var report = $("report"), reportForm = $("report-form"), reportOpen = $("report-open");
  var reportStatus = $("report-status"), photosInput = $("report-photos"), spot = null;
  function sayReport(text, isError) { gridmap.say(reportStatus, text, isError); }
  function setSpot(s) {
    spot = s;
    if (!s) { report.hidden = true; reportOpen.setAttribute("aria-expanded", "false"); return; }
    $("report-lon").value = s.lon; $("report-lat").value = s.lat;
    $("report-spot").textContent = s.address ? fmt(T.spotAddress, {address: s.address, grid: s.grid})
                                             : fmt(T.spotPoint, {grid: s.grid});
    // a new place starts a new report: the last one's answer must not look like this one's
    reportForm.hidden = false; $("report-done").hidden = true; sayReport("");
  }
  reportOpen.addEventListener("click", function () {
    if (!spot) return;
    report.hidden = false;
    reportForm.hidden = false;  // another report at the same place; the last one's link stays until it is sent
    reportOpen.setAttribute("aria-expanded", "true");
    report.scrollIntoView({block: "start", behavior: "smooth"});
    $("report-category").focus({preventScroll: true});
  });
  function checkReport() {
    if (!$("report-category").value) return [T.chooseCategory, $("report-category")];
    if (!$("report-description").value.trim()) return [T.describe, $("report-description")];
    var files = Array.prototype.slice.call(photosInput.files || []);
    if (files.length > config.limits.photos) {
      return [fmt(T.tooManyPhotos, {count: files.length, most: config.limits.photos}), photosInput];
    }
    for (var i = 0; i < files.length; i++) {
      if (files[i].size > config.limits.photoBytes) return [fmt(T.photoTooLarge, {name: files[i].name}), photosInput];
    }
    return null;
  }
  reportForm.addEventListener("submit", function (e) {
    e.preventDefault();
    var problem = checkReport();
    if (problem) { sayReport(problem[0], true); problem[1].focus(); return; }
    var send = $("report-send");
    send.disabled = true;
    sayReport(T.sending);
    fetch(reportForm.action, {method: "POST", body: new FormData(reportForm), credentials: "same-origin",
                              headers: {Accept: "application/json"}})
      .then(function (r) {
        return r.json().catch(function () { return {}; }).then(function (b) { return {status: r.status, body: b}; });
      })
      .then(function (r) {
        send.disabled = false;
        if (r.status === 201) {
          var link = $("report-link");
          link.href = r.body.url;
          link.textContent = new URL(r.body.url, window.location.href).href;
          reportForm.reset();  // sent once: a second tap must not file it twice
          reportForm.hidden = true; $("report-done").hidden = false; sayReport("");
          link.focus();
          return;
        }
        if (r.status === 429) { sayReport(T.tooMany, true); return; }
        var b = r.body || {};
        sayReport(b.message ? b.message + (b.fix ? " " + b.fix : "") : T.sendFailed, true);
      })
      .catch(function () { send.disabled = false; sayReport(T.sendFailed, true); });
  });

  /* ---- taps on the map arrive from the iframe ---- */
  window.addEventListener("message", function (event) {
    // Only our own map may ask for a lookup: same origin and the very iframe on this page.
    if (event.origin !== window.location.origin || event.source !== frame.contentWindow) return;
    var d = event.data;
    if (!d || d.type !== "gridmap:click" || !isFinite(d.lat) || !isFinite(d.lng)) return;
    input.value = "";
    locate(d.lng, d.lat, null, "tap");
  });

  /* ---- browser geolocation ---- */
  locButton.addEventListener("click", function () {
    if (!window.isSecureContext) { say(T.geoInsecure, true); return; }
    if (!navigator.geolocation) { say(T.geoUnsupported, true); return; }
    say(T.geoAsking);
    locButton.disabled = true;
    navigator.geolocation.getCurrentPosition(function (pos) {
      locButton.disabled = false;
      input.value = "";
      // Browsers report WGS84, which is what /api/v1/locate expects by default.
      locate(pos.coords.longitude, pos.coords.latitude);
    }, function (err) {
      locButton.disabled = false;
      say(err.code === 1 ? T.geoDenied : err.code === 3 ? T.geoTimeout : T.geoUnavailable, true);
    }, {enableHighAccuracy: true, timeout: 15000, maximumAge: 60000});
  });

  /* ---- on opening: the place in the address bar (a reload, a language switch), else the resident's
     position when the browser already lets this page have it (never asked for unprompted) ---- */
  (function opening() {
    var q = new URLSearchParams(window.location.search);
    var lon = parseFloat(q.get("lon")), lat = parseFloat(q.get("lat"));
    if (isFinite(lon) && isFinite(lat)) {
      input.value = q.get("address") || "";
      locate(lon, lat, q.get("address") || null);
      return;
    }
    if (!window.isSecureContext || !navigator.geolocation || !navigator.permissions) return;
    navigator.permissions.query({name: "geolocation"}).then(function (p) {
      if (p.state !== "granted" || locateSeq) return;  // the resident has already asked for something
      navigator.geolocation.getCurrentPosition(function (pos) {
        if (!locateSeq) locate(pos.coords.longitude, pos.coords.latitude, null, "auto");
      }, function () { /* no position: the communities stay in view */ }, {timeout: 15000, maximumAge: 300000});
    }, function () { /* permissions not queryable */ });
  })();
})();
