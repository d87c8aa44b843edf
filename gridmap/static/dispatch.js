/* The dispatcher's page: locate (address type-ahead, coordinates, map clicks), the point's panel,
   reporting, and the opened incident: moving it on through the JSON API with optimistic versions,
   its suggested duplicates (link one), whistle tasks (report in) and whom to send (listed here,
   drawn on the map). Every value from the server goes in with textContent: names and notes are
   user data. Times arrive as UTC ISO strings and are shown in the viewer's time zone. */
(function () {
  "use strict";
  var configEl = document.getElementById("dispatch-config");
  if (!configEl) return;
  var config = JSON.parse(configEl.textContent), T = config.text;
  // codes stay in data attributes (and the API); people read the names
  function statusName(s) { return (T.statuses && T.statuses[s]) || s; }
  function levelName(l) { return (T.levels && T.levels[l]) || l; }
  function actionName(a) { return (T.history && T.history[a]) || a; }
  var zh = (document.documentElement.lang || "").indexOf("zh") === 0;
  var $ = function (id) { return document.getElementById(id); };
  var frame = $("map"), input = $("address"), list = $("address-options");
  var here = null, spot = null, current = null, candidates = [], timer = null, seq = 0, openSeq = 0, locateSeq = 0;

  var fmt = gridmap.fmt, el = gridmap.el, say = gridmap.say;
  function request(method, url, body) { return gridmap.request(method, url, body, config.csrf); }
  function metres(d) { return d == null ? "—" : d >= 1000 ? (d / 1000).toFixed(2) + " km" : Math.round(d) + " m"; }
  function minutes(s) { return s == null ? "—" : Math.max(1, Math.round(s / 60)) + " min"; }
  function kindName(kind) {
    if (kind === "grid_worker") return T.gridWorker;
    if (kind === "volunteer") return T.volunteer;
    var k = config.kinds[kind]; return k ? (zh ? k[0] : k[1]) : kind;
  }
  function phoneLink(phone) {
    return el("a", {"class": "phone", href: "tel:" + String(phone).replace(/[^\d+]/g, "")}, phone);
  }
  // a node, or text for a string; nothing for empty parts; " · " between them
  function fill(node, parts) {
    node.textContent = "";
    parts.filter(function (p) { return p != null && p !== ""; }).forEach(function (p, i) {
      if (i) node.appendChild(document.createTextNode(" · "));
      node.appendChild(typeof p === "string" ? document.createTextNode(p) : p);
    });
    return node;
  }
  // "Label: value", the value a node or text
  function labelled(label, value) {
    var span = el("span", {}, label + ": ");
    span.appendChild(typeof value === "string" ? document.createTextNode(value) : value);
    return span;
  }

  /* ---- times: the API speaks UTC; people read their own clock, in the page's language ---- */
  var locale = document.documentElement.lang || undefined, clocks = {};
  function clock(seconds) {
    var key = seconds ? "s" : "m";
    if (!clocks[key]) {
      var opts = {year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", hourCycle: "h23"};
      if (seconds) opts.second = "2-digit";
      try { clocks[key] = new Intl.DateTimeFormat(locale, opts); } catch (e) { clocks[key] = new Intl.DateTimeFormat(undefined, opts); }
    }
    return clocks[key];
  }
  // <time datetime data-utc title> holding the local time; the UTC original stays in the attributes
  function when(iso, seconds) {
    if (!iso) return "—";
    var utc = /(Z|[+-]\d\d:?\d\d)$/.test(iso) ? iso : iso + "Z";  // the API's times are UTC, always
    var d = new Date(utc);
    if (isNaN(d.getTime())) return iso;
    return el("time", {datetime: utc, "data-utc": utc, title: "UTC " + utc.replace("T", " ").replace(/Z$/, "")},
              clock(seconds).format(d));
  }
  // The audit writes its own notes in English for the API ("duplicate of 3", "消防救援大队 to report by
  // …Z"); the page says them in its language. What follows ": " is the person's own note, kept as typed.
  var NOTES = [
    [/^duplicate of (\d+)(: [\s\S]*)?$/, function (m) { return fmt(T.notes.duplicateOf, {id: m[1]}) + (m[2] || ""); }],
    [/^(.+?) to report by (\S+Z)(: [\s\S]*)?$/, function (m) {
      return fmt(T.notes.reportBy, {department: m[1], time: m[2]}) + (m[3] || ""); }],
    [/^(.+) reported late$/, function (m) { return fmt(T.notes.reportedLate, {department: m[1]}); }],
    [/^(.+) reported$/, function (m) { return fmt(T.notes.reportedIn, {department: m[1]}); }],
    [/^vetoed: not on the community's work-item list, sent to (.+)$/, function (m) {
      return fmt(T.notes.vetoed, {department: m[1]}); }]
  ];
  function noteText(action, note) {
    var own = {link_duplicate: 0, whistle: 1, report_in: 2, report: 4}[action];
    if (own === undefined) return note;
    var rules = action === "report_in" ? NOTES.slice(2, 4) : [NOTES[own]];
    for (var i = 0; i < rules.length; i++) {
      var m = rules[i][0].exec(note);
      if (m) return rules[i][1](m);
    }
    return note;
  }
  // text whose UTC ISO times (the audit writes "report by 2026-05-04T08:00:00Z" into notes) read as local times
  function withTimes(text) {
    var out = document.createDocumentFragment(), re = /\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?Z/g, at = 0, m;
    while ((m = re.exec(text)) !== null) {
      out.appendChild(document.createTextNode(text.slice(at, m.index)));
      var t = when(m[0], !!m[1]);
      out.appendChild(typeof t === "string" ? document.createTextNode(t) : t);
      at = m.index + m[0].length;
    }
    out.appendChild(document.createTextNode(text.slice(at)));
    return out;
  }
  var zone = (Intl.DateTimeFormat().resolvedOptions() || {}).timeZone;
  if (zone && $("time-zone")) $("time-zone").textContent = fmt(T.timeZone, {zone: zone});

  /* ---- address type-ahead over /api/v1/geocode ---- */
  function closeList() { list.hidden = true; input.setAttribute("aria-expanded", "false"); }
  input.addEventListener("input", function () {
    clearTimeout(timer);
    var q = input.value.trim();
    if (!q) { closeList(); return; }
    timer = setTimeout(function () {
      var mine = ++seq;
      say($("status"), T.searching);
      request("GET", config.urls.geocode + "?" + new URLSearchParams({q: q, limit: 8})).then(function (r) {
        if (mine !== seq) return;  // a later keystroke's answer wins
        list.textContent = "";
        candidates = r.status === 200 ? r.body : [];
        say($("status"), candidates.length ? "" : T.noMatch, !candidates.length);
        candidates.forEach(function (c, i) {
          var li = el("li", {role: "option", id: "addr-" + i, "aria-selected": "false"}, c.address);
          li.appendChild(el("small", {}, T.score + " " + Number(c.score).toFixed(1)));
          li.addEventListener("mousedown", function (e) { e.preventDefault(); choose(i); });
          list.appendChild(li);
        });
        list.hidden = !candidates.length;
        input.setAttribute("aria-expanded", String(!list.hidden));
      }, function () { say($("status"), T.failed, true); });
    }, 150);
  });
  input.addEventListener("keydown", function (e) {
    var items = list.querySelectorAll("[role=option]"), at = -1;
    items.forEach(function (li, i) { if (li.getAttribute("aria-selected") === "true") at = i; });
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!items.length) return;
      at = e.key === "ArrowDown" ? Math.min(items.length - 1, at + 1) : Math.max(0, at - 1);
      items.forEach(function (li, i) { li.setAttribute("aria-selected", String(i === at)); });
      input.setAttribute("aria-activedescendant", "addr-" + at);
    } else if (e.key === "Enter") {
      e.preventDefault();
      if (items.length) choose(at < 0 ? 0 : at);
    } else if (e.key === "Escape") { closeList(); }
  });
  function choose(i) {
    var c = candidates[i];
    if (!c) return;
    input.value = c.address;
    closeList();
    locate(c.lon, c.lat, "wgs84", c.address);
  }

  /* ---- coordinates and map clicks ---- */
  $("coords").addEventListener("submit", function (e) {
    e.preventDefault();
    locate($("lon").value.trim(), $("lat").value.trim(), $("crs").value, null);
    elsewhere();
  });
  window.addEventListener("message", function (event) {
    if (event.origin !== window.location.origin || event.source !== frame.contentWindow) return;
    var d = event.data;
    if (!d || d.type !== "gridmap:click" || !isFinite(d.lat) || !isFinite(d.lng)) return;
    locate(d.lng, d.lat, "wgs84", null);
    elsewhere();
  });
  // Located by a click or coordinates: a picked address (and any search still on its way) is another
  // place's, so the box empties; the place's own address comes with the panel.
  function elsewhere() {
    clearTimeout(timer); seq++;
    input.value = ""; closeList(); input.removeAttribute("aria-activedescendant");
  }

  /* ---- the travel mode: distances, ETAs and whom to send follow it; kept for the next visit ---- */
  var modeBox = $("mode"), MODE_KEY = "gridmap.dispatch.mode";
  try {
    var kept = window.localStorage.getItem(MODE_KEY);
    if (kept && modeBox.querySelector("option[value='" + kept.replace(/[^a-z]/g, "") + "']")) modeBox.value = kept;
  } catch (e) { /* storage blocked: the page's own choice still holds */ }
  function mode() { return modeBox.value; }
  modeBox.addEventListener("change", function () {
    try { window.localStorage.setItem(MODE_KEY, mode()); } catch (e) { /* not kept across visits */ }
    // measured again for the new mode where they are shown; the map keeps what it shows unless it is the incident
    if (spot) locate(spot.lon, spot.lat, spot.crs, spot.address, true);
    if (current) select(current.id, !/[?&]incident=/.test(frame.getAttribute("src") || ""));
  });

  /* ---- the panel ---- */
  // ``address``: the one picked from the list; else the panel names the building at the point, if any.
  // The report sends here.address, so an incident is stored with the address of the place located last.
  function locate(lon, lat, crs, address, keepMap) {
    var mine = ++locateSeq;
    spot = {lon: lon, lat: lat, crs: crs, address: address};  // asked again, as asked, when the mode changes
    here = null;  // until the answer: no report of the point before this one
    say($("status"), T.locating);
    request("GET", config.urls.panel + "?" + new URLSearchParams({lon: lon, lat: lat, crs: crs, mode: mode()})).then(function (r) {
      if (mine !== locateSeq) return;  // a later locating's answer wins
      if (r.status !== 200) { $("where").hidden = true; say($("status"), r.body.message || T.failed, true); return; }
      say($("status"), "");
      here = r.body;
      here.address = address || here.address || "";
      address = here.address;
      show(here, address);
      // the panel answers in WGS84 whatever the dispatcher typed, so the map needs no crs
      if (!keepMap) frame.src = config.urls.map + "?" + new URLSearchParams({lon: here.lon, lat: here.lat});
    }, function () { if (mine === locateSeq) say($("status"), T.failed, true); });
  }
  function show(w, address) {
    $("where").hidden = false;
    $("w-address").hidden = !address; $("w-address").textContent = address || "";
    var parts = [w.district, w.street, w.community, w.grid].filter(Boolean).map(function (p) { return p.name || p.code; });
    $("w-path").textContent = parts.join(" › ");
    $("w-grid-code").textContent = w.grid ? w.grid.code : "";
    var near = w.near_other_grids || [];
    $("w-near").hidden = !near.length;
    $("w-near").textContent = fmt(T.near, {grids: near.map(function (g) {
      return g.name + " (" + g.code + ", " + metres(g.distance_m) + ")"; }).join("; ")});
    $("w-branch").textContent = w.party_branch || T.none;
    $("w-cameras").textContent = (w.cameras || []).map(function (c) {
      return (c.name || c.id) + " (" + metres(c.distance_m) + ")"; }).join("; ") || T.none;
    var ul = $("w-workers"); ul.textContent = "";
    (w.workers || []).forEach(function (wk) {
      var li = el("li", {}, wk.name + " "); li.appendChild(phoneLink(wk.phone)); ul.appendChild(li);
    });
    if (!ul.children.length) ul.appendChild(el("li", {}, T.none));
    $("w-basis").textContent = basisText(w.distance_basis, w.mode);
    var body = $("w-responders"); body.textContent = "";
    Object.keys(w.responders || {}).forEach(function (kind) {
      (w.responders[kind] || []).slice(0, 1).forEach(function (p) {
        var tr = el("tr", {"data-kind": kind});
        tr.appendChild(el("td", {}, kindName(kind)));
        tr.appendChild(el("td", {}, p.name));
        var td = el("td"); td.appendChild(phoneLink(p.phone)); tr.appendChild(td);
        tr.appendChild(el("td", {"class": "num"}, metres(p.distance_m)));
        tr.appendChild(el("td", {"class": "num"}, p.reachable === false ? T.noRoad : metres(p.road_distance_m)));
        tr.appendChild(el("td", {"class": "num"}, minutes(p.eta_s)));
        body.appendChild(tr);
      });
    });
    $("duplicates").hidden = true;
  }

  // what the distances are: by road for the mode, or straight lines (no roads, nobody a road reaches)
  function basisText(basis, m) { return basis === "road" ? (T.road[m] || T.road.car) : T.straight; }

  /* ---- reporting ---- */
  $("report").addEventListener("submit", function (e) {
    e.preventDefault();
    var button = $("report").querySelector("button[type=submit]");
    if (!here || button.disabled) return;
    button.disabled = true;  // one report per click: a second would be a duplicate
    request("POST", config.urls.incidents, {category: $("category").value, lon: here.lon, lat: here.lat,
                                            description: $("description").value, address: here.address || ""})
      .then(function (r) {
        button.disabled = false;
        if (r.status !== 201) { say($("status"), r.body.message || T.failed, true); return; }
        $("description").value = "";  // reported: the text is the incident's now, not the next report's
        say($("status"), fmt(T.reported, {id: r.body.incident.id}));
        var dup = $("duplicates"); dup.textContent = "";
        if (r.body.possible_duplicates.length) {
          dup.appendChild(el("p", {"class": "warning"}, T.duplicates));
          var ul = el("ul");
          r.body.possible_duplicates.forEach(function (d) {
            var li = el("li"); var a = el("a", {href: "#"}, "#" + d.id + " " + (zh ? d.category_name : d.category_name_en) +
                                          " · " + metres(d.distance_m));
            a.addEventListener("click", function (ev) { ev.preventDefault(); select(d.id); });
            li.appendChild(a); ul.appendChild(li);
          });
          dup.appendChild(ul);
        }
        dup.hidden = !dup.children.length;
        loadList();
        select(r.body.incident.id);
      }, function () { button.disabled = false; say($("status"), T.failed, true); });
  });

  /* ---- the incident list ---- */
  function loadList() {
    var q = {};
    if ($("f-status").value) q.status = $("f-status").value;
    if ($("f-level").value) q.level = $("f-level").value;
    if ($("f-overdue").checked) q.overdue = "true";
    return request("GET", config.urls.incidents + "?" + new URLSearchParams(q)).then(function (r) {
      var body = $("incidents"); body.textContent = "";
      (r.status === 200 ? r.body : []).forEach(function (inc) {
        var tr = el("tr", {"data-id": inc.id, tabindex: "0", "class": inc.overdue ? "overdue" : ""});
        [String(inc.id), zh ? inc.category_name : inc.category_name_en, statusName(inc.status), levelName(inc.level), inc.grid_code || "—"]
          .forEach(function (v) { tr.appendChild(el("td", {}, v)); });
        tr.appendChild(fill(el("td"), [inc.deadline_at ? when(inc.deadline_at) : "", inc.overdue ? T.overdue : ""]));
        tr.setAttribute("aria-describedby", "incidents-hint");
        tr.addEventListener("click", function () { select(inc.id); });
        tr.addEventListener("keydown", function (e) {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); select(inc.id); }
        });
        body.appendChild(tr);
      });
    });
  }
  ["f-status", "f-level", "f-overdue"].forEach(function (id) { $(id).addEventListener("change", loadList); });

  /* ---- one incident: actions, history, duplicates, whistle tasks, whom to send ---- */
  // Opens (or reloads) an incident: one answer carries the incident with its history and whistle
  // tasks, the suggested duplicates and whom to send; the map then shows that incident.
  function select(id, keepMap) {
    var mine = ++openSeq;
    var url = config.urls.incidentPanel.replace(/\/0$/, "/" + encodeURIComponent(id)) + "?" + new URLSearchParams({mode: mode()});
    return request("GET", url).then(function (r) {
      if (mine !== openSeq) return;  // a later opening's answer wins
      if (r.status !== 200) { say($("i-status"), r.body.message || T.failed, true); return; }
      current = r.body.incident;
      showIncident(current);
      showProposal(r.body.proposal);
      showDuplicates(current, r.body.duplicates || []);
      showWhistles(current.whistles || []);
      var src = config.urls.map + "?" + new URLSearchParams({mode: mode(), incident: current.id});
      // a new map opens centred on the incident, drawn large; the one already showing it flies back there
      if (!keepMap && frame.getAttribute("src") !== src) frame.src = src;
      else if (!keepMap && frame.contentWindow) {
        frame.contentWindow.postMessage({type: "gridmap:fly", key: "incident:" + current.id}, window.location.origin);
      }
    }, function () { if (mine === openSeq) say($("i-status"), T.failed, true); });
  }
  // after a change: the list (its status filter may now show or hide the incident) and the incident itself
  function changed() { loadList(); return select(current.id); }
  function showIncident(inc) {
    $("incident").hidden = false;
    $("i-title").textContent = "#" + inc.id + " " + (zh ? inc.category_name : inc.category_name_en);
    fill($("i-meta"), [T.status + ": " + statusName(inc.status), T.level + ": " + levelName(inc.level), inc.department,
      labelled(T.deadline, when(inc.deadline_at)),
      inc.overdue ? T.overdue : "", inc.address]);
    $("i-description").hidden = !inc.description; $("i-description").textContent = inc.description || "";
    showPhotos(inc);
    var actions = $("i-actions"); actions.textContent = "";
    var possible = (inc.allowed_actions || []).slice();
    // the server says what the level allows: no escalate above the department, the whistle only below it
    if (inc.may_whistle) possible.push("whistle");
    possible.filter(function (a) { return a !== "link_duplicate"; }).forEach(function (a) {
      var b = el("button", {type: "button", "class": "button", "data-action": a}, T.actions[a] || a);
      b.addEventListener("click", function () { act(a); });
      actions.appendChild(b);
    });
    var box = $("i-dispatch");
    box.hidden = possible.indexOf("dispatch") < 0;
    if (!box.hidden) loadCandidates(inc.id);
    var ol = $("i-history"); ol.textContent = "";
    (inc.history || []).forEach(function (h) {
      ol.appendChild(fill(el("li", {"data-action": h.action}), [when(h.at, true), h.actor, actionName(h.action),
        (h.from_status ? statusName(h.from_status) : "—") + " → " + statusName(h.to_status) +
        (h.from_level && h.from_level !== h.to_level ? " (" + levelName(h.from_level) + " → " + levelName(h.to_level) + ")" : ""),
        h.note ? withTimes(noteText(h.action, h.note)) : ""]));
    });
  }
  // the reporter's and the worker's photos: thumbnails that open full size (served to those who may read it)
  function showPhotos(inc) {
    var box = $("i-photos"), ids = inc.photos || [];
    box.textContent = "";
    box.hidden = !ids.length;
    if (!ids.length) return;
    box.appendChild(el("h3", {}, T.photos));
    var ul = el("ul", {"class": "photos"});
    ids.forEach(function (pid, i) {
      var url = config.urls.photo.replace(/\/0$/, "/" + encodeURIComponent(pid));
      var a = el("a", {href: url, target: "_blank", rel: "noopener"});
      a.appendChild(el("img", {src: url, alt: fmt(T.photoAlt, {n: i + 1, id: inc.id}), loading: "lazy",
                               "class": "photo-thumb", "data-photo": pid}));
      var li = el("li"); li.appendChild(a); ul.appendChild(li);
    });
    box.appendChild(ul);
  }
  function loadCandidates(id) {
    request("GET", config.urls.incidents + "/" + id + "/responders").then(function (r) {
      var ul = $("i-candidates"); ul.textContent = "";
      if (r.status !== 200) return;
      var people = r.body.grid_workers.map(function (w) { return {name: w.name, kind: T.gridWorker, phone: w.phone}; });
      Object.keys(r.body.responders).forEach(function (kind) {
        r.body.responders[kind].forEach(function (p) { people.push({name: p.name, kind: kindName(kind), phone: p.phone, d: p.distance_m}); });
      });
      r.body.volunteers.forEach(function (v) { people.push({name: v.name, kind: T.volunteer, phone: v.phone, d: v.distance_m}); });
      people.forEach(function (p, i) {
        var li = el("li"), label = el("label");
        var box = el("input", {type: "checkbox", value: p.name + " (" + p.kind + ")", id: "cand-" + i});
        label.appendChild(box);
        label.appendChild(document.createTextNode(" " + p.name + " · " + p.kind + " · " + p.phone +
          (p.d != null ? " · " + metres(p.d) : "")));
        li.appendChild(label); ul.appendChild(li);
      });
    });
  }
  // A refusal shown with its reason and fix; a stale version offers to reload. True when refused.
  function refused(r) {
    if (r.status === 409 && r.body.details && r.body.details.current_version != null) {
      say($("i-status"), T.conflict, true);
      var b = el("button", {type: "button", "class": "link-button"}, T.reload);
      b.addEventListener("click", function () { say($("i-status"), ""); changed(); });
      $("i-status").appendChild(document.createTextNode(" ")); $("i-status").appendChild(b);
      return true;
    }
    if (r.status >= 300) { say($("i-status"), (r.body.message || T.failed) + (r.body.fix ? " " + r.body.fix : ""), true); return true; }
    return false;
  }
  function act(action) {
    var note = $("i-note").value.trim(), url, body;
    if (action === "dispatch") {
      var chosen = Array.prototype.map.call($("i-candidates").querySelectorAll("input:checked"), function (b) { return b.value; });
      if (!chosen.length) { say($("i-status"), T.pickOne, true); return; }
      // the lifecycle records whom in the audited note: the transition table has no responder field
      note = T.dispatchTo + " " + chosen.join(", ") + (note ? "; " + note : "");
    }
    if (action === "whistle") {
      url = config.urls.incidents + "/" + current.id + "/whistle"; body = {note: note};
    } else {
      url = config.urls.incidents + "/" + current.id + "/transition";
      body = {action: action, version: current.version, note: note};
    }
    request("POST", url, body).then(function (r) {
      if (refused(r)) return;
      say($("i-status"), fmt(T.done, {action: T.actions[action] || action}));
      $("i-note").value = "";
      changed();
    }, function () { say($("i-status"), T.failed, true); });
  }

  /* ---- whom to send: listed here, drawn on the map with a line to each ---- */
  function showProposal(p) {
    $("i-proposal-box").hidden = !p;
    var ul = $("i-proposal"); ul.textContent = "";
    if (!p) return;
    $("i-basis").textContent = basisText(p.distance_basis, p.mode);
    var people = p.grid_workers.map(function (w) { return ["grid_worker", w]; });
    Object.keys(p.responders).forEach(function (kind) {
      p.responders[kind].forEach(function (r) { people.push([kind, r]); });
    });
    p.volunteers.forEach(function (v) { people.push(["volunteer", v]); });
    people.forEach(function (pair) {
      var kind = pair[0], person = pair[1], li = el("li", {"data-kind": kind});
      li.appendChild(el("span", {"class": "kind", style: "background:" + (config.colours[kind] || "#475569")}, kindName(kind)));
      li.appendChild(el("strong", {}, person.name));
      li.appendChild(phoneLink(person.phone));
      li.appendChild(el("span", {"class": "num"}, metres(person.distance_m)));
      // by road where measured: what the ranking is by; "no road" where none of the mode's roads reaches them
      if (person.reachable === false) li.appendChild(el("span", {"class": "num road"}, T.noRoad));
      else if (person.road_distance_m != null) {
        li.appendChild(el("span", {"class": "num road"}, metres(person.road_distance_m) + " · " + minutes(person.eta_s)));
      }
      if (person.matched_skills && person.matched_skills.length) li.appendChild(el("small", {}, person.matched_skills.join("、")));
      ul.appendChild(li);
    });
    if (!people.length) ul.appendChild(el("li", {}, T.nobody));
  }

  /* ---- suggested duplicates: link one, or type the number of the earlier report ---- */
  function showDuplicates(inc, dups) {
    var canLink = (inc.allowed_actions || []).indexOf("link_duplicate") >= 0;
    $("i-duplicates-box").hidden = !canLink && !dups.length;
    $("i-link").hidden = !canLink;
    $("i-link").querySelector("button").disabled = false;  // disabled while a link was on its way
    var ul = $("i-duplicates"); ul.textContent = "";
    dups.forEach(function (d) {
      var li = el("li", {"data-id": d.id});
      li.appendChild(fill(el("span"), ["#" + d.id + " " + (zh ? d.category_name : d.category_name_en),
        metres(d.distance_m), when(d.reported_at), statusName(d.status)]));
      if (canLink) {
        var b = el("button", {type: "button", "class": "button", "data-duplicate-of": d.id}, fmt(T.linkTo, {id: d.id}));
        b.addEventListener("click", function () { link(d.id); });
        li.appendChild(b);
      }
      ul.appendChild(li);
    });
    if (!dups.length) ul.appendChild(el("li", {}, T.noDuplicates));
  }
  $("i-link").addEventListener("submit", function (e) {
    e.preventDefault();
    var raw = $("i-link-id").value.trim().replace(/^#/, "");
    if (!/^\d+$/.test(raw)) { say($("i-status"), T.linkId, true); $("i-link-id").focus(); return; }
    link(Number(raw));
  });
  function link(target) {
    if (!current) return;
    var inc = current, buttons = document.querySelectorAll("#i-duplicates button, #i-link button");
    buttons.forEach(function (b) { b.disabled = true; });  // one link per click, until the incident reloads
    request("POST", config.urls.incidents + "/" + inc.id + "/transition",
            {action: "link_duplicate", version: inc.version, duplicate_of: target, note: $("i-note").value.trim()})
      .then(function (r) {
        if (refused(r)) { buttons.forEach(function (b) { b.disabled = false; }); return; }
        say($("i-status"), fmt(T.done, {action: T.actions.link_duplicate}));
        $("i-note").value = ""; $("i-link-id").value = "";
        changed();
      }, function () { buttons.forEach(function (b) { b.disabled = false; }); say($("i-status"), T.failed, true); });
  }

  /* ---- whistle tasks and reporting in (报到) ---- */
  function showWhistles(tasks) {
    $("i-whistles-box").hidden = !tasks.length;
    var body = $("i-whistles"); body.textContent = "";
    tasks.forEach(function (t) {
      var tr = el("tr", {"data-id": t.id, "class": t.overdue ? "overdue" : ""});
      tr.appendChild(el("td", {}, t.department));
      tr.appendChild(fill(el("td"), [when(t.blown_at), t.blown_by]));
      tr.appendChild(fill(el("td"), [when(t.report_by)]));
      var late = t.reported_at && t.reported_at > t.report_by;  // ISO UTC strings sort as times do
      tr.appendChild(fill(el("td", {"class": t.overdue || late ? "overdue" : ""}), t.reported_at ?
        [when(t.reported_at), late ? T.late : ""] : [t.overdue ? T.overdue : T.notYet]));
      var td = el("td");
      if (!t.reported_at) {
        var b = el("button", {type: "button", "class": "button", "data-task": t.id}, T.reportIn);
        b.addEventListener("click", function () { b.disabled = true; reportIn(t, b); });
        td.appendChild(b);
      }
      tr.appendChild(td);
      body.appendChild(tr);
    });
  }
  function reportIn(task, button) {
    request("POST", config.urls.whistleReport.replace(/\/0\/report$/, "/" + task.id + "/report")).then(function (r) {
      if (refused(r)) { button.disabled = false; return; }
      say($("i-status"), fmt(T.reportedIn, {department: task.department}));
      changed();
    }, function () { button.disabled = false; say($("i-status"), T.failed, true); });
  }

  loadList();
})();
