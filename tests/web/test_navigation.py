"""Every role reaches its page: where a sign-in lands, the header's links as the permission table allows, a translated refusal."""
import re
from html.parser import HTMLParser

import pytest

from conftest import DEMO_PASSWORD
from gridmap import access
from gridmap.web import nav

_USERS = {"admin": "admin", "planner": "planner", "dispatcher": "dispatcher", "grid_worker": "worker"}
# The landing pages the issue asks for, spelled out: a change of nav.HOME must change this on purpose.
_LANDS = {"admin": "/dispatch/", "planner": "/planner", "dispatcher": "/dispatch/", "grid_worker": "/worker/"}


@pytest.fixture
def fresh(demo_app):
    """A client with CSRF off for the sign-in, restored afterwards (demo_app is shared)."""
    demo_app.config["WTF_CSRF_ENABLED"] = False
    yield demo_app.test_client
    demo_app.config["WTF_CSRF_ENABLED"] = True


def _sign_in(make_client, role, query=""):
    client = make_client()
    r = client.post("/login" + query, data={"username": _USERS[role], "password": DEMO_PASSWORD})
    assert r.status_code == 302, r.get_data(as_text=True)
    return client, r.headers["Location"]


@pytest.mark.parametrize("role", sorted(_USERS))
def test_a_sign_in_lands_on_the_page_of_the_role(fresh, role):
    client, location = _sign_in(fresh, role)
    assert location == _LANDS[role]
    assert client.get(location).status_code == 200  # a page the role may open


@pytest.mark.parametrize("role", sorted(_USERS))
def test_a_safe_next_wins_and_an_unsafe_one_falls_back_to_the_role_page(fresh, role):
    assert _sign_in(fresh, role, "?next=/planner/coverage%3Fname%3D城志")[1].startswith("/planner/coverage?name=")
    assert _sign_in(fresh, role, "?next=//evil.example/")[1] == _LANDS[role]
    assert _sign_in(fresh, role, "?next=/%09/evil.example")[1] == _LANDS[role]


def test_every_landing_page_is_one_the_role_may_open(demo_app):
    with demo_app.test_request_context():
        for role in access.ROLES:
            endpoint = nav.home(role)
            action = nav.required_action(endpoint)
            assert action is None or access.can(role, action), role


class _Links(HTMLParser):
    """The header's page links: (href, aria-current) in order."""

    def __init__(self):
        super().__init__()
        self.links, self._in = [], False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "ul" and attrs.get("class") == "page-links":
            self._in = True
        elif tag == "a" and self._in:
            self.links.append((attrs["href"], attrs.get("aria-current")))

    def handle_endtag(self, tag):
        if tag == "ul":
            self._in = False


def _header(html):
    parser = _Links()
    parser.feed(html)
    return parser.links


@pytest.mark.parametrize("role", sorted(_USERS))
def test_the_header_offers_exactly_the_pages_the_permission_table_lets_the_role_open(demo_app, fresh, role):
    client, location = _sign_in(fresh, role)
    links = _header(client.get(location).get_data(as_text=True))
    with demo_app.test_request_context():
        # asked of each page's own view, as requires() asks it: not a list per role
        expected = []
        for endpoint, _label in nav.PAGES:
            action = getattr(demo_app.view_functions[endpoint], "required_action", None)
            if action is None or access.can(role, action):
                expected.append(demo_app.url_map.bind("localhost").build(endpoint))
    assert [href for href, _ in links] == expected
    assert [href for href, current in links if current == "page"] == [location]
    # the roles differ as the table says
    hrefs = {href for href, _ in links}
    assert ("/planner" in hrefs) == access.can(role, "plan.edit")
    assert ("/dispatch/" in hrefs) == access.can(role, "dispatch.use")
    assert ("/planner/coverage" in hrefs) == access.can(role, "coverage.read")


def test_the_public_sees_no_staff_links(demo_client):
    assert _header(demo_client.get("/").get_data(as_text=True)) == []


def test_the_refusal_page_names_the_roles_that_may_in_chinese_and_english(fresh):
    client, _ = _sign_in(fresh, "planner")
    zh = client.get("/dispatch/?lang=zh_CN")
    assert zh.status_code == 403
    text = zh.get_data(as_text=True)
    roles = re.findall(r"<li>([^<]+)</li>", text.split('class="allowed-roles"')[1].split("</ul>")[0])
    assert roles == ["管理员", "调度员"]
    assert "您当前登录的角色：规划员。" in text and "请联系管理员" in text
    assert "Role 'planner'" not in text and "['" not in text and "may not" not in text

    en = client.get("/dispatch/?lang=en")
    assert en.status_code == 403
    text = en.get_data(as_text=True)
    roles = re.findall(r"<li>([^<]+)</li>", text.split('class="allowed-roles"')[1].split("</ul>")[0])
    assert roles == ["admin", "dispatcher"]
    assert "You are signed in as: planner." in text and "Ask an admin" in text
    assert "管理员" not in text and "['" not in text
    assert 'href="/planner"' in text  # back to the planner's own page


def test_api_callers_keep_the_refusal_code_and_details(fresh):
    client, _ = _sign_in(fresh, "planner")
    r = client.get("/dispatch/", headers={"Accept": "application/json"})
    assert r.status_code == 403
    body = r.get_json()
    assert body["error"] == "forbidden" and body["details"]["allowed_roles"] == ["admin", "dispatcher"]
