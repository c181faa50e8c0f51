"""`skiller view`: a static explorer site over a real workspace, checked in headless chromium."""
from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from skiller.rollout.base import message_text
from skiller.view import build, collect, pages
from skiller.workspace import Workspace
from tests.conftest import REPO, cli, make_workspace
from tests.skiller.browser import artifacts_dir, chromium, console_errors, require_browser, screenshot

SMALL = ["--set", "steps.s01.num_domains=2", "--set", "steps.s01.min_sectors=2",
         "--set", "steps.s06.rows_per_table=20", "--set", "steps.s06.people=12",
         "--set", "steps.s14.templates_per_domain=6", "--set", "fusion.num_combinations=1"]
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)> & \"quoted\""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Oracle rollouts everywhere, then a noop campaign on one domain: its DB tasks fail."""
    root = make_workspace(tmp_path_factory.mktemp("view") / "ws")
    assert cli("run", "-w", str(root), *SMALL) == 0
    domain = sorted(p.stem for p in (root / "outputs" / "tool_lists").glob("*.json"))[0]
    assert cli("rollout", "-w", str(root), *SMALL, "--agent", "noop", "--domain", domain) == 0
    assert cli("evaluate", "-w", str(root), *SMALL) == 0
    return root


@pytest.fixture(scope="module")
def site(workspace) -> Path:
    out = workspace.parent / "site"
    assert cli("view", "-w", str(workspace), "--out", str(out)) == 0
    return out


def _store(workspace: Path):
    return Workspace.open(workspace, []).store


def test_site_has_every_page_kind_and_is_byte_identical_across_builds(workspace, site, tmp_path):
    data = collect(_store(workspace))
    assert any(r.reward < 1.0 for r in data.results) and any(r.reward == 1.0 for r in data.results)
    names = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    assert {"index.html", "evaluations.html"} <= names
    assert {f"env/{e.name}.html" for e in data.environments} <= names
    assert {f"transcript/{t.id}.html" for t in data.transcripts} <= names
    assert {f"task/{t.task.id}.html" for t in data.tasks if t.task} <= names
    again = tmp_path / "again"
    assert cli("view", "-w", str(workspace), "--out", str(again)) == 0
    for name in sorted(names):
        assert (site / name).read_bytes() == (again / name).read_bytes(), name


def test_site_is_built_from_the_log_not_from_outputs(workspace, tmp_path):
    moved = workspace.parent / "outputs-away"
    (workspace / "outputs").rename(moved)
    try:
        build(_store(workspace), tmp_path / "site")
    finally:
        moved.rename(workspace / "outputs")
    assert (tmp_path / "site" / "index.html").is_file()


def test_a_rebuild_removes_pages_that_are_gone_and_nothing_else(workspace, tmp_path):
    out = tmp_path / "site"
    build(_store(workspace), out)
    stale = out / "transcript" / "no-longer-there.html"
    stale.write_text("old")
    (out / ".skiller-view").write_text((out / ".skiller-view").read_text() + "transcript/no-longer-there.html\n")
    mine = out / "notes.txt"
    mine.write_text("the user's own file")
    build(_store(workspace), out)
    assert not stale.exists() and mine.read_text() == "the user's own file"


def _hostile_site(workspace: Path, out: Path) -> tuple[Path, str]:
    """The real data with untrusted text injected into names, a tool, a message and an evaluation."""
    data = collect(_store(workspace))
    t = data.transcripts[0]
    messages = [*t.messages, {"role": "user", "content": HOSTILE}]
    tools = [tool.model_copy(update={"description": HOSTILE, "name": "x\"><b>bold</b>"}) for tool in data.environments[0].tools]
    env = data.environments[0].model_copy(update={"tools": tools, "policy": f"# {HOSTILE}\n- **{HOSTILE}** `{HOSTILE}`"})
    result = next(r for r in data.results if r.transcript_id == t.id)
    result = result.model_copy(update={"reason": HOSTILE})
    data = data.model_copy(update={
        "transcripts": [t.model_copy(update={"messages": messages}), *data.transcripts[1:]],
        "environments": [env, *data.environments[1:]],
        "results": [result if r.transcript_id == t.id else r for r in data.results]})
    for rel, content in pages(data).items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_bytes(content)
    return out / "transcript" / f"{t.id}.html", env.name


def test_untrusted_text_is_escaped_everywhere(workspace, tmp_path):
    transcript, env = _hostile_site(workspace, tmp_path)
    for page in tmp_path.rglob("*.html"):
        html = page.read_text()
        assert "<script" not in html and "<img" not in html and "<b>bold" not in html, page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in transcript.read_text()
    assert "&lt;script&gt;" in (tmp_path / "env" / f"{env}.html").read_text()


def _text(driver) -> str:
    return " ".join(driver.find_element("tag name", "body").text.split())


def _open(driver, url: str, shots: Path | None = None, name: str = "") -> str:
    driver.get(url)
    assert console_errors(driver) == [], url
    if shots is not None:
        print(f"screenshot: {screenshot(driver, shots / f'{name}.png')}")
    return _text(driver)


def test_browser_follows_a_failed_evaluation_to_its_transcript(workspace, site):
    require_browser()
    from selenium.webdriver.common.by import By
    data = collect(_store(workspace))
    transcripts = {t.id: t for t in data.transcripts}
    shots = artifacts_dir("view")
    print(f"screenshots of each page kind in {shots}")
    with chromium() as driver:
        index = _open(driver, site.joinpath("index.html").as_uri(), shots, "index")
        assert "Environments" in index and "Data quality" in index
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg rect")) > 0  # the charts are drawn
        env = data.environments[0].name
        driver.find_element(By.LINK_TEXT, env).click()
        page = _open(driver, driver.current_url, shots, "environment")
        assert "Tools" in page and "Database" in page and "Tool graph" in page
        assert driver.find_elements(By.CSS_SELECTOR, "span.tag.read") and driver.find_elements(By.CSS_SELECTOR, "span.tag.write")
        driver.find_element(By.CSS_SELECTOR, "a[href^='../task/']").click()
        task = _open(driver, driver.current_url, shots, "task")
        assert "Golden trajectory" in task and "First query" in task

        evaluations = _open(driver, site.joinpath("evaluations.html").as_uri(), shots, "evaluations")
        assert re.search(r"Failed \([1-9]", evaluations)
        failed = driver.find_element(By.CSS_SELECTOR, "h2#failed + table a.transcript-link")
        transcript_id = Path(failed.get_attribute("href").split("#")[0]).stem
        failed.click()
        assert driver.current_url.endswith(f"transcript/{transcript_id}.html#evaluation")
        shown = _open(driver, driver.current_url, shots, "transcript")
        first_user = next(message_text(m) for m in transcripts[transcript_id].messages if m["role"] == "user")
        assert " ".join(first_user.split()) in shown
        assert "fail" in driver.find_element(By.ID, "evaluation").find_element(By.XPATH, "following-sibling::*[1]").text
        # tool results are collapsed until opened
        oracle = next(t for t in data.transcripts if t.agent == "oracle" and t.tool_calls)
        _open(driver, site.joinpath("transcript", f"{oracle.id}.html").as_uri(), shots, "transcript-with-tools")
        result = driver.find_element(By.CSS_SELECTOR, ".msg.tool details")
        assert result.get_attribute("open") is None
        result.find_element(By.TAG_NAME, "summary").click()
        assert result.get_attribute("open") is not None and result.find_element(By.TAG_NAME, "pre").is_displayed()


def test_browser_shows_hostile_text_as_text(workspace, tmp_path):
    require_browser()
    transcript, _ = _hostile_site(workspace, tmp_path)
    with chromium() as driver:
        shown = _open(driver, transcript.as_uri())  # an injected <img>/<script> would break the CSP and log
        assert "<script>alert('x')</script><img src=x onerror=alert(1)>" in shown


def test_view_serves_the_site_on_loopback(workspace, tmp_path):
    out = tmp_path / "served"
    proc = subprocess.Popen([sys.executable, "-m", "skiller", "view", "-w", str(workspace), "--out", str(out),
                             "--serve", "--port", "0"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        for line in proc.stderr:
            if "serving the explorer at" in line:
                break
        assert "serving the explorer at" in line, f"skiller view --serve did not start: {line!r}"
        url = line.split(" at ", 1)[1].strip()
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url, timeout=60) as response:
            assert response.status == 200 and b"Skiller explorer" in response.read()
        if _browser_available():
            with chromium() as driver:
                _open(driver, url)
                _open(driver, url.replace("index.html", "evaluations.html"))
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        proc.stdout.close()
        proc.stderr.close()


def _browser_available() -> bool:
    try:
        require_browser()
    except pytest.skip.Exception:
        return False
    return True


def test_an_empty_workspace_gives_an_index_and_an_empty_evaluations_page(tmp_path):
    root = make_workspace(tmp_path / "ws")
    assert cli("view", "-w", str(root)) == 0
    assert sorted(p.name for p in (root / "site").iterdir()) == [".skiller-view", "evaluations.html", "index.html"]
    assert "0 domain(s)" in (root / "site" / "index.html").read_text()
