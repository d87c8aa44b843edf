"""Every setting as data: name, default, help; read from GRIDMAP_* env or the instance config."""
import os
from dataclasses import dataclass

from .errors import InvalidInput


def boolean(raw):
    """A yes/no setting from its environment text: 1/0, true/false, yes/no, on/off (``bool("0")`` is True)."""
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(raw)


@dataclass(frozen=True)
class Setting:
    name: str
    default: object
    help: str
    type: type = str


SETTINGS = [
    Setting("DATABASE_URL", None,
            "SQLAlchemy URL of the store. Default: SQLite file instance/gridmap.db. "
            "Use postgresql+psycopg://user@host/db for PostgreSQL + PostGIS."),
    Setting("SECRET_KEY", None,
            "Key that signs sessions and CSRF tokens. Default: a random key kept in instance/secret_key."),
    Setting("DEFAULT_LOCALE", "zh_CN", "Language of pages when the visitor has not chosen one (zh_CN or en)."),
    Setting("MAP_TILES", "OpenStreetMap",
            "Folium tile layer for maps (a provider name Folium knows, a URL template, or 'none' for offline use)."),
    Setting("MAP_TILES_ATTRIBUTION", "",
            "Attribution text required when MAP_TILES is a URL template."),
    Setting("IMPORT_MAX_AREA_CHANGE", 0.01,
            "Largest relative area change allowed when an invalid polygon is repaired on import (0.01 = 1 %).",
            float),
    # Imports from the browser (/admin/imports): the file is checked at the border before any reader sees it.
    Setting("IMPORT_MAX_UPLOAD_BYTES", 64 * 2**20,
            "Largest file in bytes an admin or planner may upload on /admin/imports (64 MiB; larger files go "
            "through `gridmap import` on the server).", int),
    Setting("IMPORT_MAX_UNZIPPED_BYTES", 512 * 2**20,
            "Largest total size in bytes of the files inside an uploaded zip, counted as they are unpacked "
            "(a zip bomb stops here, not in memory).", int),
    Setting("IMPORT_MAX_ZIP_MEMBERS", 64,
            "Most files an uploaded zip may hold (a zipped Shapefile has 4 to 8).", int),
    Setting("IMPORT_UPLOAD_HOURS", 24.0,
            "How long an uploaded file waits in the private upload folder before it is deleted unimported.",
            float),
    Setting("SNAPSHOT_CHECK_SECONDS", 2.0,
            "How often a web process checks the store for a newer published plan generation.", float),
    Setting("TILE_CACHE_BYTES", 64 * 2**20,
            "Most bytes of vector tiles a web process keeps in memory (the city map; least recently used out).", int),
    Setting("SNAPSHOT_DIR", "",
            "Folder of the snapshot files every web process maps (one per published generation, built once). "
            "Default: instance/snapshots. 'memory' builds one snapshot per process in memory instead."),
    Setting("CONTACT_HOUSEHOLDS_PER_MEMBER", 15,
            "Most households one party member is linked to as contact households (党员联系户).", int),
    Setting("GRID_MAX_HOUSEHOLDS", 500,
            "Most households a grid may hold; a plan with a grid above it cannot be published (0 = no limit).", int),
    Setting("GRID_MIN_HOUSEHOLDS", 100,
            "Fewest households a grid should hold; a grid below it is reported as a warning (0 = no limit).", int),
    Setting("GRID_SLIVER_M2", 1.0,
            "Gaps, overlaps and parts outside the community smaller than this many square metres are drawing "
            "noise, not findings, when a plan is validated.", float),
    Setting("LOGIN_CACHE_SECONDS", 5.0,
            "How long a web process trusts a signed-in user's role before reading it from the store again: "
            "a role change, a deleted account or a logout in another process takes effect within this time "
            "(0 reads it on every request).",
            float),
    Setting("BLIND_SPOT_MIN_M2", 4.0,
            "Camera blind spots smaller than this many square metres are left out of the list of blind spots "
            "(they still count against the coverage percentage).", float),
    # Bounds of a request: a body past its limit is refused (413) before it is read.
    Setting("MAX_BODY_BYTES", 64 * 1024,
            "Largest request body in bytes for every address but the planner's edits: reports, transitions, "
            "SOS, Open311 requests, logins (64 KiB holds a 4,000-character description many times over).", int),
    Setting("MAX_EDIT_BYTES", 2 * 1024 * 1024,
            "Largest body in bytes of a planner's edit (it carries grid polygons of up to 5,000 vertices each).",
            int),
    Setting("MAX_FORM_PARTS", 100,
            "Most fields a multipart form may have (Werkzeug's limit; the largest form has a handful).", int),
    Setting("MAX_JSON_DEPTH", 32,
            "Deepest nesting of arrays and objects a JSON body may have (GeoJSON polygons need 4).", int),
    # Photos residents and grid workers attach (gridmap.photos): bounded before they are decoded.
    Setting("PHOTO_MAX_BYTES", 8 * 1024 * 1024,
            "Largest photo in bytes as uploaded (8 MiB holds a 12-megapixel phone JPEG); a report's body may "
            "carry this much per photo on top of MAX_BODY_BYTES.", int),
    Setting("PHOTO_MAX_PIXELS", 50_000_000,
            "Most pixels (width × height) a photo may declare; larger ones are refused before decoding, "
            "so a small file cannot unpack into gigabytes (a decompression bomb).", int),
    Setting("PHOTO_MAX_SIDE", 2048,
            "Longest side in pixels of a photo as stored: larger photos are scaled down when they are re-encoded "
            "(and their EXIF dropped), which keeps a stored photo under about 1 MB.", int),
    # Serving over HTTPS (README, "Serving over HTTPS"): off for the laptop demo on http://127.0.0.1.
    Setting("HTTPS", False,
            "The site is reached over HTTPS (usually through a TLS proxy): the session cookie gets the Secure flag, "
            "so a browser never sends it over plain HTTP (1/0).", boolean),
    Setting("PROXY_COUNT", 0,
            "How many reverse proxies stand in front of the app. Their X-Forwarded-For and X-Forwarded-Proto "
            "headers are believed only when this is above 0 (set 1 behind one nginx; 0 = none, the headers are "
            "ignored, as a client could forge them).", int),
    # Abuse limits: how often one caller may write, and how long a username is locked after failed sign-ins.
    # A limit is one or more "N per second|minute|hour|day" joined by ';'. Refused requests get 429 + Retry-After.
    Setting("RATELIMIT_ENABLED", True, "Whether the request limits below are applied (1/0).", boolean),
    Setting("RATELIMIT_STORAGE_URI", "store",
            "Where the limits' counters live. 'store': a table in the gridmap database, shared by every "
            "process on it (the default: right for gunicorn's several workers); 'redis://host:6379/0': Redis "
            "(pip install redis); 'memory://': inside one process only — each gunicorn worker then counts "
            "apart, so a client gets the limit once per worker."),
    Setting("RATELIMIT_REPORTS", "20 per minute;200 per day",
            "Incident reports (POST /api/v1/incidents) one client address may send, signed in or not."),
    Setting("RATELIMIT_ACCOUNT_REPORTS", "60 per minute;1000 per day",
            "Incident reports one signed-in account may send, from any number of addresses."),
    Setting("RATELIMIT_API_KEY", "120 per minute;10000 per day",
            "Open311 service requests (POST /open311/v2/requests) per api_key and per client address; "
            "also SOS alarms (POST /api/v1/sos) per client address (a gateway relays many wearables)."),
    Setting("RATELIMIT_SOS", "6 per minute;60 per day",
            "SOS alarms one wearable (device_id) may raise; the first alarm already makes a priority incident."),
    Setting("RATELIMIT_LOGIN", "20 per minute;200 per hour",
            "Sign-in attempts (POST /login) from one client address, whatever the username."),
    Setting("RATELIMIT_LOGIN_USERNAME", "10 per minute;100 per hour",
            "Sign-in attempts for one username, from any address (known and unknown names alike)."),
    Setting("LOGIN_LOCKOUT_FAILURES", 5,
            "Consecutive failed sign-ins after which a username is locked, even against the right password "
            "(0 = never lock).", int),
    Setting("LOGIN_LOCKOUT_SECONDS", 60.0,
            "How long the first lock lasts; each further lock before a successful sign-in lasts twice as long.",
            float),
    Setting("LOGIN_LOCKOUT_MAX_SECONDS", 3600.0, "The longest a lock lasts, however often it repeats.", float),
]

_BY_NAME = {s.name: s for s in SETTINGS}


def from_environ(environ=None):
    """Return the settings given as GRIDMAP_<NAME> environment variables, converted to their types."""
    environ = os.environ if environ is None else environ
    out = {}
    for s in SETTINGS:
        raw = environ.get(f"GRIDMAP_{s.name}")
        if raw is None:
            continue
        try:
            out[s.name] = s.type(raw)
        except ValueError:
            raise InvalidInput(
                f"GRIDMAP_{s.name}={raw!r} is not a valid {s.type.__name__}.",
                fix=f"Set it to a {s.type.__name__}; {s.help}") from None
    return out


def defaults():
    """Every setting's default, by name: what an app starts from before its config and environment."""
    return {s.name: s.default for s in SETTINGS}


def default(name):
    """One setting's default: for library callers that pass no value (the app always passes its config)."""
    return _BY_NAME[name].default
