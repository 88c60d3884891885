"""``craton job-logs --follow`` against a live server on Docker, while its stream is broken:
the server restarted mid-job, or the connection cut again and again by a proxy. The CLI
resumes after the last line it printed (``Last-Event-ID``) and prints every stored line
exactly once, in order."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import pytest

from tests.e2e.conftest import Server, free_port, start_server, stop, wait_ready

pytestmark = [pytest.mark.e2e, pytest.mark.docker]

LINES = 300
# Numbered lines, a few a tick, for some seconds: a stream that is cut has lines on both sides.
SCRIPT = f"i=0\nwhile [ $i -lt {LINES} ]; do echo line-$i; i=$((i+1)); sleep 0.02; done\n"


def _counting_task(server: Server, tmp_path: Path) -> str:
    craton = server.craton
    craton("cloud-create", "--name", "c")
    craton("region-create", "--name", "r", "--cloud", "c")
    craton("host-create", "--name", "h1", "--ip-address", "10.9.0.1", "--region", "r")
    task = tmp_path / "counter"
    task.mkdir()
    (task / "Dockerfile").write_text("FROM craton/busybox:latest\nCOPY step.sh /step.sh\n")
    (task / "step.sh").write_text(SCRIPT)
    craton("task-create", "--name", "counter", "--location", str(task), "--command",
           "sh /step.sh", "--wait")  # fmt: skip
    server.approve("counter")
    job = server.json("job-create", "--task", "counter", "--host", "h1")
    return str(job["id"])  # type: ignore[index]


def _follow(server: Server, job_id: str, url: str | None = None) -> subprocess.Popen[str]:
    env = {**server.env, **({"CRATON_URL": url} if url else {})}
    return subprocess.Popen(
        [sys.executable, "-m", "cratonclient.shell.main", "job-logs", job_id, "--follow"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _stored(server: Server, job_id: str) -> list[str]:
    return server.craton("job-logs", job_id).stdout.splitlines()


def _wait_for_lines(server: Server, job_id: str, count: int) -> None:
    deadline = time.monotonic() + 90
    while len(_stored(server, job_id)) < count:
        assert time.monotonic() < deadline, f"job {job_id} never logged {count} lines"
        time.sleep(0.2)


def _assert_every_line_once(out: str, stored: list[str]) -> None:
    printed = out.splitlines()
    assert printed == stored  # what the server stored, each line once, in its order
    numbers = [line.rsplit("line-", 1)[1] for line in printed if "line-" in line]
    assert numbers == [str(i) for i in range(LINES)]


def test_follow_prints_every_line_once_across_a_server_restart(
    database_url: str, tmp_path: Path, busybox_image: str
) -> None:
    server = start_server(database_url, tmp_path, embedded=True, shutdown_grace_seconds="1")
    again = None
    try:
        job_id = _counting_task(server, tmp_path)
        follow = _follow(server, job_id)
        _wait_for_lines(server, job_id, 40)
        stop(server.processes)  # the server goes away mid-stream; the container runs on
        time.sleep(1)
        log = server.log.with_name("serve-again.log")
        with log.open("wb") as out:
            again = subprocess.Popen(
                [sys.executable, "-m", "craton_wf.cli", "serve"],
                env=server.env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        wait_ready(server.url, [again], log)
        out, err = follow.communicate(timeout=180)
        stored = _stored(server, job_id)
    finally:
        stop([*server.processes, *([again] if again else [])])

    assert follow.returncode == 0, err
    assert "Lost the server" in err and "Reconnected." in err
    _assert_every_line_once(out, stored)


class CuttingProxy:
    """A TCP proxy to the server that cuts each connection opened for a follow stream
    after a few kilobytes of the server's answer: the stream breaks many times mid-job."""

    def __init__(self, upstream_port: int, seed: int = 7) -> None:
        self.port = free_port()
        self.upstream = ("127.0.0.1", upstream_port)
        self.cuts = 0
        self._chance = random.Random(seed)
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._closed = False

    @contextmanager
    def running(self) -> Iterator[CuttingProxy]:
        accepting = threading.Thread(target=self._accept, daemon=True)
        accepting.start()
        try:
            yield self
        finally:
            self._closed = True
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            head = client.recv(65536)  # the request: only follow streams are cut
            budget = self._chance.randint(1500, 6000) if b"follow=true" in head else None
            server = socket.create_connection(self.upstream)
            server.sendall(head)
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, budget), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, budget: int | None) -> None:
        try:
            while data := source.recv(1024):
                if budget is not None:
                    data = data[:budget]
                    budget -= len(data)
                target.sendall(data)
                if budget == 0:
                    self.cuts += 1
                    break
        except OSError:
            pass
        for sock in (source, target):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


def test_follow_prints_every_line_once_when_its_connection_is_cut_again_and_again(
    database_url: str, tmp_path: Path, busybox_image: str
) -> None:
    server = start_server(database_url, tmp_path, embedded=True)
    try:
        job_id = _counting_task(server, tmp_path)
        port = int(server.url.rsplit(":", 1)[1])
        with CuttingProxy(port).running() as proxy:
            follow = _follow(server, job_id, url=f"http://127.0.0.1:{proxy.port}")
            out, err = follow.communicate(timeout=180)
        stored = _stored(server, job_id)
    finally:
        stop(server.processes)

    assert follow.returncode == 0, err
    assert proxy.cuts >= 3, err  # the stream really broke, several times
    assert err.count("Lost the server") >= 1
    _assert_every_line_once(out, stored)
