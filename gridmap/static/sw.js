/* The workbench's service worker (served at /worker/sw.js, scope /worker/): the page and its files
   open from the cache when the phone is offline, so what is typed there waits in the outbox
   (IndexedDB, worker.js) instead of being lost with a failed page load. Only GET requests of the
   same origin are answered: network first, the cache when the network fails. Writes are never
   intercepted — the page's outbox owns them — and the API's answers are not cached (they hold
   personal data and go stale).

   Pages hold personal data (households, phones, the worker's inbox), so they are kept apart from
   the static files, under the account they were drawn for: the server names it in the response's
   X-Gridmap-Account header. A page answered for another account drops the last account's pages
   first; a page answered with no account (a redirect to the login page, a refusal) drops them all,
   since nobody who may see them is signed in. Offline, only the one account's pages kept can open.
   Signing out clears everything (Clear-Site-Data on the logout answer, and worker.js before it). */
"use strict";
var STATIC = "gridmap-static-v2", PAGES = "gridmap-pages-v2-";  // PAGES + account tag

function pageCaches() {
  return caches.keys().then(function (names) {
    return names.filter(function (n) { return n.indexOf(PAGES) === 0; });
  });
}
function dropPages(except) {
  return pageCaches().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== except; }).map(function (n) { return caches.delete(n); }));
  });
}

self.addEventListener("install", function (event) { self.skipWaiting(); });
self.addEventListener("activate", function (event) {
  // older versions kept pages unkeyed (gridmap-worker-v1): whose they were is unknown, so they go
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n !== STATIC && n.indexOf(PAGES) !== 0; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});
self.addEventListener("message", function (event) {  // worker.js, signing out
  if (event.data && event.data.type === "signed-out") event.waitUntil(dropPages(null));
});

function keepPage(req, res) {
  var account = res.headers.get("X-Gridmap-Account");
  if (res.type === "opaqueredirect" || res.status === 401 || res.status === 403 || (res.ok && !account)) {
    return dropPages(null);
  }
  if (!res.ok) return Promise.resolve();  // a 404 or a 500 says nothing about who is signed in
  var name = PAGES + account;
  return dropPages(name).then(function () { return caches.open(name); }).then(function (c) { return c.put(req, res); });
}

self.addEventListener("fetch", function (event) {
  var req = event.request, url = new URL(req.url);
  if (req.method !== "GET" || url.origin !== self.location.origin || url.pathname.indexOf("/api/") !== -1) return;
  var isStatic = url.pathname.indexOf("/static/") === 0;
  if (!(isStatic || req.mode === "navigate" || url.pathname.indexOf("/worker/") === 0)) return;
  if (url.pathname === "/worker/sw.js") return;
  event.respondWith(fetch(req).then(function (res) {
    var copy = res.clone();
    event.waitUntil(isStatic ? (res.ok ? caches.open(STATIC).then(function (c) { return c.put(req, copy); }) : null)
                             : keepPage(req, copy));
    return res;
  }).catch(function () {
    var lookup = isStatic ? caches.open(STATIC).then(function (c) { return c.match(req); })
      : pageCaches().then(function (names) {  // at most one: the account signed in last
        return names.length ? caches.open(names[0]).then(function (c) { return c.match(req); }) : undefined;
      });
    return lookup.then(function (hit) { return hit || Response.error(); });
  }));
});
