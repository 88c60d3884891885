"""Where a networked task finds the API, and which network a container spec asks for."""

from __future__ import annotations

import pytest

from craton_wf.domain.task_network import task_api_url, url_port
from craton_wf.engine.task_env import api_url
from craton_wf.errors import ExecutorError
from craton_wf.executors.base import ContainerSpec
from craton_wf.executors.docker import host_config_options
from craton_wf.executors.tasknet import TaskNetworkOptions, project_network_name


def test_craton_url_is_the_gateway_name_unless_a_public_url_is_set(settings) -> None:  # type: ignore[no-untyped-def]
    assert api_url(settings) == "http://host.docker.internal:7780"
    public = settings.model_copy(update={"public_url": "https://craton.example.com/"})
    assert api_url(public) == "https://craton.example.com"
    assert task_api_url(None, 8000) == "http://host.docker.internal:8000"


@pytest.mark.parametrize(
    ("url", "port"),
    [("http://a:81", 81), ("http://a", 80), ("https://a/x", 443), ("https://a:8443", 8443)],
)
def test_url_port(url: str, port: int) -> None:
    assert url_port(url) == port


def test_the_forwarder_relays_to_an_api_on_loopback_only(settings) -> None:  # type: ignore[no-untyped-def]
    assert TaskNetworkOptions.from_settings(settings) == TaskNetworkOptions(
        api_port=7780, forward_to="127.0.0.1", firewall=False
    )
    everywhere = settings.model_copy(update={"api_host": "0.0.0.0", "api_port": 9000})
    assert TaskNetworkOptions.from_settings(everywhere).forward_to is None
    public = settings.model_copy(
        update={"public_url": "https://craton.example.com", "task_network_firewall": True}
    )
    assert TaskNetworkOptions.from_settings(public) == TaskNetworkOptions(
        api_port=443, forward_to=None, firewall=True
    )


def test_a_networked_spec_joins_the_network_given_and_never_the_default_bridge() -> None:
    spec = ContainerSpec(name="r", image="i", command=["true"], network=True)
    options = host_config_options(spec, network="net-id", api_gateway="172.30.0.1")
    assert options["network_mode"] == "net-id"
    assert options["extra_hosts"] == {"host.docker.internal": "172.30.0.1"}
    with pytest.raises(ExecutorError, match="no project network"):
        host_config_options(spec)
    closed = ContainerSpec(name="r", image="i", command=["true"])
    assert host_config_options(closed)["network_mode"] == "none"
    assert "extra_hosts" not in host_config_options(closed)


def test_project_network_names_are_valid_docker_names() -> None:
    assert project_network_name("0f0c-11") == "craton-net-0f0c-11"
    assert project_network_name("a b/c") == "craton-net-a-b-c"
    assert project_network_name("") == "craton-net-default"


def test_the_forwarder_relays_both_ways_and_leaves_a_held_address_alone() -> None:
    import socket
    import threading

    from craton_wf.executors.forwarder import ApiForwarder

    api = socket.create_server(("127.0.0.1", 0))
    port = api.getsockname()[1]

    def answer() -> None:
        conn, _ = api.accept()
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                data += conn.recv(100)
            conn.sendall(b"api got " + data)

    threading.Thread(target=answer, daemon=True).start()
    forwarder = ApiForwarder("127.0.0.1", port)
    # Another loopback address stands for a bridge's gateway.
    assert forwarder.listen_on("127.0.0.2") is True
    assert forwarder.listen_on("127.0.0.2") is True  # idempotent
    try:
        with socket.create_connection(("127.0.0.2", port), timeout=5) as task:
            task.sendall(b"hello\n")
            task.shutdown(socket.SHUT_WR)
            reply = b""
            while chunk := task.recv(100):
                reply += chunk
        assert reply == b"api got hello\n"
        other = ApiForwarder("127.0.0.1", port)
        assert other.listen_on("127.0.0.2") is False  # another runner holds it
        other.close()
    finally:
        forwarder.close()
        api.close()
    assert forwarder.addresses() == []


def test_engine_times_compare_as_times_not_strings():
    from craton_wf.executors.engine_time import engine_time_key

    # The engine trims trailing zeros: .1 is before .123, though "Z" > "2" as text.
    earlier, later = "2026-12-05T03:40:05.1Z", "2026-12-05T03:40:05.123Z"
    assert engine_time_key(earlier) < engine_time_key(later)
    assert earlier > later  # what a string comparison gets wrong
    assert engine_time_key("2026-12-05T03:40:05Z") < engine_time_key(earlier)
