"""What every response carries for the browser's safety: CSP with a per-request nonce, framing, cookies, proxies."""
import secrets

import folium
from flask import current_app, g, request
from flask_babel import gettext as _
from werkzeug.middleware.proxy_fix import ProxyFix

from ..errors import InvalidInput
from ..maps.base import tile_source
from ..settings import boolean

# Headers that are the same on every response.
_STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # Same-origin: a page's query string (a grid code, an incident id, a resident's address) is not
    # sent to the tile server or to a link's target; the site's own calls still see where they came from.
    "Referrer-Policy": "same-origin",
    # Residents locate themselves (the page asks the browser for a position); nothing else is wanted.
    "Permissions-Policy": "geolocation=(self), camera=(), microphone=(), payment=(), usb=()",
}


def init_app(app):
    """Attach the headers, cookie settings and proxy trust of one app (settings HTTPS, PROXY_COUNT)."""
    try:  # instance/gridmap.cfg may say HTTPS = "0", which bool() would read as yes
        https = boolean(app.config["HTTPS"])
    except ValueError:
        raise InvalidInput(f"HTTPS={app.config['HTTPS']!r} is neither yes nor no.",
                           fix="Set GRIDMAP_HTTPS to 1 behind a TLS proxy, 0 otherwise.") from None
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=https,
        # Flask-Login's remember-me cookie: not set by gridmap's login today, held to the same rules if it ever is.
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SECURE=https,
        PREFERRED_URL_SCHEME="https" if https else "http")
    proxies = app.config["PROXY_COUNT"]
    if not isinstance(proxies, int) or isinstance(proxies, bool) or proxies < 0:
        raise InvalidInput(f"PROXY_COUNT={proxies!r} is not a number of proxies.",
                           fix="Set GRIDMAP_PROXY_COUNT to 0 (no proxy, the default) or to how many proxies "
                               "stand in front of the app (1 behind one nginx).")
    if proxies > 0:
        # Only the headers nginx is told to set (README, "Serving over HTTPS"): the client address and
        # the scheme. X-Forwarded-Host/Prefix stay ignored, so a client cannot choose the host of a URL.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=0, x_port=0, x_prefix=0)
    img = tile_source(app.config["MAP_TILES"])
    app.extensions["gridmap.csp_images"] = " ".join(["'self'", "data:", *([img] if img else [])])
    app.after_request(_headers)
    app.jinja_env.globals["csp_nonce"] = csp_nonce


def csp_nonce():
    """This request's script nonce: inline scripts carrying it run, any other inline script does not."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return g.csp_nonce


def frameable(view):
    """Let this view's pages be framed by the site's own pages (the Folium maps in their iframes)."""
    view.frameable = True
    return view


def map_page(m):
    """A Folium map as this request's HTML page: its inline scripts carry the request's nonce.

    Folium writes the map's code as bare ``<script>`` blocks; every one of them comes from the
    map's templates (user data is escaped into JS strings that hold no ``<``, see
    ``maps.base.js_string``), so nonce-ing each bare tag lets exactly the map's own code run.
    """
    # the base layer's name shows in the layer switcher: in the page's language, not the tile set's id
    for child in m._children.values():
        if isinstance(child, folium.TileLayer):
            child.tile_name = _("Base map")
    html = m.get_root().render().replace("<script>", f'<script nonce="{csp_nonce()}">')
    return html, 200, {"Content-Type": "text/html; charset=utf-8"}


def _headers(response):
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    framed = getattr(view, "frameable", False)
    policy = [
        "default-src 'self'",
        f"script-src 'self' 'nonce-{csp_nonce()}'",
        # 'unsafe-inline' for styles only, and needed: Folium writes its map sizes as <style> blocks,
        # Leaflet sets style attributes in the markers' and badges' HTML it inserts (innerHTML), and the
        # coverage table's swatches carry their colour as a style attribute. A nonce would not cover
        # the attributes, and a nonce beside 'unsafe-inline' switches 'unsafe-inline' off. Styles
        # cannot run script; the script policy above is what stops injected code.
        "style-src 'self' 'unsafe-inline'",
        f"img-src {current_app.extensions['gridmap.csp_images']}",
        "connect-src 'self'", "font-src 'self'", "frame-src 'self'", "object-src 'none'",
        "base-uri 'self'", "form-action 'self'",
        "frame-ancestors 'self'" if framed else "frame-ancestors 'none'",
    ]
    response.headers.setdefault("Content-Security-Policy", "; ".join(policy))
    response.headers.setdefault("X-Frame-Options", "SAMEORIGIN" if framed else "DENY")
    for name, value in _STATIC_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
