"""``GET /``: plain text for programs, the status page for browsers, and who may see it.

The page is read back as its tables (header → cell text), so the assertions are about what a
person sees, not about markup.  The headless-Chromium test renders it for real and keeps the
screenshot under ``test-artifacts/`` (its path is printed).
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fakeengine import FakeEngines
from serving import serve_app
from starlette.testclient import TestClient

from ggufgen import write_tiny_gguf
from llamita.server.api import build_app
from llamita.server.api.status_page import ModelRow, StatusView, prefers_html, render_page
from llamita.server.model.create import import_gguf
from llamita.server.runtime.metrics import AcceptanceRow
from llamita.server.runtime.runners import Runners
from llamita.server.store.blobs import Store

TINY = "tiny:latest"  # as /api/ps names it
KEY = "admin-key-0123"
BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
HTML = {"Accept": BROWSER}
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


class Page(HTMLParser):
    """The text of a page and its tables, each a list of {heading: cell text} rows."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.tables: list[list[dict[str, str]]] = []
        self.text: list[str] = []
        self._heads: list[str] = []
        self._row: list[str] | None = None
        self._cell: list[str] | None = None
        self.feed(source)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
            self._heads = []
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            if not self._heads:
                self._heads = self._row
            else:
                self.tables[-1].append(dict(zip(self._heads, self._row, strict=True)))
            self._row = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def row(self, column: str, value: str, table_with: str = "") -> dict[str, str]:
        """The one row whose ``column`` reads ``value`` (in the tables that have ``table_with``)."""
        rows = [row for table in self.tables for row in table if row.get(column) == value]
        (found,) = [row for row in rows if not table_with or table_with in row]
        return found


def page_of(response: httpx.Response) -> Page:
    assert response.headers["content-type"] == "text/html; charset=utf-8", response.text
    return Page(response.text)


@pytest.fixture
def tiny_store(store: Store, tmp_path: Path) -> Store:
    import_gguf(store, TINY, write_tiny_gguf(tmp_path / "tiny.gguf"))
    return store


def client_for(store: Store, engines: FakeEngines | None = None) -> TestClient:
    app = build_app(store, listen_host="127.0.0.1", runners=Runners(engines or FakeEngines()))
    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture
def client(store: Store) -> Iterator[TestClient]:
    with client_for(store) as c:
        yield c


# ---- plain for programs, HTML for browsers ---------------------------------------------------------


@pytest.mark.parametrize(
    "accept",
    [
        None,  # health checks, Ollama clients
        "*/*",  # curl
        "application/json",
        "text/plain, text/html",  # a tie goes to the type listed first
        "text/html;q=0.5, text/plain",
        "text/html;q=0",
    ],
)
def test_programs_get_plain_text(client: TestClient, accept: str | None) -> None:
    headers = {"Accept": accept} if accept is not None else {}
    r = client.get("/", headers=headers)
    assert (r.status_code, r.text) == (200, "Ollama is running")
    assert r.headers["content-type"].startswith("text/plain")


def test_head_is_unchanged_for_browsers_too(client: TestClient) -> None:
    r = client.head("/", headers=HTML)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize(
    ("accept", "html"),
    [
        (BROWSER, True),
        ("text/html", True),
        ("application/xhtml+xml, */*;q=0.1", True),
        ("text/html, */*", True),
        ("*/*", False),
        ("", False),
        ("text/plain, text/html", False),
        ("text/html;q=bogus, text/plain;q=0.1", False),
    ],
)
def test_prefers_html(accept: str, html: bool) -> None:
    assert prefers_html(accept) is html


def test_browsers_get_a_self_contained_page(client: TestClient) -> None:
    r = client.get("/", headers=HTML)
    assert r.status_code == 200
    page = page_of(r)
    text = " ".join(page.text)
    assert "llamita is running" in text and "No model is loaded." in text
    assert "No usage yet." in text
    assert '<meta http-equiv="refresh"' in r.text
    # No external assets, no script: inline CSS only, and the browser is told so.
    assert "<script" not in r.text and "src=" not in r.text and "http://" not in r.text.split("</head>")[1]
    assert "default-src 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store" and "Accept" in r.headers["vary"]


# ---- escaping -----------------------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script>&amp;'


def test_every_value_is_escaped() -> None:
    model = ModelRow(HOSTILE, 1, 1, 2048, "in 1m 0s", "", False, HOSTILE, 1, 0, 10, 100)
    view = StatusView(
        models=[model],
        acceptance=[AcceptanceRow(HOSTILE, HOSTILE, shown=4, accepted=1)],
        usage=[{"key": HOSTILE, "model": HOSTILE, "requests": 3}],
    )
    source = render_page(view)
    assert "<script" not in source and "&lt;script&gt;" in source
    assert "&amp;amp;" in source  # an entity in a name is shown as typed, not decoded
    page = Page(source)
    assert page.row("Model", HOSTILE, "Running")["Running"] == "1"  # the text a person sees is the raw name
    assert page.row("key", HOSTILE)["requests"] == "3"


def test_a_reported_language_is_escaped_on_the_page(client: TestClient) -> None:
    event = {"model": "m", "language": HOSTILE, "shown": 2, "accepted": 1}
    assert client.post("/api/llamita/completion-events", json=event).status_code == 204
    r = client.get("/", headers=HTML)
    assert "<script" not in r.text
    row = page_of(r).row("Language", HOSTILE.lower())
    assert (row["Shown"], row["Accepted"], row["Acceptance"]) == ("2", "1", "50.0%")


# ---- what the page shows -------------------------------------------------------------------------


def test_a_loaded_model_and_its_running_request_are_shown(tiny_store: Store) -> None:
    engines = FakeEngines(hang_after=1)  # the request holds its sequence until the client leaves
    app = build_app(tiny_store, listen_host="127.0.0.1", runners=Runners(engines))
    body = {"model": TINY, "prompt": "x", "raw": True}
    with (
        serve_app(app) as url,
        httpx.Client(base_url=url, timeout=60) as http,
        http.stream("POST", "/api/generate", json=body) as stream,
    ):
        lines = stream.iter_lines()  # kept: a dropped line iterator closes the connection
        assert json.loads(next(lines))["response"] == "Hello"
        page = page_of(http.get("/", headers=HTML))
        (ps,) = http.get("/api/ps").json()["models"]
        row = page.row("Model", TINY)
        assert (row["Running"], row["Queued"], row["Healthy"]) == ("1", "0", "yes")
        assert row["Context"] == f"{ps['context_length']:,}" and row["Expires"] == "in use"
        assert "Running 1" in " ".join(" ".join(page.text).split())  # the summary card


def test_usage_per_key_is_shown(tiny_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"root {KEY} admin\nbob bob-key-0123 user\n")
    monkeypatch.setenv("LLAMITA_API_KEYS_FILE", str(keys))
    with client_for(tiny_store) as c:
        body = {"model": TINY, "prompt": "x", "raw": True, "stream": False}
        for _ in range(2):
            r = c.post("/api/generate", json=body, headers={"Authorization": "Bearer bob-key-0123"})
            assert r.status_code == 200, r.text
        row = page_of(c.get("/", headers=basic("root", KEY))).row("key", "bob")
        assert (row["requests"], row["generated tokens"]) == ("2", "4")  # "Hello", " world" twice


def test_without_a_usage_recorder_the_page_says_so(client: TestClient) -> None:
    del client.app.state.usage
    assert "usage not recorded" in client.get("/", headers=HTML).text


def test_usage_rows_come_from_the_usage_recorder(client: TestClient) -> None:
    class Usage:  # what the recorder (runtime/usage.py) offers: totals() -> rows of column -> value
        def totals(self) -> list[dict[str, object]]:
            row = {"key": "alice", "model": "smollm2:135m", "requests": 2, "generated_tokens": 1234}
            return [{**row, "engine_seconds": 1.5}]

    client.app.state.usage = Usage()
    row = page_of(client.get("/", headers=HTML)).row("key", "alice")
    assert (row["requests"], row["generated tokens"], row["engine seconds"]) == ("2", "1,234", "1.50")


def test_usage_rows_of_an_unknown_shape_are_not_rendered(client: TestClient) -> None:
    class Odd:
        def totals(self) -> dict[str, object]:
            return {"alice": 3}

    client.app.state.usage = Odd()
    r = client.get("/", headers=HTML)
    assert r.status_code == 200 and "usage unavailable: usage totals are not a list of rows" in r.text


def test_a_failing_usage_recorder_does_not_take_the_page_down(client: TestClient) -> None:
    class Broken:
        def totals(self) -> list[dict[str, object]]:
            raise OSError("database is locked")

    client.app.state.usage = Broken()
    r = client.get("/", headers=HTML)
    assert r.status_code == 200 and "usage unavailable: OSError: database is locked" in r.text


# ---- API keys: the page needs an admin key --------------------------------------------------------


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {**HTML, "Authorization": f"Basic {token}"}


@pytest.fixture
def keyed(tiny_store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("LLAMITA_API_KEYS", KEY)
    with client_for(tiny_store) as c:
        body = {"model": TINY, "prompt": "x", "raw": True, "stream": False}  # a model is loaded
        assert (
            c.post("/api/generate", json=body, headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        )
        yield c


def test_with_keys_programs_still_get_plain_text(keyed: TestClient) -> None:
    assert keyed.get("/").text == "Ollama is running"
    assert keyed.head("/").status_code == 200


def test_with_keys_an_anonymous_browser_sees_only_a_sign_in_page(keyed: TestClient) -> None:
    for headers in (HTML, {**HTML, "Authorization": "Bearer wrong"}, basic("me", "wrong")):
        r = keyed.get("/", headers=headers)
        assert r.status_code == 200 and "Sign in" in r.text
        assert TINY not in r.text and "Loaded models" not in r.text and "Usage" not in r.text


def test_signin_asks_the_browser_for_basic_credentials(keyed: TestClient) -> None:
    for headers in (HTML, basic("me", "wrong")):
        r = keyed.get("/?signin=1", headers=headers)
        assert r.status_code == 401
        assert r.headers["www-authenticate"].startswith('Basic realm="llamita"')
        assert TINY not in r.text


@pytest.mark.parametrize(
    "headers",
    [
        basic("anyone", KEY),  # what the browser sends after the prompt
        basic(KEY, ""),  # the key typed as the user name
        {**HTML, "Authorization": f"Bearer {KEY}"},
        {**HTML, "x-api-key": KEY},
    ],
    ids=["basic-password", "basic-user", "bearer", "x-api-key"],
)
def test_an_admin_key_shows_the_whole_page(keyed: TestClient, headers: dict[str, str]) -> None:
    for path in ("/", "/?signin=1"):
        r = keyed.get(path, headers=headers)
        assert r.status_code == 200
        row = page_of(r).row("Model", TINY)
        assert row["Healthy"] == "yes" and row["Expires"].startswith("in ") and row["Expires"] != "in use"


def test_a_user_key_is_not_enough(tiny_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys = tmp_path / "keys"
    keys.write_text(f"root {KEY} admin\nbob bob-key-0123 user\n")
    monkeypatch.setenv("LLAMITA_API_KEYS_FILE", str(keys))
    with client_for(tiny_store) as c:
        r = c.get("/", headers=basic("bob", "bob-key-0123"))
        assert r.status_code == 200 and "not an admin key" in r.text and "Loaded models" not in r.text
        assert c.get("/?signin=1", headers=basic("bob", "bob-key-0123")).status_code == 401
        assert c.get("/", headers=basic("root", KEY)).status_code == 200


# ---- a real browser -----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium(url: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [
        CHROMIUM or "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        f"--user-data-dir={profile}",
        "--window-size=1200,900",
        *args,
        url,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=True)


@pytest.mark.model
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_the_page_renders_in_headless_chromium(server, tmp_path: Path) -> None:
    body = {"model": "smollm2:135m", "prompt": "Hi", "stream": False, "options": {"num_predict": 2}}
    assert httpx.post(server.url + "/api/generate", json=body, timeout=180).status_code == 200
    event = {"model": "smollm2:135m", "language": "python", "shown": 8, "accepted": 2, "accepted_chars": 40}
    assert httpx.post(server.url + "/api/llamita/completion-events", json=event).status_code == 204

    dom = chromium(server.url + "/", tmp_path / "profile", "--dump-dom").stdout
    page = Page(dom)
    assert page.row("Model", "smollm2:135m", "Healthy")["Healthy"] == "yes"
    assert page.row("Language", "python")["Acceptance"] == "25.0%"

    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "status-page.png"
    shot.unlink(missing_ok=True)
    chromium(server.url + "/", tmp_path / "profile", f"--screenshot={shot}")
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    print(f"status page screenshot: {shot}")


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run installs it)")
def test_with_keys_chromium_sees_the_sign_in_page(
    tiny_store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLAMITA_API_KEYS", KEY)
    app = build_app(tiny_store, listen_host="127.0.0.1", runners=Runners(FakeEngines()))
    with serve_app(app) as url:
        body = {"model": TINY, "prompt": "x", "raw": True, "stream": False}
        httpx.post(
            url + "/api/generate", json=body, headers={"Authorization": f"Bearer {KEY}"}
        ).raise_for_status()
        dom = chromium(url + "/", tmp_path / "profile", "--dump-dom").stdout
        assert "Sign in" in dom and TINY not in dom
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / "status-page-sign-in.png"
        shot.unlink(missing_ok=True)
        chromium(url + "/", tmp_path / "profile", f"--screenshot={shot}")
        assert shot.stat().st_size > 1_000
        print(f"sign-in page screenshot: {shot}")
