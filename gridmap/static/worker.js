/* The grid worker's workbench: move incidents on, patrol with the phone's positions, check in and
   report. Check-ins and reports go to an outbox in IndexedDB first, each with a key made here
   (crypto.randomUUID), and leave it only when the server has answered: typed offline, they are sent
   when the phone is back online, and a resend after a lost answer is stored once (the server keeps
   the key and answers the first result). Positions are batched and bounded in memory. */
(function () {
  "use strict";
  var G = window.gridmap, cfg = JSON.parse(document.getElementById("gridmap-config").textContent);
  var T = cfg.text, csrf = cfg.csrf;
  var MAX_BUFFER = 2000;  // positions held while the network is away; the oldest go first beyond this

  function detail(r) { return (r.body && (r.body.message || r.body.error)) || ("HTTP " + r.status); }
  function reloadMap() { var f = document.getElementById("map"); if (f) f.src = f.src; }
  function key() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16); crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  /* --- the outbox: IndexedDB, one store of {key, url, body, kind, owner} --- */
  var me = cfg.account;
  var dbp = new Promise(function (resolve, reject) {
    var open = indexedDB.open("gridmap-worker", 1);
    open.onupgradeneeded = function () { open.result.createObjectStore("outbox", {keyPath: "key"}); };
    open.onsuccess = function () { resolve(open.result); };
    open.onerror = function () { reject(open.error); };
  });
  function tx(mode, fn) {
    return dbp.then(function (db) {
      return new Promise(function (resolve, reject) {
        var t = db.transaction("outbox", mode), store = t.objectStore("outbox"), out = fn(store);
        t.oncomplete = function () { resolve(out && out.result !== undefined ? out.result : out); };
        t.onerror = function () { reject(t.error); };
      });
    });
  }
  var outboxLine = document.getElementById("outbox");
  function mine() {  // entries of other accounts (or of a version that filed none) stay where they are, unsent
    return tx("readonly", function (s) { return s.getAll(); }).then(function (items) {
      return items.filter(function (item) { return me && item.owner === me; });
    });
  }
  function showWaiting() {
    return mine().then(function (items) {
      G.say(outboxLine, items.length ? G.fmt(T.waiting, {n: items.length}) : "");
      return items.length;
    });
  }
  var flushing = null;
  function flush() {  // one flush at a time: two would send the same entry twice (harmless, but wasteful)
    if (flushing) return flushing;
    flushing = mine().then(function (items) {
      return items.reduce(function (chain, item) {
        return chain.then(function () { return sendOne(item); });
      }, Promise.resolve());
    }).catch(function () {}).then(function () { flushing = null; return showWaiting(); });
    return flushing;
  }
  function sendOne(item) {
    return G.request("POST", item.url, item.body, csrf).then(function (r) {
      // try again later: the server is away or busy, or the session ended (the entry waits for its account)
      if (r.status >= 500 || r.status === 0 || r.status === 409 || r.status === 401) return null;
      // answered (stored, replayed, or refused for good with a reason): it leaves the outbox
      return tx("readwrite", function (s) { return s.delete(item.key); }).then(function () {
        var line = document.getElementById(item.kind + "-status");
        if (r.status < 300) {
          G.say(line, r.body.replayed ? T.replayed : T.sent);
          reloadMap();
        } else {
          G.say(line, G.fmt(T.failed, {detail: detail(r)}), true);
        }
      });
    });  // a network error rejects: the entry stays for the next flush
  }
  function queue(kind, url, body, line) {
    body.owner = me;
    var item = {key: body.key, kind: kind, url: url, body: body, owner: me};
    return tx("readwrite", function (s) { return s.put(item); }).then(function () {
      G.say(line, navigator.onLine ? T.saving : T.queued);
      return navigator.onLine ? flush() : showWaiting();
    });
  }
  window.addEventListener("online", flush);

  /* --- signing out on this phone: nothing of this account stays behind for the next one --- */
  function forget() {
    return mine().then(function (items) {
      return tx("readwrite", function (s) { items.forEach(function (item) { s.delete(item.key); }); });
    }).then(function () {
      var sw = navigator.serviceWorker && navigator.serviceWorker.controller;
      if (sw) sw.postMessage({type: "signed-out"});
      return window.caches ? caches.keys().then(function (names) {
        return Promise.all(names.filter(function (n) { return n.indexOf("gridmap-pages-") === 0; })
          .map(function (n) { return caches.delete(n); }));
      }) : null;
    });
  }
  var logoutForm = document.querySelector("form.logout"), leaving = false;
  if (logoutForm) logoutForm.addEventListener("submit", function (e) {
    if (leaving) return;  // the second, real submit
    e.preventDefault();
    (navigator.onLine ? flush() : Promise.resolve()).then(showWaiting).then(function (left) {
      if (left && !window.confirm(G.fmt(T.logoutUnsent, {n: left}))) return;
      return forget().catch(function () {}).then(function () { leaving = true; logoutForm.submit(); });
    });
  });
  setInterval(function () { if (navigator.onLine) flush(); }, 15000);
  flush();

  /* --- positions --- */
  var here = null, watch = null, buffer = [], sentPoints = 0, rejected = 0, patrol = cfg.patrol;
  var patrolLine = document.getElementById("patrol-status");
  function onPosition(p) {
    here = {lon: p.coords.longitude, lat: p.coords.latitude, accuracy: p.coords.accuracy};
    if (patrol) {
      buffer.push({lon: here.lon, lat: here.lat, accuracy: here.accuracy, time: (p.timestamp || Date.now()) / 1000});
      if (buffer.length > MAX_BUFFER) buffer.splice(0, buffer.length - MAX_BUFFER);
      if (buffer.length >= cfg.limits.batch) sendPoints();
    }
  }
  function onGeoError(e) { G.say(patrolLine, e.code === 1 ? T.geoDenied : T.geoUnavailable, true); }
  function watchOn() {
    if (watch === null && navigator.geolocation) {
      watch = navigator.geolocation.watchPosition(onPosition, onGeoError,
                                                  {enableHighAccuracy: true, maximumAge: 5000, timeout: 20000});
    }
  }
  var sending = null;
  function sendPoints() {
    if (!patrol || !buffer.length || sending) return sending || Promise.resolve();
    var batch = buffer.slice(0, cfg.limits.batch);
    sending = G.request("POST", cfg.urls.patrols + "/" + patrol.id + "/points", {points: batch}, csrf)
      .then(function (r) {
        if (r.status === 200 || (r.status >= 400 && r.status < 500)) buffer.splice(0, batch.length);
        if (r.status === 200) {
          sentPoints += r.body.accepted; rejected += r.body.rejected.length;
          G.say(patrolLine, G.fmt(T.patrolOn, {points: sentPoints, rejected: rejected}));
          reloadMap();
        } else if (r.status === 409) {
          patrol = null; showPatrol();
        }
      }).catch(function () {}).then(function () { sending = null; });
    return sending;
  }
  setInterval(function () { if (navigator.onLine) sendPoints(); }, 2000);  // a batch every 2 s at most
  watchOn();

  var startBtn = document.getElementById("patrol-start"), stopBtn = document.getElementById("patrol-stop");
  function showPatrol() { startBtn.hidden = !!patrol; stopBtn.hidden = !patrol; }
  startBtn.addEventListener("click", function () {
    G.request("POST", cfg.urls.start, {}, csrf).then(function (r) {
      if (r.status >= 300) return G.say(patrolLine, G.fmt(T.failed, {detail: detail(r)}), true);
      patrol = r.body; showPatrol();
      G.say(patrolLine, G.fmt(T.patrolOn, {points: 0, rejected: 0}));
      if (here) onPosition({coords: {longitude: here.lon, latitude: here.lat, accuracy: here.accuracy}});
      watchOn();
    }).catch(function (e) { G.say(patrolLine, G.fmt(T.failed, {detail: e.message}), true); });
  });
  stopBtn.addEventListener("click", function () {
    var p = patrol;
    sendPoints().then(function () {
      return G.request("POST", cfg.urls.patrols + "/" + p.id + "/stop", {}, csrf);
    }).then(function (r) {
      patrol = null; showPatrol(); G.say(patrolLine, r.status < 300 || r.status === 409 ? T.patrolOff : G.fmt(T.failed, {detail: detail(r)}));
      reloadMap();
    }).catch(function (e) { G.say(patrolLine, G.fmt(T.failed, {detail: e.message}), true); });
  });

  /* --- check in, report: through the outbox --- */
  document.getElementById("checkin").addEventListener("submit", function (e) {
    e.preventDefault();
    var body = {key: key(), building_id: parseInt(document.getElementById("checkin-building").value, 10),
                note: document.getElementById("checkin-note").value, time: Date.now() / 1000};
    if (here) { body.lon = here.lon; body.lat = here.lat; body.accuracy = here.accuracy; }
    queue("checkin", cfg.urls.checkins, body, document.getElementById("checkin-status")).then(function () {
      document.getElementById("checkin-note").value = "";  // typed once, sent once: no second tap from a kept text
    });
  });
  document.getElementById("report").addEventListener("submit", function (e) {
    e.preventDefault();
    var line = document.getElementById("report-status");
    if (!here) return G.say(line, T.noPosition, true);
    var body = {key: key(), category: document.getElementById("report-category").value,
                description: document.getElementById("report-description").value, lon: here.lon, lat: here.lat};
    queue("report", cfg.urls.reports, body, line).then(function () {
      document.getElementById("report-description").value = "";
    });
  });

  /* --- the inbox: the dispatcher's lifecycle through the API; the server says which steps exist --- */
  Array.prototype.forEach.call(document.querySelectorAll(".incident .act"), function (btn) {
    btn.addEventListener("click", function () {
      var li = btn.closest(".incident"), line = li.querySelector(".status"), noteBox = li.querySelector(".note");
      var action = btn.getAttribute("data-action"), note = noteBox ? noteBox.value.trim() : "";
      if (action === "resolve" && !note) { G.say(line, T.noteNeeded, true); if (noteBox) noteBox.focus(); return; }
      var id = li.getAttribute("data-id"), version = parseInt(li.getAttribute("data-version"), 10), sent;
      if (action === "resolve") {  // with photos: multipart to the workbench's own resolve
        var files = Array.prototype.slice.call((li.querySelector(".photos") || {}).files || []);
        if (files.length > cfg.limits.photos) {
          return G.say(line, G.fmt(T.tooManyPhotos, {count: files.length, most: cfg.limits.photos}), true);
        }
        var form = new FormData();
        form.append("version", String(version)); form.append("note", note);
        files.forEach(function (f) { form.append("photos", f, f.name); });
        var show = li.querySelector(".show-photos");
        form.append("show_photos", show && show.checked ? "1" : "0");
        sent = fetch(cfg.urls.resolve + id + "/resolve", {method: "POST", credentials: "same-origin", body: form,
                                                          headers: {Accept: "application/json", "X-CSRFToken": csrf}})
          .then(function (r) {
            return r.json().catch(function () { return {}; }).then(function (b) { return {status: r.status, body: b}; });
          });
      } else {
        sent = G.request("POST", cfg.urls.incidents + "/" + id + "/transition",
                         {action: action, version: version, note: note}, csrf);
      }
      btn.disabled = true; G.say(line, T.saving);
      sent
        .then(function (r) {
          if (r.status === 200) { G.say(line, T.done); window.location.reload(); return; }
          if (r.status === 409) { G.say(line, T.stale, true); setTimeout(function () { window.location.reload(); }, 1500); return; }
          btn.disabled = false; G.say(line, G.fmt(T.failed, {detail: detail(r)}), true);
        }).catch(function (e) { btn.disabled = false; G.say(line, G.fmt(T.failed, {detail: e.message}), true); });
    });
  });

  /* --- the service worker: the workbench opens offline from its cache --- */
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register(cfg.urls.sw, {scope: cfg.urls.scope}).catch(function () {});
  }
  /* times are stored and sent in UTC; people read them on the phone's clock (China Standard Time there) */
  Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (!isNaN(d)) t.textContent = d.toLocaleString(document.documentElement.lang || undefined,
                                                    {month: "numeric", day: "numeric", hour: "2-digit", minute: "2-digit"});
  });
  document.body.setAttribute("data-ready", "1");  // the buttons answer from here on (tests wait for it)
})();
