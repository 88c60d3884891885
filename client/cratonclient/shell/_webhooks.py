"""Webhook commands: ``webhook-create``, ``-list``, ``-show``, ``-update``, ``-delete``,
``webhook-deliveries``, ``webhook-redeliver``.

The signing secret is read from a file, standard input or a prompt (never a
command-line argument, which other users of the machine can see) and never
printed: the API does not answer it.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._common import (
    CommandError,
    Context,
    add_command,
    add_fields_option,
    add_list_options,
    list_command,
    print_items,
)

EVENTS = (
    "job.started",
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "job.paused",
    "build.failed",
    "approval.requested",
)
WEBHOOK_FIELDS = ("id", "name", "url", "events", "enabled", "description")
DELIVERY_FIELDS = (
    "id", "event", "status", "attempts", "last_status_code", "latency_ms",
    "response", "next_attempt_at", "delivered_at", "event_id",
)  # fmt: skip


def _events(values: list[str] | None) -> list[str] | None:
    """``--event`` given once per event or comma separated."""
    if not values:
        return None
    return [e.strip() for value in values for e in value.split(",") if e.strip()]


def _secret(args: argparse.Namespace, required: bool) -> str | None:
    """The secret from ``--secret-file``, ``--secret-stdin`` or a prompt; never quoted."""
    try:
        if args.secret_stdin or args.secret_file == "-":
            value = sys.stdin.read()
        elif args.secret_file:
            try:
                value = Path(args.secret_file).read_text(encoding="utf-8")
            except OSError as exc:
                raise CommandError(
                    f"cannot read the file given to --secret-file: {exc.strerror}"
                ) from None
        elif not required:
            return None
        elif sys.stdin.isatty():
            value = getpass.getpass("Signing secret of the webhook: ")
        else:
            value = sys.stdin.read()
    except UnicodeDecodeError:
        raise CommandError("the webhook's secret is not UTF-8 text") from None
    value = value.rstrip("\r\n")
    if not value:
        raise CommandError("the webhook's secret is empty")
    return value


def do_webhook_create(ctx: Context, args: argparse.Namespace) -> None:
    hook = ctx.client.webhooks.create(
        name=args.name,
        url=args.url,
        events=_events(args.event),
        secret=_secret(args, required=True),
        enabled=not args.disabled,
        description=args.description,
    )
    ctx.out.show(hook)


def do_webhook_list(ctx: Context, args: argparse.Namespace) -> None:
    list_command(ctx, args, ctx.client.webhooks, {}, _readable_webhook)


def do_webhook_show(ctx: Context, args: argparse.Namespace) -> None:
    ctx.out.show(ctx.client.webhooks.find(args.webhook))


def do_webhook_update(ctx: Context, args: argparse.Namespace) -> None:
    webhooks = ctx.client.webhooks
    hook = webhooks.update(
        webhooks.resolve_id(args.webhook),
        url=args.url,
        events=_events(args.event),
        secret=_secret(args, required=False),
        enabled=args.enabled,
        description=args.description,
    )
    ctx.out.show(hook)


def do_webhook_delete(ctx: Context, args: argparse.Namespace) -> None:
    webhooks = ctx.client.webhooks
    webhooks.delete(webhooks.resolve_id(args.webhook))
    ctx.out.note(f"Webhook {args.webhook} deleted.")


def _readable_webhook(hook: Mapping[str, Any]) -> Mapping[str, Any]:
    return {**hook, "events": ", ".join(hook.get("events") or [])}


def _readable_delivery(delivery: Mapping[str, Any]) -> Mapping[str, Any]:
    """The last attempt's latency and the start of its answer (or its error) beside it."""
    last = (delivery.get("attempt_log") or [{}])[-1]
    answer = last.get("error") or last.get("response_excerpt") or ""
    answer = " ".join(answer.split())
    return {
        **delivery,
        "latency_ms": last.get("latency_ms"),
        "response": answer[:60] + ("…" if len(answer) > 60 else ""),
    }


def do_webhook_deliveries(ctx: Context, args: argparse.Namespace) -> None:
    found = ctx.client.webhooks.deliveries(args.webhook, status=args.status)
    print_items(ctx, args, found, _readable_delivery)


def do_webhook_redeliver(ctx: Context, args: argparse.Namespace) -> None:
    delivery = ctx.client.webhooks.redeliver(args.webhook, args.delivery)
    ctx.out.note(f"Delivery {args.delivery} ({delivery['event']}) will be sent again.")


def _add_secret_options(parser: argparse.ArgumentParser, when: str) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--secret-file", metavar="FILE", help="read the signing secret from FILE ('-': stdin)"
    )
    source.add_argument(
        "--secret-stdin",
        action="store_true",
        help=f"read the signing secret from standard input ({when}); never give it on "
        "the command line",
    )


def _add_event_option(parser: argparse.ArgumentParser, required: bool) -> None:
    parser.add_argument(
        "--event",
        action="append",
        required=required,
        metavar="EVENT",
        help=f"an event to send, repeated or comma separated: {', '.join(EVENTS)}",
    )


def register(subparsers: Any) -> None:
    parser = add_command(
        subparsers,
        "webhook-create",
        do_webhook_create,
        "Add an endpoint the project's events are POSTed to, signed with its secret.",
    )
    parser.add_argument("--name", required=True)
    parser.add_argument("--url", required=True, help="https URL of the receiver")
    _add_event_option(parser, required=True)
    _add_secret_options(parser, "default: a prompt on a terminal, else standard input")
    parser.add_argument("--disabled", action="store_true", help="create it disabled")
    parser.add_argument("--description")

    parser = add_command(subparsers, "webhook-list", do_webhook_list, "List the webhooks.")
    add_list_options(parser, WEBHOOK_FIELDS)

    parser = add_command(subparsers, "webhook-show", do_webhook_show, "Show a webhook.")
    parser.add_argument("webhook", help="webhook (id or name)")

    parser = add_command(
        subparsers, "webhook-update", do_webhook_update, "Change a webhook (what is given)."
    )
    parser.add_argument("webhook", help="webhook (id or name)")
    parser.add_argument("--url")
    _add_event_option(parser, required=False)
    _add_secret_options(parser, "only when one of these is given")
    enabled = parser.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_const", const=True)
    enabled.add_argument("--disable", dest="enabled", action="store_const", const=False)
    parser.add_argument("--description")

    parser = add_command(subparsers, "webhook-delete", do_webhook_delete, "Delete a webhook.")
    parser.add_argument("webhook", help="webhook (id or name)")

    parser = add_command(
        subparsers,
        "webhook-deliveries",
        do_webhook_deliveries,
        "List a webhook's deliveries: event, attempts, last status, latency, answer.",
    )
    parser.add_argument("webhook", help="webhook (id or name)")
    parser.add_argument("--status", choices=("pending", "delivered", "failed"))
    add_fields_option(parser, DELIVERY_FIELDS)

    parser = add_command(
        subparsers,
        "webhook-redeliver",
        do_webhook_redeliver,
        "Send a delivery again (same event id, so a receiver keeps one).",
    )
    parser.add_argument("webhook", help="webhook (id or name)")
    parser.add_argument("delivery", type=int, help="delivery id")
