"""Notice boards are drawn once per content: the same board twice is one drawing, any change a new one."""
import datetime as dt
from pathlib import Path

import pytest
from conftest import make_app
from sqlalchemy import select, update

from gridmap import demo, plans
from gridmap.maps import boardcache
from gridmap.store import models as m

CHENGZHI = "210213013004"
GRID = f"{CHENGZHI}007"


@pytest.fixture(scope="module")
def board_app(tmp_path_factory, demo_frames):
    app, _ = make_app(tmp_path_factory.mktemp("boards"), "sqlite")
    demo.build(app.extensions["gridmap.store"], frames=demo_frames)
    yield app
    app.extensions["gridmap.store"].dispose()


@pytest.fixture
def drawings(monkeypatch):
    """Replace the renderers by one that records each drawing and prints what it was given."""
    drawn = []

    def fake(fmt):
        def render(data, labels=None):
            drawn.append((fmt, data["code"], data["plan"]))
            return f"{fmt}|{data['plan']}|{data['workers']}|{len(drawn)}".encode()
        return render
    for fmt in boardcache.FORMATS:
        monkeypatch.setitem(boardcache.FORMATS, fmt, fake(fmt))
    return drawn


def _planner(app):
    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    assert client.post("/login", data={"username": "planner", "password": "gridmap-demo"}).status_code == 302
    return client


def test_the_second_request_gets_the_same_bytes_without_drawing_again(board_app, drawings):
    client = _planner(board_app)
    first = client.get(f"/planner/boards/{GRID}.pdf")
    second = client.get(f"/planner/boards/{GRID}.pdf")
    assert first.status_code == second.status_code == 200
    assert first.data == second.data and len(drawings) == 1
    png = client.get(f"/planner/boards/{GRID}.png")  # another format is another board
    assert png.status_code == 200 and png.data != first.data and len(drawings) == 2
    kept = sorted(p.name for p in (Path(board_app.instance_path) / "boards").iterdir())
    assert sorted(n.rsplit(".", 1)[1] for n in kept) == ["pdf", "png"]  # names lead with a content hash


def test_a_new_phone_or_a_newly_published_plan_gives_a_new_board(board_app, drawings):
    client = _planner(board_app)
    store = board_app.extensions["gridmap.store"]
    before = client.get(f"/planner/boards/{GRID}.pdf").data
    n = len(drawings)
    with store.transaction() as s:
        worker_id = s.scalar(select(m.grid_worker_grid.c.worker_id).where(m.grid_worker_grid.c.grid_code == GRID))
        s.execute(update(m.GridWorker).where(m.GridWorker.id == worker_id).values(phone="13900000000"))
    after_phone = client.get(f"/planner/boards/{GRID}.pdf").data
    assert after_phone != before and b"13900000000" in after_phone and len(drawings) == n + 1

    with store.transaction() as s:
        published = s.scalar(select(m.GridPlan.id).where(m.GridPlan.community_code == CHENGZHI,
                                                         m.GridPlan.status == "published"))
        draft = plans.copy_plan(s, published)
        plans.publish(s, draft, limits=plans.Limits.from_config(board_app.config))
        new_id = draft.id
    after_publish = client.get(f"/planner/boards/{GRID}.pdf").data
    assert after_publish.startswith(f"pdf|{new_id}|".encode()) and len(drawings) == n + 2
    files = [p.name for p in (Path(board_app.instance_path) / "boards").glob(f"{GRID}-*.pdf")]
    # the board before the phone changed is gone; the old plan's board stays beside the new plan's
    stems = sorted(f.split(".")[0].rsplit("-", 1)[0] for f in files)
    assert stems == sorted([f"{GRID}-p{published}", f"{GRID}-p{new_id}"])


def test_the_digest_moves_with_the_day_the_language_and_the_format():
    data = {"code": GRID, "plan": 4, "workers": [("王芳", "13800000000")], "branch": "", "geometry": None}
    base = boardcache.digest(data, "pdf", "zh", day=dt.date(2026, 5, 3))
    assert base == boardcache.digest(dict(data), "pdf", "zh", day=dt.date(2026, 5, 3))
    assert base != boardcache.digest(data, "pdf", "zh", day=dt.date(2026, 5, 4))
    assert base != boardcache.digest(data, "pdf", "en", day=dt.date(2026, 5, 3))
    assert base != boardcache.digest(data, "png", "zh", day=dt.date(2026, 5, 3))
    assert base != boardcache.digest({**data, "plan": "4"}, "pdf", "zh", day=dt.date(2026, 5, 3))
