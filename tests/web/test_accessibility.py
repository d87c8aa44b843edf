"""Every page, at desktop and phone size, through axe-core in real Chromium: no serious or critical
violation (WCAG 2 A/AA rules), maps included (axe looks into same-origin frames)."""
import pytest

from conftest import DEMO_PASSWORD, a_resident_report

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
#: (who signs in, page): each role's pages as it reaches them; None is the public.
PAGES = [
    (None, "/"), (None, "/login"), (None, "/?lang=en"),
    ("planner", "/planner"), ("planner", "/planner/coverage?name=210213013004"),
    ("dispatcher", "/dispatch/"), ("dispatcher", "/dispatch/stats"), ("dispatcher", "/dashboard"),
    ("dispatcher", "/planner"),  # the refusal page is a page too
    ("worker", "/worker/"), ("admin", "/admin/imports"), ("dispatcher", "/city"),
    (None, "/reports/{token}"),  # a resident's status page: the token of a report made for the run
]


def _axe():
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        from conftest import skip_or_fail
        skip_or_fail("axe-playwright-python is not installed (pip install -e '.[test]')")
    return Axe()


@pytest.fixture(scope="module")
def report_token(demo_app, live_server):
    with a_resident_report(demo_app) as token:
        yield token


@pytest.fixture(scope="module")
def contexts(browser, live_server):
    """One signed-in browser context per role and size (signing in once each)."""
    made = {}

    def get(role, size):
        if (role, size) not in made:
            context = browser.new_context(viewport=SIZES[size], locale="zh-CN")
            context.route("**/*", lambda route: route.continue_() if route.request.url.startswith(live_server)
                          or route.request.url.startswith("data:") else route.abort())
            if role:
                page = context.new_page()
                page.goto(f"{live_server}/login")
                page.fill("#username", role)
                page.fill("#password", DEMO_PASSWORD)
                page.locator("button[type=submit]").click()
                page.wait_for_load_state("networkidle")
                page.close()
            made[role, size] = context
        return made[role, size]
    yield get
    for c in made.values():
        c.close()


@pytest.mark.parametrize("size", sorted(SIZES))
@pytest.mark.parametrize("role,path", PAGES, ids=[f"{r or 'public'}:{p}" for r, p in PAGES])
def test_no_serious_or_critical_accessibility_violation(contexts, live_server, report_token, role, path, size):
    path = path.format(token=report_token)
    page = contexts(role, size).new_page()
    try:
        page.goto(live_server + path, timeout=90000)  # the first page of a fresh demo builds its snapshot
        page.wait_for_load_state("networkidle")
        for frame in page.frames[1:]:  # the maps: wait until each has drawn
            frame.wait_for_load_state("load")
        # violations only: collecting the passes and the incomplete ones doubles the run on the map pages
        results = _axe().run(page, options={"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a",
                                                                                     "wcag21aa"]},
                                            "resultTypes": ["violations"]})
        bad = [v for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
        assert not bad, "\n".join(
            f"{v['id']} ({v['impact']}): {v['help']} — {len(v['nodes'])} node(s), e.g. "
            f"{v['nodes'][0]['target']} {v['nodes'][0].get('failureSummary', '')[:200]}" for v in bad)
    finally:
        page.close()
