"""post-checks: Verify the host came back on the expected kernel with its services up.

Simulated: prints what it would do. Stdlib only; runs as nobody on a
read-only root file system. Usage: python3 post_checks.py '<payload json>'
"""

from craton_task import fail, host_of, load_payload, output_of, publish, say


def main() -> None:
    payload = load_payload()
    host = host_of(payload)
    expected = output_of(payload, "patch").get("kernel_after")
    booted = output_of(payload, "reboot").get("booted_kernel")
    checks = {
        "rebooted": bool(output_of(payload, "reboot").get("rebooted")),
        "kernel_matches": expected is None or booted == expected,
        "services_up": True,  # simulated
    }
    say(
        f"post-checks on {host['name']} ({host.get('ip_address')}): "
        f"expected kernel {expected}, booted {booted}"
    )
    for name, ok in checks.items():
        say(f"  {name}: {'ok' if ok else 'FAILED'}")
    publish({"checks": checks})
    if not all(checks.values()):
        fail(
            f"post-checks failed on {host['name']}: "
            + ", ".join(name for name, ok in checks.items() if not ok)
        )


if __name__ == "__main__":
    main()
