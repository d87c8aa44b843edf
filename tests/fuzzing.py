"""Property-based fuzzing of the whole API surface: every operation of the OpenAPI document through
schemathesis (valid and invalid requests), and Open311's endpoints, which the document does not
describe, through hypothesis. Shared by tests/test_fuzz.py (a bounded run on each backend) and
bench/fuzz_bench.py (a longer one that prints its counts).

Generated values alone rarely reach past a 404 (an incident id drawn at random names nothing), so
half of the cases are *anchored*: a path id replaced by one that exists, a point moved inside the
world's community, a device id that is registered. Every response is counted by operation and
status; a 5xx is a failure, kept with the curl command that reproduces it.
"""
from __future__ import annotations

import collections
import json
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st


@dataclass
class Report:
    counts: collections.Counter = field(default_factory=collections.Counter)  # (operation, status) → n
    failures: list = field(default_factory=list)  # (operation, mode, status, body, how to reproduce)

    def statuses(self, operation=None):
        out = collections.Counter()
        for (op, status), n in self.counts.items():
            if operation is None or op == operation:
                out[status] += n
        return out

    @property
    def total(self):
        return sum(self.counts.values())

    def server_errors(self):
        return sum(n for (_, status), n in self.counts.items() if status >= 500)


@dataclass
class Anchors:
    """Values that exist in the world under test, for anchored cases."""

    path: dict  # path parameter name → existing values
    body: dict  # body field → values that mean something here (a point inside, a registered device)
    lon: float
    lat: float


def _settings(examples, seed):
    def wrap(f):
        f = settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
                     suppress_health_check=list(HealthCheck))(f)
        return f if seed is None else hypothesis_seed(seed)(f)
    return wrap


def fuzz_api(app, client, anchors, *, examples=15, api_key=None, seed=None, report=None):
    """Send ``examples`` valid and ``examples`` invalid requests to every operation of /api/v1
    through ``client`` (a signed-in Flask test client); returns the :class:`Report`."""
    import schemathesis
    from schemathesis.generation import GenerationMode

    from gridmap.web import openapi

    report = report or Report()
    schema = schemathesis.openapi.from_dict(openapi.document(server_url=openapi.PREFIX))
    cookie = client.get_cookie("session")
    # the document's session scheme makes schemathesis send a made-up session cookie; send the real one
    cookies = {"session": cookie.value} if cookie else None
    for result in schema.get_all_operations():
        op = result.ok()
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            run = _operation_run(app, client, op, mode, anchors, cookies, api_key, report, examples, seed)
            try:
                run()
            except Exception as err:  # hypothesis cannot build a negative case for an operation without inputs
                if type(err).__name__ != "Unsatisfiable":
                    raise
    return report


def _operation_run(app, client, op, mode, anchors, cookies, api_key, report, examples, seed):
    @_settings(examples, seed)
    @given(case=op.as_strategy(generation_mode=mode), anchor=st.booleans(), data=st.data())
    def run(case, anchor, data):
        if anchor:
            _anchor(case, anchors, data)
        headers = {"X-Api-Key": api_key} if api_key and op.path == "/sos" else None
        response = case.call(session=client, app=app, cookies=cookies, headers=headers)
        status = response.status_code
        report.counts[(op.label, status)] += 1
        if status >= 500:
            report.failures.append((op.label, mode.value, status, response.text[:300], case.as_curl_command()))
    return run


def _anchor(case, anchors, data):
    for name, values in anchors.path.items():
        if case.path_parameters and name in case.path_parameters and values:
            case.path_parameters[name] = data.draw(st.sampled_from(values))
    if isinstance(case.body, dict):
        for name, values in anchors.body.items():
            if name in case.body:
                case.body[name] = data.draw(st.sampled_from(values))


# --- Open311: the spec's endpoints, not in the OpenAPI document ---------------------------------

_OPEN311_FIELDS = ("service_code", "lat", "long", "address_string", "description", "email", "first_name",
                   "last_name", "phone", "api_key", "device_id", "media_url")
_JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                     max_size=3), max_leaves=8)
_TEXT = st.text(max_size=30)


def fuzz_open311(app, *, anchors, api_key, codes, examples=60, seed=None, report=None):
    """Random GETs (filters, ids, formats) and POSTs (form and JSON, any value types) to Open311."""
    report = report or Report()
    client = app.test_client()
    fmt = st.sampled_from(["json", "xml", "csv", "JSON", ""])
    value = st.one_of(_TEXT, st.sampled_from(list(codes)), st.just(api_key), st.just(str(anchors.lat)),
                      st.just(str(anchors.lon)), st.sampled_from(["2026-05-03T08:00:00Z", "9999-12-31T23:59:59-14:00",
                                                                  "open", "closed", "1,2,²", "%00"]))
    query = st.dictionaries(st.sampled_from(["service_request_id", "service_code", "status", "start_date",
                                             "end_date", "jurisdiction_id", "x"]), value, max_size=4)
    valid = st.fixed_dictionaries({"service_code": st.sampled_from(list(codes)), "lat": st.just(str(anchors.lat)),
                                   "long": st.just(str(anchors.lon)), "api_key": st.just(api_key)})
    # half the forms start valid and then have a few fields changed, so they reach the service
    form = st.one_of(st.dictionaries(st.sampled_from(_OPEN311_FIELDS), value, max_size=8),
                     st.tuples(valid, st.dictionaries(st.sampled_from(_OPEN311_FIELDS), value, max_size=2))
                     .map(lambda pair: {**pair[0], **pair[1]}))
    body = st.one_of(st.dictionaries(st.sampled_from(_OPEN311_FIELDS), st.one_of(value, _JSONISH), max_size=8),
                     _JSONISH)

    def count(label, response):
        report.counts[(label, response.status_code)] += 1
        if response.status_code >= 500:
            report.failures.append((label, "open311", response.status_code, response.get_data(as_text=True)[:300],
                                    ""))

    @_settings(examples, seed)
    @given(fmt=fmt, query=query, rid=st.one_of(_TEXT, st.integers().map(str)), kind=st.integers(0, 3),
           form=form, body=body)
    def run(fmt, query, rid, kind, form, body):
        from urllib.parse import quote
        if kind == 0:
            count("GET /open311/v2/requests", client.get(f"/open311/v2/requests.{fmt}", query_string=query))
        elif kind == 1:
            count("GET /open311/v2/requests/{id}", client.get(f"/open311/v2/requests/{quote(rid, safe='')}.{fmt}"))
        elif kind == 2:
            count("POST /open311/v2/requests (form)", client.post(f"/open311/v2/requests.{fmt}", data=form))
        else:
            count("POST /open311/v2/requests (JSON)", client.post(f"/open311/v2/requests.{fmt}",
                                                                  data=json.dumps(body),
                                                                  content_type="application/json"))
    run()
    return report


# --- pages: every GET page and map, any query ---------------------------------------------------

#: Every query parameter a page reads (grep ``args.get`` in gridmap/web and gridmap/pages).
PAGE_PARAMS = ("at", "available", "by", "category", "community", "crs", "department", "end", "grid", "incident",
               "kind", "lang", "lat", "level", "limit", "lon", "mode", "name", "next", "overdue", "period", "plan",
               "q", "skill", "start", "status", "view", "courtyard", "a", "b")


def fuzz_pages(app, client, anchors, *, examples=40, seed=None, report=None):
    """Random queries (anchored values half the time) to every GET page outside /api/v1 and Open311."""
    from urllib.parse import quote
    report = report or Report()
    rules = sorted(r.rule for r in app.url_map.iter_rules()
                   if "GET" in r.methods and not r.rule.startswith(("/api/v1", "/open311", "/static")))
    known = [str(v) for values in anchors.path.values() for v in values] + [str(anchors.lon), str(anchors.lat)]
    value = st.one_of(_TEXT, st.sampled_from(known), st.integers().map(str),
                      st.sampled_from(["", "wgs84", "gcj02", "day", "week", "2026-05-03", "9999-12-31", "true",
                                       "38.9,121.6,16", "//evil.example", "%00", "zh_CN", "en"]))
    query = st.dictionaries(st.sampled_from(PAGE_PARAMS), value, max_size=6)
    path_value = st.one_of(st.sampled_from(known), _TEXT.filter(lambda t: "/" not in t and t not in (".", "..")))

    @_settings(examples * len(rules), seed)
    @given(rule=st.sampled_from(rules), query=query, data=st.data())
    def run(rule, query, data):
        import re
        path = re.sub(r"<(?:any\(([^)]*)\):)?[^<>]+>",
                      lambda mt: data.draw(st.sampled_from([v.strip(" '") for v in mt.group(1).split(",")]))
                      if mt.group(1) else quote(data.draw(path_value), safe=""), rule)
        response = client.get(path, query_string=query)
        report.counts[(f"GET {rule}", response.status_code)] += 1
        if response.status_code >= 500:
            report.failures.append((rule, "page", response.status_code, response.get_data(as_text=True)[:300],
                                    f"{path}?{query}"))
    run()
    return report
