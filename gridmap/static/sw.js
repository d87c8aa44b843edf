/* The workbench's service worker (served at /worker/sw.js, scope /worker/): the page and its files
   open from the cache when the phone is offline, so what is typed there waits in the outbox
   (IndexedDB, worker.js) instead of being lost with a failed page load. Only GET requests of the
   same origin are answered: network first, the cache when the network fails. Writes are never
   intercepted — the page's outbox owns them — and the API's answers are not cached (they hold
   personal data and go stale). */
"use strict";
var CACHE = "gridmap-worker-v1";

self.addEventListener("install", function (event) { self.skipWaiting(); });
self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== CACHE; }).map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var req = event.request, url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin || url.pathname.indexOf("/api/") !== -1) return;
  if (!(req.mode === "navigate" || url.pathname.indexOf("/static/") !== -1 || url.pathname.indexOf("/worker/") === 0)) return;
  event.respondWith(fetch(req).then(function (res) {
    if (res.ok) {
      var copy = res.clone();
      caches.open(CACHE).then(function (c) { c.put(req, copy); });
    }
    return res;
  }).catch(function () {
    return caches.match(req).then(function (hit) { return hit || Response.error(); });
  }));
});
