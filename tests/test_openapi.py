"""The OpenAPI document covers every /api/v1 route, and the GET endpoints keep its promises under generated queries."""
import datetime as dt
import math
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridmap.web import border, openapi

# --- a validator for the subset of JSON Schema the document uses ------------------------------

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def problems(value, schema, doc, path="$"):
    """Why ``value`` does not match ``schema`` (empty when it does): type, enum, required,
    properties, additionalProperties, items, min/max(Items, Length), pattern, anyOf, allOf, $ref."""
    import re
    if "$ref" in schema:
        return problems(value, doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]], doc, path)
    if "anyOf" in schema:
        if all(problems(value, s, doc, path) for s in schema["anyOf"]):
            return [f"{path}: {value!r} matches none of anyOf"]
        return []
    out = [p for s in schema.get("allOf", []) for p in problems(value, s, doc, path)]
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        ok = any(_is(value, t) for t in types)
        if not ok:
            return out + [f"{path}: {value!r} is not {types}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{path}: {value!r} not in {schema['enum']}")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{path}: {value} < {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{path}: {value} > {schema['maximum']}")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append(f"{path}: longer than {schema['maxLength']}")
    if isinstance(value, dict):
        out += [f"{path}: {k} is required" for k in schema.get("required", []) if k not in value]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                out += problems(v, props[k], doc, f"{path}.{k}")
            elif extra is False:
                out.append(f"{path}: unexpected {k}")
            elif isinstance(extra, dict):
                out += problems(v, extra, doc, f"{path}.{k}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{path}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, v in enumerate(value):
                out += problems(v, schema["items"], doc, f"{path}[{i}]")
    return out


def _is(value, t):
    if t == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if t == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    return isinstance(value, _TYPES[t])


# --- coverage ---------------------------------------------------------------------------------

def test_every_api_v1_rule_and_method_is_documented(demo_app):
    doc = openapi.document()
    missing = []
    for rule in demo_app.url_map.iter_rules():
        if not rule.rule.startswith(openapi.PREFIX + "/"):
            continue
        path = openapi.openapi_path(rule.rule)
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            if method.lower() not in doc["paths"].get(path, {}):
                missing.append(f"{method} {rule.rule}")
    assert missing == []


def test_the_document_documents_no_route_the_app_lacks(demo_app):
    served = {openapi.openapi_path(r.rule) for r in demo_app.url_map.iter_rules()
              if r.rule.startswith(openapi.PREFIX + "/")}
    assert set(openapi.document()["paths"]) - served == set()


def test_the_app_serves_the_document_as_openapi_3_1(demo_client):
    r = demo_client.get("/api/v1/openapi.json")
    doc = r.get_json()
    assert r.status_code == 200
    assert doc["openapi"] == "3.1.0" and doc["servers"] == [{"url": "/api/v1"}]
    assert doc["paths"]["/nearest"]["get"]["parameters"][0]["name"] == "lon"
    by_name = {p["name"]: p["schema"] for p in doc["paths"]["/nearest"]["get"]["parameters"]}
    assert by_name["k"] == {"type": "integer", "minimum": 1, "maximum": 50, "default": 5}
    assert by_name["by"]["enum"] == ["line", "road"]


def test_every_documented_ref_resolves_and_every_path_parameter_is_declared():
    doc = openapi.document()
    schemas = doc["components"]["schemas"]
    refs = []

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.append(node["$ref"].rsplit("/", 1)[1])
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)
    walk(doc)
    assert sorted(set(refs) - set(schemas)) == []
    import re
    for path, ops in doc["paths"].items():
        wanted = set(re.findall(r"{(\w+)}", path))
        for method, op in ops.items():
            declared = {p["name"] for p in op["parameters"] if p["in"] == "path"}
            assert declared == wanted, f"{method.upper()} {path}"


def test_the_validator_rejects_what_it_should():
    doc = openapi.document()
    err = {"$ref": "#/components/schemas/Error"}
    assert problems({"error": "x", "message": "y"}, err, doc) == []
    assert problems({"error": "x"}, err, doc) == ["$: message is required"]
    assert problems({"k": 0}, {"properties": {"k": {"type": "integer", "minimum": 1}}}, doc) == ["$.k: 0 < 1"]
    assert problems(None, {"anyOf": [{"type": "string"}, {"type": "null"}]}, doc) == []
    assert problems(True, {"type": "integer"}, doc) == ["$: True is not ['integer']"]


# --- property tests over the GET endpoints with query parameters ---------------------------

# A point inside 城志社区, so valid queries find something; generated points roam the globe.
CHENGZHI = (121.735116, 39.061880)


def _valid(schema):
    """Text values a parser must accept for ``schema``."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    t = schema.get("type")
    if t == "integer":
        return st.integers(schema.get("minimum", -10**6), schema.get("maximum", 10**6)).map(str)
    if t == "number":
        lo, hi = schema.get("minimum", -1e6), schema.get("maximum", 1e6)
        return st.floats(lo, hi, allow_nan=False).map(repr)
    if schema.get("format") == "date":  # the document's pattern bounds the years; hypothesis reads no pattern here
        return st.dates(dt.date(1970, 1, 1), dt.date(2099, 12, 31)).map(lambda d: d.strftime("%Y-%m-%d"))
    if "pattern" in schema and schema["pattern"] != border.TEXT_PATTERN:
        return st.from_regex(schema["pattern"], fullmatch=True)
    # free text: anything but the control characters and lone surrogates the document's pattern excludes
    return st.text(st.characters(exclude_categories=("Cc", "Cs")), min_size=schema.get("minLength", 0),
                   max_size=min(schema.get("maxLength", 40), 40)).filter(
        lambda s: len(s.strip()) >= schema.get("minLength", 0))


def _invalid(schema):
    """Text values a parser must refuse for ``schema`` (None when any text is fine)."""
    t = schema.get("type")
    if "enum" in schema:
        return st.text(min_size=1, max_size=12).filter(
            lambda s: s.strip() and s.strip().lower().replace("-", "") not in schema["enum"] and s.strip() not in schema["enum"])
    if t in ("integer", "number"):
        lo, hi = schema.get("minimum"), schema.get("maximum")
        out = [st.sampled_from(["abc", "1e", "--1", "nan" if t == "number" else "1.5", "inf", "0x10"])]
        if lo is not None:
            out.append(st.integers(-10**6, math.ceil(lo) - 1).map(str))
        if hi is not None:
            out.append(st.integers(math.floor(hi) + 1, 10**7).map(str))
        return st.one_of(out)
    if schema.get("format") == "date":
        return st.sampled_from(["2026-13-01", "2026-02-30", "03/05/2026", "yesterday", "2026-5-3", "9999-12-31",
                                "0001-01-01", "1969-12-31"])
    if schema.get("pattern") == border.TEXT_PATTERN:  # text with a character no field holds, or too long
        controls = st.tuples(st.text(max_size=8), st.sampled_from("\x00\x01\x1b\x7f"), st.text(max_size=8))
        if "maxLength" not in schema:
            return controls.map("".join)
        return st.one_of(controls.map("".join), st.text(min_size=schema["maxLength"] + 1, max_size=schema["maxLength"] + 5)
                         .filter(lambda s: len(s.strip()) > schema["maxLength"]))
    if "pattern" in schema:
        return st.text(min_size=1, max_size=20).filter(lambda s: s.strip() and not s.strip().isdigit())
    if "maxLength" in schema:
        return st.text(min_size=schema["maxLength"] + 1, max_size=schema["maxLength"] + 5).filter(
            lambda s: len(s.strip()) > schema["maxLength"])
    return None


def _queries(params, bad):
    """Query dicts: all valid, or with exactly one parameter (named in the result) made invalid."""
    valid = {p["name"]: _valid(p["schema"]) for p in params}
    required = {p["name"] for p in params if p["required"]}

    @st.composite
    def build(draw):
        q = {}
        for p in params:
            if p["required"] or draw(st.booleans()):
                q[p["name"]] = draw(valid[p["name"]])
        if "lon" in q and draw(st.booleans()):  # half the points where the demo has grids
            q.pop("crs", None)
            q["lon"], q["lat"] = repr(CHENGZHI[0]), repr(CHENGZHI[1])
        target = None
        if bad:
            candidates = [p for p in params if _invalid(p["schema"]) is not None]
            target = draw(st.sampled_from(candidates))
            q[target["name"]] = draw(_invalid(target["schema"]))
            target = target["name"]
        assert required <= set(q)
        return q, target
    return build()


def _get_ops(doc):
    for path, ops in doc["paths"].items():
        op = ops.get("get")
        if op and op["parameters"] and not any(p["in"] == "path" for p in op["parameters"]) \
                and path not in ("/crosswalk", "/plans", "/dashboard"):  # dashboard: level and code go together
            yield path, op


DOC = openapi.document()
GET_OPS = dict(_get_ops(DOC))


@pytest.fixture(scope="module")
def dispatcher_client(demo_app):
    demo_app.config["WTF_CSRF_ENABLED"] = False
    client = demo_app.test_client()
    assert client.post("/login", data={"username": "dispatcher", "password": "gridmap-demo"}).status_code == 302
    yield client
    demo_app.config["WTF_CSRF_ENABLED"] = True


def _call(client, path, query):
    r = client.get(openapi.PREFIX + path + "?" + urlencode(query), headers={"Accept": "application/json"})
    assert r.status_code != 500, (path, query, r.get_json())
    assert r.is_json, (path, query)
    return r.status_code, r.get_json()


def test_the_property_tests_cover_the_query_endpoints():
    assert sorted(GET_OPS) == ["/addresses", "/geocode", "/grids", "/incidents", "/locate", "/nearest", "/stats"]


@pytest.mark.parametrize("path", sorted(GET_OPS))
def test_valid_queries_never_fail_and_answer_in_the_documented_shape(path, dispatcher_client):
    op = GET_OPS[path]

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
    @given(_queries(op["parameters"], bad=False))
    def check(case):
        query, _ = case
        status, body = _call(dispatcher_client, path, query)
        if status == 200:
            assert problems(body, op["responses"]["200"]["content"]["application/json"]["schema"], DOC) == [], query
        else:
            # a valid query may still name nothing: a point in no community, an unknown community
            assert str(status) in op["responses"] and status == 404, (status, query, body)
            assert problems(body, {"$ref": "#/components/schemas/Error"}, DOC) == []
    check()


@pytest.mark.parametrize("path", sorted(GET_OPS))
def test_an_invalid_parameter_gets_a_400_that_names_it(path, dispatcher_client):
    op = GET_OPS[path]

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
    @given(_queries(op["parameters"], bad=True))
    def check(case):
        query, bad = case
        status, body = _call(dispatcher_client, path, query)
        assert status == 400, (query, bad, body)
        assert problems(body, {"$ref": "#/components/schemas/Error"}, DOC) == []
        assert bad in body["message"], (bad, body["message"])
    check()


def test_nearest_far_from_every_community_is_a_404_that_says_so(demo_client):
    r = demo_client.get("/api/v1/nearest?lon=23.0&lat=0.0")
    assert r.status_code == 404 and "too far from the area" in r.get_json()["message"]
