"""A job's page in a real browser against a live server on Docker: the grid and the
graph change as runs do, a running step's log arrives line by line, a job is
cancelled from its page; and the demo's shape: a runbook where one host fails
its patch step, its log read on the page, and the failed host retried from it.

Tasks are busybox scripts built by the server (seconds each); the screenshots
of the jobs pages in ``docs/console/`` are taken here, from the demo's shape.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.support import screenshot
from tests.e2e.conftest import Server, start_server, stop

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.timeout(600)]

# A step's script: $fail says whether the host is marked to fail (a host variable).
STEP = """#!/bin/sh
case "$1" in *patch_should_fail*) fail=yes;; *) fail=no;; esac
echo "{step}: starting"
{body}
"""


# Prints a line every half second for a minute, every fourth one also on stderr.
TICKER = """i=0
while [ $i -lt 120 ]; do
  i=$((i+1))
  echo "tick $i"
  [ $((i % 4)) -eq 0 ] && echo "tock $i" >&2
  sleep 0.5
done"""


@pytest.fixture
def docker_server(database_url: str, tmp_path: Path, busybox_image: str) -> Iterator[Server]:
    running = start_server(database_url, tmp_path, embedded=True)
    yield running
    stop(running.processes)


def make_task(server: Server, tmp_path: Path, name: str, body: str) -> None:
    source = tmp_path / "tasks" / name
    source.mkdir(parents=True)
    (source / "Dockerfile").write_text("FROM craton/busybox:latest\nCOPY step.sh /step.sh\n")
    (source / "step.sh").write_text(STEP.format(step=name, body=body))
    server.craton("task-create", "--name", name, "--location", str(source), "--command",
                  "sh /step.sh", "--wait")  # fmt: skip


def inventory(server: Server, *hosts: str) -> None:
    server.craton("cloud-create", "--name", "c")
    server.craton("region-create", "--name", "dc1", "--cloud", "c")
    for index, host in enumerate(hosts, start=1):
        server.craton("host-create", "--name", host, "--ip-address", f"10.7.0.{index}",
                      "--region", "dc1", "--label", "compute")  # fmt: skip


def cell(page: Any, host: str, step: str) -> Any:
    index = page.locator("#job-grid thead th").all_inner_texts()
    column = next(i for i, text in enumerate(index) if text.split("\n")[0] == step)
    return page.locator(f'#job-grid tr[data-host="{host}"] > :nth-child({column + 1})')


def wait_for_state(target: Any, state: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while target.get_attribute("data-state") != state:
        assert time.monotonic() < deadline, f"still {target.get_attribute('data-state')}"
        time.sleep(0.1)


def test_the_page_follows_a_running_job_its_log_arrives_live_and_cancel_stops_it(
    docker_server: Server, open_console: Any, tmp_path: Path
) -> None:
    server = docker_server
    inventory(server, "h1")
    make_task(server, tmp_path, "warmup", "sleep 3\necho warm")
    make_task(server, tmp_path, "ticker", TICKER)
    server.approve("warmup", "ticker")
    server.craton("workflow-create", "--name", "tick", "--task", "warmup", "--task", "ticker")
    page, refused = open_console(server)
    job = server.json("job-create", "--workflow", "tick", "--host", "h1")
    page.goto(f"{server.url}/ui/jobs/{job['id']}")  # type: ignore[index]
    page.evaluate("() => { window.notReloaded = true; }")

    # The grid changes without a reload: warmup runs, then succeeds; ticker starts.
    wait_for_state(cell(page, "h1", "warmup"), "RUNNING")
    wait_for_state(cell(page, "h1", "warmup"), "SUCCEEDED")
    wait_for_state(cell(page, "h1", "ticker"), "RUNNING")
    assert page.locator('#job-graph g[data-step="ticker"]').get_attribute("class") == "node live"
    assert page.evaluate("() => window.notReloaded") is True

    # The running step's log: its end, then lines as they are printed.
    cell(page, "h1", "ticker").locator("a.run").click()
    page.wait_for_selector("#log:not([hidden])")
    page.wait_for_selector("#log-follow:not([hidden])")
    lines = page.locator("#log-lines .line")
    first = lines.count()
    page.wait_for_function(
        "n => document.querySelectorAll('#log-lines .line').length >= n + 4", arg=first
    )
    assert page.locator("#log-lines .line.stderr").first.inner_text().startswith("tock")
    texts = page.locator("#log-lines .line.stdout .text").all_inner_texts()
    numbers = [int(t.split()[1]) for t in texts if t.startswith("tick ")]
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # no gap, no repeat
    page.check("#log-times")
    assert page.locator("#log-lines .line .ts").first.is_visible()
    assert page.evaluate("() => window.notReloaded") is True

    # Cancel from the page: the job ends CANCELLED, the log stops following.
    page.click("#cancel")
    page.wait_for_selector(".notice")
    page.wait_for_function(
        "() => document.getElementById('job-status').textContent === 'CANCELLED'",
        timeout=60_000,
    )
    assert server.json("job-show", str(job["id"]))["status"] == "CANCELLED"  # type: ignore[index]
    assert refused == []


def test_the_demo_runbook_failed_patch_log_and_retry_of_the_failed_host(
    docker_server: Server, open_console: Any, tmp_path: Path
) -> None:
    server = docker_server
    inventory(server, "compute-01", "compute-02", "compute-03")
    server.craton("host-vars-set", "compute-02", "patch_should_fail=true")
    make_task(server, tmp_path, "drain", 'echo "draining"')
    make_task(server, tmp_path, "patch", 'echo "installing kernel 6.1.0-13"\n'
              'if [ $fail = yes ]; then\n  echo "dpkg: error: package conflict" >&2\n'
              '  exit 1\nfi\necho "patched"')  # fmt: skip
    make_task(server, tmp_path, "undrain", 'echo "back in service"')
    server.approve("drain", "patch", "undrain")
    server.craton("workflow-create", "--name", "host-maintenance", "--task", "drain",
                  "--task", "patch", "--task", "undrain")  # fmt: skip
    server.craton("job-create", "--workflow", "host-maintenance", "--host", "compute-01",
                  "compute-02", "compute-03", "--concurrency", "1", "--max-failures", "1",
                  "--var", "change=CHG-1234", "--wait", check=False)  # fmt: skip
    page, refused = open_console(server)

    # The jobs list: the runbook's job failed on one host.
    row = page.locator('#jobs tr[data-job="1"]')
    assert "FAILED" in row.inner_text() and "1 failed" in row.inner_text()

    page.set_viewport_size({"width": 1400, "height": 900})

    # The job: the graph says where, the grid's failed cell opens the patch log.
    row.locator("a").first.click()
    page.wait_for_url("**/ui/jobs/1")
    assert page.locator('#job-graph g[data-step="patch"]').get_attribute("class") == "node bad"
    failed = cell(page, "compute-02", "patch")
    assert "exit 1" in failed.inner_text()
    failed.locator("a.run").click()
    page.wait_for_selector("#log-lines .line.stderr")
    assert "dpkg: error: package conflict" in page.locator("#log-lines .stderr").inner_text()
    assert "compute-02" in page.locator("#log-title").inner_text()
    screenshot(page, "job.png", full_page=True)

    # Retry the failed host from the page, once its inventory is fixed.
    server.craton("host-vars-delete", "compute-02", "patch_should_fail")
    page.click("#retry-failed")
    page.wait_for_url("**/ui/jobs/2?notice=**")
    assert "retries job 1 on its failed hosts" in page.locator(".notice").inner_text()
    page.wait_for_function(
        "() => document.getElementById('job-status').textContent === 'SUCCEEDED'",
        timeout=90_000,
    )
    assert page.locator("#job-grid tbody tr").count() == 1
    wait_for_state(cell(page, "compute-02", "patch"), "SUCCEEDED", timeout=5)
    assert page.locator("#retry-of").get_attribute("href") == "/ui/jobs/1"
    page.goto(f"{server.url}/ui/jobs")
    assert page.locator("#jobs tbody tr").count() == 2
    screenshot(page, "jobs.png")
    assert refused == []
