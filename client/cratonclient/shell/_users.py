"""User, token, secret and audit commands: ``user-create``, ``-list``, ``-show``,
``-update``, ``-delete``, ``user-role-add``, ``user-role-remove``; ``token-create``,
``-list``, ``-revoke``; ``secret-create``, ``-list``, ``-delete``; ``audit-list``.

``token-create`` prints the token once: it cannot be shown again. Secret values
are read from a file, standard input or a prompt (never a command-line
argument, which other users of the machine can see) and never printed.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from ._common import (
    CommandError,
    Context,
    add_command,
    add_fields_option,
    add_list_options,
    list_command,
    print_items,
)

ROLES = ("viewer", "auditor", "operator", "admin", "root")
USER_FIELDS = ("id", "name", "role", "active")
SECRET_FIELDS = ("id", "name", "description", "created_at", "updated_at")
TOKEN_FIELDS = ("id", "name", "user", "prefix", "expires_at", "revoked_at", "last_used_at")
AUDIT_FIELDS = ("id", "ts", "user_name", "action", "object_type", "object_id", "status", "outcome")


def do_user_create(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.users.create(name=args.name, role=args.role))


def do_user_list(ctx: Context, args: argparse.Namespace) -> None:
    print_items(ctx, args, ctx.client.users.list())


def do_user_show(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.users.get(args.user))


def do_user_update(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.users.update(args.user, role=args.role))


def do_user_delete(ctx: Context, args: argparse.Namespace) -> None:
    ctx.client.users.delete(args.user)
    ctx.out.note(f"User {args.user} removed from the project.")


def do_user_role_add(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.users.grant(args.user, args.role))


def do_user_role_remove(ctx: Context, args: argparse.Namespace) -> None:
    ctx.client.users.remove(args.user)
    ctx.out.note(f"User {args.user} no longer has a role in the project.")


def _secret_value(args: argparse.Namespace) -> str:
    """The value from a file, standard input or a prompt; no message ever quotes it.

    Not even the file's name is quoted: it was typed where the value would go.
    """
    try:
        if args.value_stdin or args.value_file == "-":
            value = sys.stdin.read()
        elif args.value_file:
            try:
                value = Path(args.value_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(
                    f"cannot read the file given to --value-file: {exc.strerror}"
                ) from None
        elif sys.stdin.isatty():
            value = getpass.getpass(f"Value of {args.name}: ")
        else:
            value = sys.stdin.read()
    except UnicodeDecodeError:
        raise CommandError("the secret's value is not UTF-8 text") from None
    value = value[:-1] if value.endswith("\n") else value
    if not value:
        raise CommandError("the secret's value is empty")
    return value


def do_secret_create(ctx: Context, args: argparse.Namespace) -> None:
    secret = ctx.client.secrets.create(
        name=args.name, value=_secret_value(args), description=args.description
    )
    ctx.out.show(secret)


def do_secret_list(ctx: Context, args: argparse.Namespace) -> None:
    list_command(ctx, args, ctx.client.secrets, {})


def do_secret_delete(ctx: Context, args: argparse.Namespace) -> None:
    ctx.client.secrets.delete(args.secret)
    ctx.out.note(f"Secret {args.secret} deleted.")


def do_token_create(ctx: Context, args: argparse.Namespace) -> None:
    token = ctx.client.tokens.create(name=args.name, user=args.user, expires_in=args.expires_in)
    ctx.out.show(token)
    ctx.out.note("Store the token now: it cannot be shown again.")


def do_token_list(ctx: Context, args: argparse.Namespace) -> None:
    print_items(ctx, args, ctx.client.tokens.list())


def do_token_revoke(ctx: Context, args: argparse.Namespace) -> None:
    ctx.client.tokens.revoke(args.token)
    ctx.out.note(f"Token {args.token} revoked.")


def do_audit_list(ctx: Context, args: argparse.Namespace) -> None:
    filters = {
        "user": args.user,
        "action": args.action,
        "object_type": args.object_type,
        "object_id": args.object_id,
        "outcome": args.outcome,
        "since": args.since,
        "until": args.until,
    }
    list_command(ctx, args, ctx.client.audit_events, filters)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = add_command(subparsers, "user-create", do_user_create, "Add a user to the project.")
    parser.add_argument("--name", required=True)
    parser.add_argument("--role", required=True, choices=ROLES)

    parser = add_command(subparsers, "user-list", do_user_list, "List the project's users.")
    add_fields_option(parser, USER_FIELDS)

    parser = add_command(subparsers, "user-show", do_user_show, "Show a user.")
    parser.add_argument("user", help="user (id or name)")

    parser = add_command(subparsers, "user-update", do_user_update, "Change a user's role.")
    parser.add_argument("user", help="user (id or name)")
    parser.add_argument("--role", required=True, choices=ROLES)

    parser = add_command(
        subparsers, "user-delete", do_user_delete, "Remove a user from the project."
    )
    parser.add_argument("user", help="user (id or name)")

    parser = add_command(
        subparsers,
        "user-role-add",
        do_user_role_add,
        "Grant a user a role in the project (adds the user if needed).",
    )
    parser.add_argument("user", help="user (id or name)")
    parser.add_argument("--role", required=True, choices=ROLES)

    parser = add_command(
        subparsers,
        "user-role-remove",
        do_user_role_remove,
        "Take a user's role in the project away.",
    )
    parser.add_argument("user", help="user (id or name)")

    parser = add_command(
        subparsers,
        "secret-create",
        do_secret_create,
        "Store a project secret (encrypted; its value is never shown back).",
    )
    parser.add_argument("--name", required=True, help="also the environment variable's name")
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--value-file",
        metavar="FILE",
        help="read the value from FILE ('-': standard input)",
    )
    source.add_argument(
        "--value-stdin",
        action="store_true",
        help="read the value from standard input (default: a prompt on a terminal, "
        "else standard input); never give it on the command line",
    )
    parser.add_argument("--description")

    parser = add_command(subparsers, "secret-list", do_secret_list, "List the project's secrets.")
    add_list_options(parser, SECRET_FIELDS)

    parser = add_command(subparsers, "secret-delete", do_secret_delete, "Delete a secret.")
    parser.add_argument("secret", help="secret (id or name)")

    parser = add_command(
        subparsers, "token-create", do_token_create, "Create an API token (shown once)."
    )
    parser.add_argument("--name", default="")
    parser.add_argument("--user", help="for this user of the project (root users only)")
    parser.add_argument(
        "--expires-in", type=int, metavar="SECONDS", help="lifetime (default: no expiry)"
    )

    parser = add_command(subparsers, "token-list", do_token_list, "List API tokens.")
    add_fields_option(parser, TOKEN_FIELDS)

    parser = add_command(subparsers, "token-revoke", do_token_revoke, "Revoke an API token.")
    parser.add_argument("token", type=int, help="token id")

    parser = add_command(subparsers, "audit-list", do_audit_list, "List audit events.")
    add_list_options(parser, AUDIT_FIELDS)
    parser.add_argument("--user", help="who made the call")
    parser.add_argument("--action", help="e.g. host.create, job.cancel")
    parser.add_argument("--object-type", help="e.g. host, job, task")
    parser.add_argument("--object-id")
    parser.add_argument("--outcome", choices=("success", "failure"))
    parser.add_argument("--since", help="ISO 8601 time")
    parser.add_argument("--until", help="ISO 8601 time")
