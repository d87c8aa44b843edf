/* The planner page: select grids and buildings on the map, draw, edit, undo/redo, validate, publish.
   The map lives in an iframe (/planner/map, a Folium page) and talks to this page by postMessage,
   as the resident's map does; the page holds the state (version, selection, undo stack). */
(function () {
  "use strict";
  var configEl = document.getElementById("planner-config");
  if (!configEl) return;
  var config = JSON.parse(configEl.textContent), T = config.text;
  var $ = function (id) { return document.getElementById(id); };
  var frame = $("map"), statusEl = $("status");
  var communitySel = $("community"), planSel = $("plan");

  communitySel.addEventListener("change", function () {
    window.location = config.urls.page + "?" + new URLSearchParams({community: communitySel.value});
  });
  if (planSel) planSel.addEventListener("change", function () {
    window.location = config.urls.page + "?" + new URLSearchParams({plan: planSel.value});
  });
  if (!config.plan) return;

  var plan = config.plan;            // {id, version, status, …}
  var grids = [], buildings = {}, findings = [];
  var selGrids = [], selBuildings = [], drawn = null, view = null;
  var undoStack = [], redoStack = [], busy = false;

  var fmt = gridmap.fmt, el = gridmap.el;
  function say(text, isError) { gridmap.say(statusEl, text, isError); }
  function request(method, url, body) { return gridmap.request(method, url, body, config.csrf); }
  function toMap(msg) { if (frame.contentWindow) frame.contentWindow.postMessage(msg, window.location.origin); }
  var editable = function () { return plan.status === "draft"; };
  /* a finding's message in the page's language (the service adds it as `localized`) */
  function said(f) { return f.localized ? f.localized.message : f.message; }

  /* ---- state and panel ---- */
  function load() {
    say(T.loading);
    return request("GET", config.urls.state + plan.id).then(function (r) {
      if (r.status !== 200) { say(r.body.message || T.failed, true); return; }
      plan = r.body.plan;
      buildings = {};
      r.body.buildings.forEach(function (b) { buildings[b.id] = b; });
      show(r.body);
      say(editable() ? "" : T.readOnly);
      reloadMap();
    }, function () { say(T.failed, true); });
  }
  function show(state) {
    grids = state.grids; findings = state.findings;
    var codes = grids.map(function (g) { return g.code; });
    selGrids = selGrids.filter(function (c) { return codes.indexOf(c) >= 0; });
    var body = $("metrics").querySelector("tbody");
    body.textContent = "";
    grids.forEach(function (g) {
      var tr = el("tr", {"data-code": g.code, tabindex: "0", "aria-selected": "false"});
      var name = el("td", {title: g.code + " " + g.name}, g.code.slice(-3));
      var dev = el("td", {"class": g.deviation > 0.05 ? "over" : g.deviation < -0.05 ? "under" : ""},
                   (g.deviation >= 0 ? "+" : "") + (g.deviation * 100).toFixed(1) + "%");
      [name, el("td", {"class": "households"}, String(g.households)), el("td", {}, Math.round(g.area_m2).toLocaleString()),
       el("td", {}, g.polsby_popper.toFixed(2)), dev].forEach(function (td) { tr.appendChild(td); });
      tr.addEventListener("click", function () { pickRow(g.code); });
      tr.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); pickRow(g.code); }
        else if (e.key === "ArrowDown" && tr.nextElementSibling) { e.preventDefault(); tr.nextElementSibling.focus(); }
        else if (e.key === "ArrowUp" && tr.previousElementSibling) { e.preventDefault(); tr.previousElementSibling.focus(); }
      });
      body.appendChild(tr);
    });
    var target = $("target"), keep = target.value;
    target.textContent = "";
    grids.forEach(function (g) { target.appendChild(el("option", {value: g.code}, g.code.slice(-3) + " " + g.name)); });
    if (codes.indexOf(keep) >= 0) target.value = keep;
    showFindings(findings);
    refresh();
  }
  function showFindings(list) {
    var ul = $("findings"), errors = 0;
    ul.textContent = "";
    list.forEach(function (f) {
      if (f.severity === "error") errors++;
      ul.appendChild(el("li", {"class": f.severity, "data-kind": f.kind}, said(f)));
    });
    ul.insertBefore(el("li", {"class": "summary"}, list.length ? fmt(T.findings, {e: errors, w: list.length - errors}) : T.valid),
                    ul.firstChild);
  }
  function refresh() {
    var hasPoly = drawn && drawn.type === "Polygon", hasLine = drawn && drawn.type === "LineString";
    var can = editable() && !busy;
    $("redraw").disabled = !(can && selGrids.length === 1 && hasPoly);
    $("split").disabled = !(can && selGrids.length === 1 && hasLine);
    $("merge").disabled = !(can && selGrids.length === 2);
    $("lasso").disabled = !(can && hasPoly);
    $("move").disabled = !(can && selBuildings.length > 0);
    $("undo").disabled = !(can && undoStack.length);
    $("redo").disabled = !(can && redoStack.length);
    $("publish").disabled = !can;
    $("copy").disabled = busy;
    var names = selBuildings.map(function (id) { return buildings[id] ? buildings[id].address : "#" + id; });
    $("selection").textContent = fmt(T.selected, {g: selGrids.join(", ") || T.none, b: names.join("；") || T.none});
    Array.prototype.forEach.call($("metrics").querySelectorAll("tbody tr"), function (tr) {
      var on = selGrids.indexOf(tr.getAttribute("data-code")) >= 0;
      tr.classList.toggle("selected", on);
      tr.setAttribute("aria-selected", String(on));
    });
    var link = $("board-link");
    link.hidden = selGrids.length !== 1;
    if (selGrids.length === 1) {
      link.href = config.urls.boards.replace("000000000000000", selGrids[0]) + "?" + new URLSearchParams({plan: plan.id});
    }
    toMap({type: "gridmap:select", grids: selGrids, buildings: selBuildings});
  }

  /* ---- the map ---- */
  function reloadMap() {
    var params = {plan: plan.id};
    if ($("show-diff").checked && config.published && config.published !== plan.id) params.diff = config.published;
    if ($("show-department").checked) params.department = 1;
    if (view) params.view = [view.lat, view.lng, view.zoom].join(",");
    drawn = null;
    frame.src = config.urls.map + "?" + new URLSearchParams(params);
  }
  frame.addEventListener("load", function () { refresh(); });
  $("show-diff").addEventListener("change", reloadMap);
  $("show-department").addEventListener("change", reloadMap);

  function pickGrid(code) {
    var i = selGrids.indexOf(code);
    if (i >= 0) selGrids.splice(i, 1);
    else { selGrids.push(code); if (selGrids.length > 2) selGrids.shift(); }  // merge needs two; keep the last two
    refresh();
  }
  // a row picked in the table: selected as a click on the map selects it, and the map flies there
  function pickRow(code) {
    pickGrid(code);
    if (selGrids.indexOf(code) >= 0) toMap({type: "gridmap:fly", key: "grid:" + code});
  }
  function pickBuilding(id) {
    var i = selBuildings.indexOf(id);
    if (i >= 0) selBuildings.splice(i, 1); else selBuildings.push(id);
    refresh();
  }
  window.addEventListener("message", function (event) {
    // Only our own map: same origin and the very iframe on this page.
    if (event.origin !== window.location.origin || event.source !== frame.contentWindow) return;
    var d = event.data || {};
    if (d.type === "gridmap:pick" && d.kind === "grid" && typeof d.key === "string") pickGrid(d.key);
    else if (d.type === "gridmap:pick" && d.kind === "building" && typeof d.key === "number") pickBuilding(d.key);
    else if (d.type === "gridmap:drawn") {
      drawn = d.geometry && (d.geometry.type === "Polygon" || d.geometry.type === "LineString") ? d.geometry : null;
      if (drawn) say(T.drawn);
      refresh();
    } else if (d.type === "gridmap:view" && isFinite(d.lat) && isFinite(d.lng) && isFinite(d.zoom)) {
      view = {lat: d.lat, lng: d.lng, zoom: d.zoom};
    }
  });

  /* ---- edits ---- */
  function answer(r, record) {
    busy = false;
    if (r.status === 200) {
      plan = r.body.plan;
      if (record) { undoStack.push({undo: r.body.undo, redo: r.body.redo}); redoStack = []; }
      selBuildings = [];
      show(r.body);
      say(fmt(T.saved, {v: plan.version}));
      reloadMap();
      return true;
    }
    if (r.status === 409 && r.body.details && r.body.details.version != null && !r.body.details.errors) {
      say(fmt(T.stale, {v: r.body.details.version}), true);
      $("reload").hidden = false;
    } else if (r.status === 409 && r.body.details && r.body.details.errors) {
      say(fmt(T.publishErrors, {m: r.body.details.errors.map(said).join(" ")}), true);
    } else if (r.status === 409 || r.status === 400 || r.status === 404) {
      say(fmt(T.conflict, {m: (r.body.message || "") + (r.body.fix ? " " + r.body.fix : "")}), true);
      if (r.body.details && r.body.details.geometry) toMap({type: "gridmap:problem", geometry: r.body.details.geometry});
    } else {
      say(r.body.message || T.failed, true);
    }
    refresh();
    return false;
  }
  function edit(kind, body, record) {
    if (busy) return Promise.resolve(false);
    busy = true;
    refresh();
    body.version = plan.version;
    return request("POST", config.urls.state + plan.id + "/" + kind, body)
      .then(function (r) { return answer(r, record); }, function () { busy = false; say(T.failed, true); refresh(); });
  }
  $("redraw").addEventListener("click", function () {
    if (!drawn || drawn.type !== "Polygon") { say(T.drawPolygon, true); return; }
    edit("redraw", {grid_code: selGrids[0], polygon: drawn}, true);
  });
  $("split").addEventListener("click", function () {
    if (!drawn || drawn.type !== "LineString") { say(T.drawLine, true); return; }
    edit("split", {grid_code: selGrids[0], line: drawn}, true);
  });
  $("merge").addEventListener("click", function () { edit("merge", {codes: selGrids.slice(0, 2)}, true); });
  $("move").addEventListener("click", function () {
    edit("move", {building_ids: selBuildings.slice(), to_grid: $("target").value}, true);
  });
  $("lasso").addEventListener("click", function () {
    if (!drawn || drawn.type !== "Polygon") { say(T.drawPolygon, true); return; }
    var ring = drawn.coordinates[0];
    selBuildings = Object.keys(buildings).map(Number).filter(function (id) {
      return inside(buildings[id].lon, buildings[id].lat, ring);
    });
    say(fmt(T.lassoed, {n: selBuildings.length}));
    toMap({type: "gridmap:clear"});
    drawn = null;
    refresh();
  });
  function inside(x, y, ring) {  // even-odd rule; the drawn ring is small enough to treat lon/lat as flat
    var hit = false;
    for (var i = 0, j = ring.length - 1; i < ring.length; j = i++) {
      var xi = ring[i][0], yi = ring[i][1], xj = ring[j][0], yj = ring[j][1];
      if ((yi > y) !== (yj > y) && x < (xj - xi) * (y - yi) / (yj - yi) + xi) hit = !hit;
    }
    return hit;
  }
  $("undo").addEventListener("click", function () {
    var entry = undoStack.pop();
    if (!entry) return;
    edit("set-grids", {grids: entry.undo.grids, names: entry.undo.names}, false).then(function (ok) {
      if (ok) redoStack.push(entry); else undoStack.push(entry);
      refresh();
    });
  });
  $("redo").addEventListener("click", function () {
    var entry = redoStack.pop();
    if (!entry) return;
    edit("set-grids", {grids: entry.redo.grids, names: entry.redo.names}, false).then(function (ok) {
      if (ok) undoStack.push(entry); else redoStack.push(entry);
      refresh();
    });
  });
  $("reload").addEventListener("click", function () {
    window.location = config.urls.page + "?" + new URLSearchParams({plan: plan.id});
  });

  /* ---- validate, publish, copy ---- */
  $("validate").addEventListener("click", function () {
    request("GET", config.urls.api + "/" + plan.id + "/validation").then(function (r) {
      if (r.status !== 200) { say(r.body.message || T.failed, true); return; }
      findings = r.body;
      showFindings(findings);
      say(findings.length ? fmt(T.findings, {e: findings.filter(function (f) { return f.severity === "error"; }).length,
                                             w: findings.filter(function (f) { return f.severity !== "error"; }).length})
                          : T.valid);
    }, function () { say(T.failed, true); });
  });
  /* Publishing asks first: the errors that block it, each warning to accept, the day it takes
     effect and who moves to which grid worker; the same list stays after, as what happened. */
  var dialog = $("publish-dialog"), preview = null;
  function pdSay(text, isError) { gridmap.say($("pd-status"), text, isError); }
  function workersText(names) { return names.length ? names.join(", ") : T.nobody; }
  function showMoves(moves, template) {
    var body = $("pd-moves"), b = 0, h = 0;
    body.textContent = "";
    moves.forEach(function (mv) {
      b += mv.buildings; h += mv.households;
      var tr = el("tr");
      [mv.from ? mv.from.slice(-3) : T.outside, workersText(mv.from_workers),
       mv.to ? mv.to.slice(-3) : T.outside, workersText(mv.to_workers),
       String(mv.buildings), String(mv.households)].forEach(function (text) { tr.appendChild(el("td", {}, text)); });
      body.appendChild(tr);
    });
    $("pd-moves-box").hidden = false;
    $("pd-moves-title").textContent = moves.length ? fmt(template, {b: b, h: h}) : T.noMoves;
  }
  function pdCheck() {
    if (!preview) return;
    var boxes = Array.prototype.slice.call(document.querySelectorAll("#pd-warnings input"));
    var all = boxes.every(function (c) { return c.checked; });
    $("pd-accept-all").checked = all && boxes.length > 0;
    var date = $("pd-date"), earliest = preview.earliest;
    var dateOk = !!date.value && (!earliest || date.value >= earliest);
    $("pd-confirm").disabled = !preview.publishable || !all || !dateOk || busy;
    if (!preview.publishable) pdSay(T.cannotPublish, true);
    else if (!dateOk) pdSay(fmt(T.badDate, {d: earliest || preview.today}), true);
    else pdSay(all ? T.ready : T.acceptEach, !all);
  }
  function openPublish() {
    preview = null;
    $("pd-title").textContent = fmt(T.publishTitle, {id: plan.id});
    ["pd-errors", "pd-warnings", "pd-moves"].forEach(function (id) { $(id).textContent = ""; });
    ["pd-errors-box", "pd-warnings-box", "pd-moves-box"].forEach(function (id) { $(id).hidden = true; });
    $("pd-confirm").hidden = false; $("pd-confirm").disabled = true;
    $("pd-cancel").textContent = T.close;
    pdSay(T.checking);
    if (!dialog.open) dialog.showModal();
    request("GET", config.urls.api + "/" + plan.id + "/publish-preview").then(function (r) {
      if (r.status !== 200) { pdSay(r.body.message || T.failed, true); return; }
      preview = r.body;
      preview.errors.forEach(function (f) { $("pd-errors").appendChild(el("li", {"class": "error", "data-kind": f.kind}, said(f))); });
      $("pd-errors-box").hidden = !preview.errors.length;
      preview.warnings.forEach(function (f) {
        var li = el("li", {"class": "warning", "data-kind": f.kind}), label = el("label");
        var box = el("input", {type: "checkbox", "data-key": f.key});
        box.addEventListener("change", pdCheck);
        label.appendChild(box); label.appendChild(el("span", {}, said(f)));
        li.appendChild(label); $("pd-warnings").appendChild(li);
      });
      $("pd-warnings-box").hidden = !preview.warnings.length;
      var date = $("pd-date");
      date.min = preview.earliest || "";
      date.value = preview.earliest && preview.earliest > preview.today ? preview.earliest : preview.today;
      $("pd-earliest").textContent = preview.earliest ? fmt(T.earliest, {d: preview.earliest}) : "";
      if (preview.replaces) showMoves(preview.moves, T.movesBefore);
      pdCheck();
      (preview.warnings.length ? $("pd-accept-all") : $("pd-date")).focus();
    }, function () { pdSay(T.failed, true); });
  }
  $("pd-accept-all").addEventListener("change", function () {
    var on = $("pd-accept-all").checked;
    document.querySelectorAll("#pd-warnings input").forEach(function (c) { c.checked = on; });
    pdCheck();
  });
  $("pd-date").addEventListener("input", pdCheck);
  $("pd-cancel").addEventListener("click", function () { dialog.close(); });
  $("publish").addEventListener("click", openPublish);
  $("pd-confirm").addEventListener("click", function () {
    var accepted = Array.prototype.map.call(document.querySelectorAll("#pd-warnings input:checked"),
                                            function (c) { return c.getAttribute("data-key"); });
    busy = true; refresh(); $("pd-confirm").disabled = true; pdSay(T.publishing);
    request("POST", config.urls.api + "/" + plan.id + "/publish",
            // what this page shows as published: a plan another planner publishes meanwhile is a 409, not replaced
            {version: plan.version, replaces: config.published || null, valid_from: $("pd-date").value,
             accepted_warnings: accepted}).then(function (r) {
      busy = false;
      if (r.status === 200) {
        plan = r.body;
        config.published = plan.id;
        undoStack = []; redoStack = [];
        var option = planSel && planSel.querySelector('option[value="' + plan.id + '"]');
        if (option) option.textContent = "#" + plan.id + " " + plan.name + " · " + T.statusPublished + " · v" + plan.version;
        say(T.published);
        pdSay(T.published);
        $("pd-confirm").hidden = true;
        $("pd-warnings-box").hidden = true; $("pd-errors-box").hidden = true;
        if (preview && preview.replaces) showMoves(preview.moves, T.movesAfter);
        refresh();
        reloadMap();
        return;
      }
      if (r.status === 409 && r.body.error === "warnings_not_accepted") { openPublish(); return; }
      pdSay((r.body.message || T.failed) + (r.body.fix ? " " + r.body.fix : ""), true);
      answer(r, false);
    }, function () { busy = false; pdSay(T.failed, true); refresh(); });
  });
  $("copy").addEventListener("click", function () {
    request("POST", config.urls.api + "/" + plan.id + "/copy", {}).then(function (r) {
      if (r.status !== 201) { say(r.body.message || T.failed, true); return; }
      say(fmt(T.copied, {id: r.body.id}));
      window.location = config.urls.page + "?" + new URLSearchParams({plan: r.body.id});
    }, function () { say(T.failed, true); });
  });

  load();
})();
