"""The opt-in firewall of task networks (``CRATON_WF_TASK_NETWORK_FIREWALL``).

A task on its project's bridge can send packets to two places Docker's own
rules leave open:

- addresses routed off the host, link-local ones included: a cloud's
  metadata service (``169.254.169.254``) hands out the node's credentials;
- the host itself, at any of its addresses: every port of the host that
  listens on them (the runner's engine API on tcp, databases, the API of a
  ``serve`` bound to ``0.0.0.0``).

With the setting on, the runner installs, for each project bridge it uses,
rules in two chains of its own, each jumped to from the first rule of a
standard chain (so Docker's own rules cannot accept the packet first):

``CRATON-TASKS-FORWARD`` (from ``DOCKER-USER``, which Docker puts first in
``FORWARD`` and never flushes)::

    -i <bridge> -d 169.254.0.0/16 -j DROP

``CRATON-TASKS-INPUT`` (from ``INPUT``)::

    -i <bridge> -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
    -i <bridge> -p tcp --dport <API port> -j ACCEPT
    -i <bridge> -j DROP

so the port of ``CRATON_URL`` is the one port of the host a task reaches
(answers to connections the host opened stay allowed). Rules match the input
interface, the bridge, rather than the subnet: a container cannot forge it.
Docker's embedded DNS answers inside the container's own namespace and is not
affected.

Each rule is checked (``iptables -C``) before it is added, so installing is
idempotent; two runners installing at once may both add a rule, which is
harmless (the same verdict twice). Rules are in the running kernel only:
a runner installs them again the first time it uses each network after it
starts. ``status`` tells ``/readyz`` whether the rules of every project bridge
are in place. IPv4 only: project networks have no IPv6.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterable

from craton_wf.domain.task_network import LINK_LOCAL
from craton_wf.errors import ExecutorError

FORWARD_CHAIN = "CRATON-TASKS-FORWARD"
INPUT_CHAIN = "CRATON-TASKS-INPUT"
HOOKS = (("DOCKER-USER", FORWARD_CHAIN), ("INPUT", INPUT_CHAIN))
IPTABLES_TIMEOUT = 30


def bridge_rules(bridge: str, api_port: int) -> list[tuple[str, list[str]]]:
    """The (chain, rule) pairs of one project bridge, in order."""
    return [
        (FORWARD_CHAIN, ["-i", bridge, "-d", LINK_LOCAL, "-j", "DROP"]),
        (
            INPUT_CHAIN,
            ["-i", bridge, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"],
        ),
        (INPUT_CHAIN, ["-i", bridge, "-p", "tcp", "--dport", str(api_port), "-j", "ACCEPT"]),
        (INPUT_CHAIN, ["-i", bridge, "-j", "DROP"]),
    ]


class TaskFirewall:
    """Installs and checks the rules of project bridges with ``iptables``."""

    def __init__(self, api_port: int, iptables: str = "iptables") -> None:
        self.api_port = api_port
        self.iptables = iptables
        self._installed: set[str] = set()
        self._lock = threading.Lock()

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        binary = shutil.which(self.iptables)
        if binary is None:
            raise ExecutorError(f"the task network firewall needs {self.iptables}, not found")
        try:
            return subprocess.run(
                [binary, "-w", *args],
                capture_output=True,
                text=True,
                timeout=IPTABLES_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ExecutorError(f"could not run {self.iptables}: {exc}") from exc

    def _must(self, *args: str) -> None:
        done = self._run(*args)
        if done.returncode != 0:
            raise ExecutorError(
                f"{self.iptables} {' '.join(args)} failed: {done.stderr.strip()[:500]}"
            )

    def _has(self, *args: str) -> bool:
        return self._run("-C", *args).returncode == 0

    def _chain_exists(self, chain: str) -> bool:
        return self._run("-S", chain).returncode == 0

    def _ensure_chains(self) -> None:
        for parent, chain in HOOKS:
            if not self._chain_exists(chain):
                done = self._run("-N", chain)
                if done.returncode != 0 and not self._chain_exists(chain):  # not a race
                    raise ExecutorError(
                        f"{self.iptables} -N {chain} failed: {done.stderr.strip()[:500]}"
                    )
            if not self._has(parent, "-j", chain):
                self._must("-I", parent, "1", "-j", chain)

    def install(self, bridge: str) -> None:
        """The rules of ``bridge``, added where missing (once per process and bridge)."""
        with self._lock:
            if bridge in self._installed:
                return
            self._ensure_chains()
            for chain, rule in bridge_rules(bridge, self.api_port):
                if not self._has(chain, *rule):
                    self._must("-A", chain, *rule)
            self._installed.add(bridge)

    def missing(self, bridges: Iterable[str]) -> list[str]:
        """What is not in place, in words; empty when every rule is."""
        problems = [
            f"{chain} is not jumped to from {parent}"
            for parent, chain in HOOKS
            if not (self._chain_exists(chain) and self._has(parent, "-j", chain))
        ]
        if problems:
            return problems
        for bridge in bridges:
            rules = bridge_rules(bridge, self.api_port)
            if not all(self._has(chain, *rule) for chain, rule in rules):
                problems.append(f"the rules of bridge {bridge} are missing")
        return problems

    def uninstall(self, bridge: str) -> None:
        """Remove the rules of ``bridge`` (its network is gone), every copy of each."""
        with self._lock:
            self._installed.discard(bridge)
            for chain, rule in bridge_rules(bridge, self.api_port):
                while self._has(chain, *rule):
                    self._must("-D", chain, *rule)
