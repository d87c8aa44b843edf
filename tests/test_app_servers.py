"""Two app servers (two gunicorn instances, two ports, two instance folders) on one PostGIS: a publish through one reaches the other; one killed, the other keeps answering."""
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from conftest import lonlat, make_app
from shapely.geometry import Point
from test_plans import CODE, HOUSES, LIMITS, THREE, add_buildings, community, g, grids, staff

from gridmap import accounts, plans

pytestmark = [pytest.mark.slow, pytest.mark.postgis]

HOST = "127.0.0.1"
PASSWORD = "long-enough-pw"


def _free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _serve(url, instance, log):
    """A gunicorn of 2 workers on a free loopback port; (process, base URL). Its own process group."""
    port = _free_port()
    env = {**os.environ, "GRIDMAP_DATABASE_URL": url, "GRIDMAP_INSTANCE_PATH": str(instance),
           # one key for every server: a session signed by one is good at the other (no server state)
           "GRIDMAP_SECRET_KEY": "two-servers-test", "GRIDMAP_MAP_TILES": "none",
           "GRIDMAP_GRID_MAX_HOUSEHOLDS": str(LIMITS.max_households),
           "GRIDMAP_GRID_MIN_HOUSEHOLDS": str(LIMITS.min_households),
           # polled once an hour: only LISTEN/NOTIFY can bring a publish to the other server in time
           "GRIDMAP_SNAPSHOT_CHECK_SECONDS": "3600", "GRIDMAP_RATELIMIT_ENABLED": "0",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    proc = subprocess.Popen([str(gunicorn), "--workers", "2", "--bind", f"{HOST}:{port}", "--timeout", "120",
                             "--log-level", "warning", "gridmap:create_app()"],
                            env=env, cwd=str(instance), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, f"http://{HOST}:{port}"


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _locate(base, point, timeout=30):
    r = requests.get(f"{base}/api/v1/locate", params={"lon": point.x, "lat": point.y}, timeout=timeout)
    assert r.status_code == 200, r.text
    return r.json()


def _wait_listening(base, proc, point, limit_s=180):
    end = time.monotonic() + limit_s
    while True:
        assert proc.poll() is None, "the server exited; see its log"
        try:
            # the first request of each worker loads the snapshot: on a busy machine that is slow
            return _locate(base, point, timeout=limit_s)
        except requests.ConnectionError:
            if time.monotonic() > end:
                raise
            time.sleep(0.2)


def _login(base, username):
    """A requests session signed in through the real form, and its CSRF token for the JSON API."""
    s = requests.Session()
    page = s.get(f"{base}/login", timeout=30).text
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    r = s.post(f"{base}/login", data={"csrf_token": token, "username": username, "password": PASSWORD},
               allow_redirects=False, timeout=30)
    assert r.status_code == 302, r.text[:300]
    return s, s.get(f"{base}/api/v1/csrf", timeout=30).json()["csrf_token"]


@pytest.fixture
def world(tmp_path):
    """One PostGIS schema with a community, its buildings and staff, and a draft of three grids not yet published."""
    app, cleanup = make_app(tmp_path, "postgis")
    store = app.extensions["gridmap.store"]
    with store.transaction() as s:
        community(s)
        add_buildings(s, HOUSES)
        staff(s, [g(1), g(2), g(3)])
        draft = plans.create_plan(s, CODE, grids(*THREE), name="新方案")
        accounts.create_user(s, "planner1", PASSWORD, "planner")
        out = {"draft": draft.id, "version": draft.version}
    out["url"] = store.url.render_as_string(hide_password=False)
    store.dispose()
    yield out
    cleanup()


def test_a_publish_through_one_server_reaches_the_other_and_one_killed_leaves_the_other_answering(world, tmp_path):
    here = lonlat(Point(50, 50))  # inside grid 001 of the draft
    servers = []
    try:
        with open(tmp_path / "servers.log", "w") as log:
            for name in ("a", "b"):
                (tmp_path / name).mkdir()
                servers.append(_serve(world["url"], tmp_path / name, log))
            (proc_a, a), (proc_b, b) = servers
            for proc, base in servers:
                before = _wait_listening(base, proc, here)
                assert before["grid"] is None and before["community"]["code"] == CODE

            session, token = _login(a, "planner1")
            r = session.post(f"{a}/api/v1/plans/{world['draft']}/publish", json={"version": world["version"]},
                             headers={"X-CSRFToken": token}, timeout=60)
            assert r.status_code == 200, r.text
            published = time.monotonic()
            # the other server: every answer from the first with the new plan on carries it (both workers)
            streak, deadline = 0, published + 60
            while streak < 20 and time.monotonic() < deadline:
                got = _locate(b, here)["grid"]
                streak = streak + 1 if got is not None else 0
                if got is not None:
                    assert got["code"] == g(1)
                time.sleep(0.01)
            assert streak == 20, "server b never answered with the published plan"
            print(f"publish through a visible on b after {time.monotonic() - published:.2f} s")
            # signed sessions: the planner signed in at a is signed in at b too
            assert session.get(f"{b}/api/v1/plans/{world['draft']}", timeout=30).json()["status"] == "published"

            # kill -9 server a (master and workers) while b is under a small load
            answers, failures, stop = [], [], threading.Event()

            def load():
                while not stop.is_set():
                    try:
                        answers.append(_locate(b, here, timeout=10)["grid"]["code"])
                    except Exception as err:  # noqa: BLE001 - every failure is counted and shown
                        failures.append(repr(err))
            threads = [threading.Thread(target=load) for _ in range(4)]
            for t in threads:
                t.start()
            time.sleep(0.5)
            os.killpg(proc_a.pid, signal.SIGKILL)
            proc_a.wait(10)
            time.sleep(2.0)
            stop.set()
            for t in threads:
                t.join(30)
            assert failures == [] and len(answers) > 20 and set(answers) == {g(1)}
            with pytest.raises(requests.ConnectionError):
                requests.get(f"{a}/api/v1/locate", params={"lon": here.x, "lat": here.y}, timeout=5)
    finally:
        for proc, _ in servers:
            _stop(proc)
