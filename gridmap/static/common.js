/* What every page's script needs, once: building elements from data (textContent only: server
   values are user data, never HTML), status lines, templated text and JSON requests that carry
   the session and the CSRF token. Loaded before each page's own script. */
(function () {
  "use strict";
  function fmt(s, vals) { return s.replace(/\{(\w+)\}/g, function (_, k) { return vals[k] != null ? vals[k] : ""; }); }
  function el(tag, props, text) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (k) { node.setAttribute(k, props[k]); });
    if (text != null) node.textContent = text;
    return node;
  }
  function say(node, text, isError) { node.textContent = text || ""; node.classList.toggle("error", !!isError); }
  /* {status, body} of a JSON call; a body that is not JSON reads as {} */
  function request(method, url, body, csrf, signal) {
    var opts = {method: method, credentials: "same-origin", headers: {Accept: "application/json"}, signal: signal};
    if (csrf) opts.headers["X-CSRFToken"] = csrf;
    if (body !== undefined) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(url, opts).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (b) {
        // a page shows the service's words in its own language: the English stays for programs
        if (b && b.localized) { b.message = b.localized.message; b.fix = b.localized.fix; }
        return {status: r.status, body: b};
      });
    });
  }
  window.gridmap = {fmt: fmt, el: el, say: say, request: request};
})();
