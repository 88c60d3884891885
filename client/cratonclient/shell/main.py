"""The ``craton`` command line, in python-cratonclient's style.

``craton [global options] <noun>-<verb> [options]``. Global options fall back
to the environment (``CRATON_URL``, ``OS_PROJECT_ID``, ``OS_USERNAME``,
``OS_PASSWORD``); ``--format`` is accepted before or after the command.

Every failure ends the same way: ``ERROR: <message>`` on stderr, and an exit
status that says which kind of failure it was (:data:`EXIT_CODES`): 1 a build
or job the command waited for did not succeed (failed, cancelled), 2 the
command line or its local input is wrong (a usage error, a missing file or
directory), 3 the server refused the request (its message: not found, not
allowed, bad credentials...) or could not be reached.

:func:`main` takes ``argv`` and, for tests, a ready ``client`` or an httpx
``transport``, and answers the exit status instead of exiting.
"""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import re
import sys
import textwrap
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import httpx

from .._client import Client
from .._version import __version__
from ..exceptions import BadTLSFile, ClientError, ConnectionFailed, Unauthorized
from . import _inventory, _jobs, _schedules, _tasks, _templates, _users, _webhooks, _workflows
from ._common import CommandError, Context, format_name
from ._output import FORMATS, Output

DEFAULT_URL = "http://127.0.0.1:7780"

EXIT_OK = 0
EXIT_FAILED = 1  # a build or job the command waited for failed or was cancelled
EXIT_USAGE = 2  # the command line or its local input is wrong
EXIT_SERVER = 3  # the server refused (auth, permission, not found...) or is unreachable

#: The exit statuses, as ``craton --help`` and the README list them.
EXIT_CODES = (
    f"exit status: {EXIT_OK} success; {EXIT_FAILED} a build or job waited for failed or was "
    f"cancelled; {EXIT_USAGE} usage error (command line, local file or directory); "
    f"{EXIT_SERVER} the server refused the request (authentication, permission, not found, "
    "invalid) or could not be reached"
)

_INVALID_CHOICE = re.compile(r"^argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)$")


class ArgumentParser(argparse.ArgumentParser):
    """argparse, with usage errors reported like every other error (``ERROR:``, exit 1).

    Options are never abbreviated: argparse's prefix matching took
    ``secret-create --value X`` for ``--value-file X``. Words it does not know
    are refused without being echoed (a mistyped command line may carry a
    secret): options by their name only, anything else only counted.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self.error(unrecognized_message(extras))
        return parsed

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"ERROR: {suggest_choice(message)}\n")


def suggest_choice(message: str) -> str:
    """argparse's "invalid choice" message, shortened to the closest choices if any."""
    match = _INVALID_CHOICE.match(message)
    if not match:
        return message
    what, word, listed = match.groups()
    choices = re.findall(r"'([^']*)'", listed)
    close = difflib.get_close_matches(word, choices, n=3, cutoff=0.6)
    name = "command" if what == "<command>" else f"choice for {what}"
    if close:
        return f"unknown {name} '{word}'; did you mean {' or '.join(close)}?"
    hint = (
        " (see 'craton --help')" if what == "<command>" else f": choose from {', '.join(choices)}"
    )
    return f"unknown {name} '{word}'{hint}"


def unrecognized_message(words: Sequence[str]) -> str:
    """Names the unknown options, never a value: ``--value=s3cret`` shows as ``--value``."""
    options = [w.split("=", 1)[0] for w in words if w.startswith("-") and w != "-"]
    others = len(words) - len(options)
    parts = []
    if options:
        parts.append(f"unrecognized option{'s' if len(options) > 1 else ''} {', '.join(options)}")
    if others:
        parts.append(f"{others} unexpected argument{'s' if others > 1 else ''} (not shown)")
    return "; ".join(parts)


def build_parser(environ: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    env = os.environ if environ is None else environ
    parser = ArgumentParser(
        prog="craton",
        description="Command line of craton-wf, the Craton workflow engine.",
        epilog="See 'craton <command> --help' for the options of a command.\n\n"
        + textwrap.fill(EXIT_CODES[0].upper() + EXIT_CODES[1:] + "."),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--craton-url",
        default=env.get("CRATON_URL") or DEFAULT_URL,
        metavar="URL",
        help=f"server URL (env CRATON_URL, default {DEFAULT_URL})",
    )
    parser.add_argument(
        "--os-project-id",
        default=env.get("OS_PROJECT_ID"),
        metavar="UUID",
        help="project to act in (env OS_PROJECT_ID)",
    )
    parser.add_argument(
        "--os-username", default=env.get("OS_USERNAME"), help="user name (env OS_USERNAME)"
    )
    parser.add_argument(
        "--os-password",
        default=env.get("OS_PASSWORD"),
        metavar="TOKEN",
        help="the user's token (env OS_PASSWORD)",
    )
    parser.add_argument(
        "--os-cacert",
        default=env.get("OS_CACERT"),
        metavar="FILE",
        help="PEM CA certificate(s) the server's https certificate is checked by "
        "(env OS_CACERT; default: the system's trusted CAs)",
    )
    parser.add_argument(
        "--os-cert",
        default=env.get("OS_CERT"),
        metavar="FILE",
        help="PEM client certificate, for a server that asks for one (env OS_CERT); "
        "its key in the same file or in --os-key",
    )
    parser.add_argument(
        "--os-key",
        default=env.get("OS_KEY"),
        metavar="FILE",
        help="PEM private key of --os-cert, unencrypted (env OS_KEY)",
    )
    parser.add_argument(
        "--insecure",
        action="store_true",
        help="do not check the server's https certificate (tests only: anyone on the way "
        "can read and change the traffic)",
    )
    parser.add_argument(
        "--format", choices=FORMATS, type=format_name, default="table", help="output format"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    for module in (
        _inventory,
        _tasks,
        _workflows,
        _jobs,
        _templates,
        _schedules,
        _users,
        _webhooks,
    ):
        module.register(subparsers)
    return parser


def main(
    argv: Sequence[str] | None = None,
    *,
    client: Client | None = None,
    transport: httpx.BaseTransport | httpx.AsyncBaseTransport | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """Run one ``craton`` command; answer its exit status."""
    try:
        args = build_parser(environ).parse_args(argv)
    except SystemExit as exc:  # --help, --version, usage errors
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE

    out = Output(args.format, sys.stdout, sys.stderr)
    own_client = client is None
    if client is None:
        try:
            client = Client(
                args.craton_url,
                project_id=args.os_project_id,
                username=args.os_username,
                token=args.os_password,
                transport=transport,
                **tls_options(args, out),
            )
        except (BadTLSFile, CommandError) as exc:
            out.error(exc.message)
            return EXIT_USAGE
    log_handler = _show_library_warnings()
    try:
        return args.func(Context(client, out), args) or 0
    except CommandError as exc:  # the command cannot run as given
        out.error(exc.message)
        return EXIT_USAGE
    except ClientError as exc:  # the server's refusal, or no server
        https = client.url.startswith("https:")
        out.error(describe_client_error(exc, https=https, client_cert=bool(args.os_cert)))
        return EXIT_SERVER
    except BrokenPipeError:  # `craton host-list | head`
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - Python flushes stdout at exit
        return 1
    except OSError as exc:  # local input: a directory to pack, a file to read
        out.error(_describe_os_error(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        out.note("Interrupted.")
        return 130
    finally:
        logging.getLogger("cratonclient").removeHandler(log_handler)
        if own_client:
            client.close()
    return 1


def tls_options(args: argparse.Namespace, out: Output) -> dict[str, Any]:
    """``Client``'s ``verify`` and ``cert`` from ``--os-cacert``, ``--os-cert``,
    ``--os-key`` and ``--insecure``, as OpenStack's clients take them."""
    options: dict[str, Any] = {}
    if args.insecure:
        out.note("WARNING: --insecure: the server's certificate is not checked")
        options["verify"] = False
    elif args.os_cacert:
        options["verify"] = args.os_cacert
    if args.os_key and not args.os_cert:
        raise CommandError("--os-key (OS_KEY) needs --os-cert (OS_CERT), the key's certificate")
    if args.os_cert:
        options["cert"] = (args.os_cert, args.os_key) if args.os_key else args.os_cert
    return options


# What OpenSSL says when a TLS handshake fails, and what a CLI user does about it.
_TLS_HINTS = (
    (
        "CERTIFICATE_VERIFY_FAILED",
        "the server's certificate is not trusted: give the CA that signed it with "
        "--os-cacert (OS_CACERT)",
    ),
    (
        "CERTIFICATE_REQUIRED",
        "the server asks for a client certificate: give it with --os-cert and --os-key "
        "(OS_CERT, OS_KEY)",
    ),
    (
        "UNKNOWN_CA",
        "the server does not accept this client certificate: it is not signed by a CA the "
        "server trusts",
    ),
    (
        "BAD_CERTIFICATE",
        "the server does not accept this client certificate",
    ),
    (
        "WRONG_VERSION_NUMBER",
        "the server does not speak https at this address: check the URL's scheme",
    ),
)


# A server that requires a client certificate ends a TLS 1.3 handshake that brings
# none, or one it does not trust, by closing the connection, often before its
# alert reaches the client: the client sees the connection close and nothing else.
_CLOSED = "SERVER DISCONNECTED WITHOUT SENDING A RESPONSE"


def tls_hint(message: str, *, https: bool = False, client_cert: bool = False) -> str | None:
    """What to do about a failed TLS handshake that ``message`` reports, if it is one."""
    upper = message.upper()
    hint = next((hint for marker, hint in _TLS_HINTS if marker in upper), None)
    if hint is None and not https and _CLOSED in upper:
        hint = "if the server serves https, its URL must say https://"
    elif hint is None and _CLOSED in upper:
        hint = (
            "the server may not accept this client certificate (--os-cert): is it signed by "
            "a CA the server trusts?"
            if client_cert
            else "the server may require a client certificate: give it with --os-cert and "
            "--os-key (OS_CERT, OS_KEY)"
        )
    return hint


#: The API's auth headers, as a CLI user sets them.
_AUTH_SETTINGS = {
    "X-Auth-Project": "OS_PROJECT_ID",
    "X-Auth-User": "OS_USERNAME",
    "X-Auth-Token": "OS_PASSWORD",
}
_AUTH_HEADER = re.compile("|".join(map(re.escape, _AUTH_SETTINGS)), re.IGNORECASE)
_BEARER = re.compile(r",? or a bearer token", re.IGNORECASE)


def describe_client_error(
    exc: ClientError, *, https: bool = False, client_cert: bool = False
) -> str:
    """The error as a CLI user acts on it: the server speaks of its HTTP headers
    (``X-Auth-User``), the user sets ``OS_USERNAME`` (or ``--os-username``)."""
    message = exc.message
    if _AUTH_HEADER.search(message):
        message = _AUTH_HEADER.sub(lambda m: _AUTH_SETTINGS[_canonical(m.group())], message)
        message = _BEARER.sub("", message.replace("send ", "set "))
    if isinstance(exc, ConnectionFailed) and (
        hint := tls_hint(message, https=https, client_cert=client_cert)
    ):
        message += f" ({hint})"
    if isinstance(exc, Unauthorized) and "OS_" not in message:
        message += " (check OS_USERNAME and OS_PASSWORD, or --os-username and --os-password)"
    return message


def _canonical(header: str) -> str:
    return next(name for name in _AUTH_SETTINGS if name.lower() == header.lower())


def _show_library_warnings() -> logging.Handler:
    """Library warnings (e.g. a skipped symlink) as ``WARNING: ...`` lines on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(logging.Formatter("WARNING: %(message)s"))
    logging.getLogger("cratonclient").addHandler(handler)
    return handler


def _describe_os_error(exc: OSError) -> str:
    if exc.filename and exc.strerror:
        return f"{exc.strerror}: {exc.filename}"
    return str(exc)


if __name__ == "__main__":
    sys.exit(main())
