"""Which names a task container's environment may carry.

Secrets reach a task as environment variables named like the secret. Some
names are not data but instructions to whatever starts in the container:
``BASH_ENV`` and ``ENV`` make a shell run a file (or, through ``$(...)``, a
command) before the script, ``LD_PRELOAD`` loads a library into every
program, ``PYTHONSTARTUP``/``PYTHONPATH``, ``PERL5OPT``, ``RUBYOPT``,
``NODE_OPTIONS`` and ``JAVA_TOOL_OPTIONS`` change what an interpreter loads,
proxy and certificate variables redirect or intercept its traffic,
``GLIBC_TUNABLES`` and ``GCONV_PATH`` steer the C library. A secret with such
a name would let whoever may create secrets run code the approved image does
not contain, so those names are refused wherever a name that ends up in the
environment is accepted (a secret, a task's or a workflow step's list of
secrets), and again by the runner before it starts a container.

``PATH``, ``HOME`` and every ``CRATON_*`` name are the platform's own: the
runner sets ``CRATON_URL`` and ``CRATON_TOKEN`` itself.

Names are compared case-insensitively: several programs read both spellings
(``http_proxy`` and ``HTTP_PROXY``), and a name refused in one case is not
worth allowing in another.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

ENVIRONMENT_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


@dataclass(frozen=True)
class NameRule:
    """Names refused for one reason: exact names and prefixes (upper case)."""

    reason: str  # completes "it …": "it makes a shell run code before the script"
    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()

    def matches(self, upper: str) -> bool:
        return upper in self.names or upper.startswith(self.prefixes)

    def describe(self) -> str:
        shown = sorted(self.names) + [f"{prefix}*" for prefix in self.prefixes]
        return ", ".join(shown)


REFUSED_NAME_RULES: tuple[NameRule, ...] = (
    NameRule(
        "is reserved for the platform",
        frozenset({"PATH", "HOME"}),
        ("CRATON_",),
    ),
    NameRule(
        "changes how the dynamic loader or the C library starts a program",
        frozenset(
            {"GCONV_PATH", "GLIBC_TUNABLES", "HOSTALIASES", "LOCPATH", "NLSPATH", "RES_OPTIONS"}
        ),
        ("LD_", "MALLOC_"),
    ),
    NameRule(
        "makes a shell run code before the script",
        frozenset(
            {
                "ENV",
                "SHELLOPTS",
                "BASHOPTS",
                "PS1",
                "PS2",
                "PS3",
                "PS4",
                "PROMPT_COMMAND",
                "IFS",
                "CDPATH",
                "GLOBIGNORE",
            }
        ),
        ("BASH_",),
    ),
    NameRule(
        "changes what an interpreter loads or runs",
        frozenset(
            {
                "PERLLIB",
                "NODE_OPTIONS",
                "NODE_PATH",
                "JAVA_TOOL_OPTIONS",
                "_JAVA_OPTIONS",
                "JDK_JAVA_OPTIONS",
                "CLASSPATH",
                "LUA_INIT",
                "LUA_PATH",
                "LUA_CPATH",
                "PHPRC",
                "PHP_INI_SCAN_DIR",
                "TCLLIBPATH",
            }
        ),
        ("PYTHON", "PERL5", "RUBY", "GEM_", "GIT_"),
    ),
    NameRule(
        "redirects or intercepts the task's network traffic or trust",
        frozenset(
            {
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "FTP_PROXY",
                "ALL_PROXY",
                "NO_PROXY",
                "OPENSSL_CONF",
                "OPENSSL_MODULES",
                "OPENSSL_ENGINES",
                "CURL_CA_BUNDLE",
                "REQUESTS_CA_BUNDLE",
                "NODE_EXTRA_CA_CERTS",
                "SSLKEYLOGFILE",
            }
        ),
        ("SSL_CERT_",),
    ),
)


def refused_name_reason(name: str) -> str | None:
    """Why ``name`` may not be an environment variable of a task, or None."""
    upper = name.upper()
    for rule in REFUSED_NAME_RULES:
        if rule.matches(upper):
            return rule.reason
    return None


def refused_names(names: Iterable[str]) -> dict[str, str]:
    """The refused names among ``names``, each with its reason."""
    found = {}
    for name in names:
        reason = refused_name_reason(name) if isinstance(name, str) else None
        if reason is not None:
            found[name] = reason
    return found


def rules_text() -> str:
    """Every refused name, rule by rule: for documentation and error details."""
    return "; ".join(f"{rule.reason}: {rule.describe()}" for rule in REFUSED_NAME_RULES)
