"""pre-checks: Check the host is empty and healthy before touching it.

Simulated: prints what it would do. Stdlib only; runs as nobody on a
read-only root file system. Usage: python3 pre_checks.py '<payload json>'
"""

from craton_task import fail, host_of, load_payload, output_of, publish, say


def main() -> None:
    payload = load_payload()
    host = host_of(payload)
    variables = host.get("variables") or {}
    migrated = output_of(payload, "migrate-vms").get("migrated_vms", [])
    checks = {
        "host_active": bool(host.get("active", True)),
        "no_vms_left": True,  # simulated: migrate-vms moved them all
        "disk_ok": int(variables.get("root_disk_free_pct", 40)) >= 10,
    }
    say(
        f"pre-checks on {host['name']} ({host.get('ip_address')}); "
        f"{len(migrated)} VM(s) were migrated away"
    )
    for name, ok in checks.items():
        say(f"  {name}: {'ok' if ok else 'FAILED'}")
    publish({"checks": checks, "kernel_before": variables.get("kernel_version", "unknown")})
    if not all(checks.values()):
        fail(
            f"pre-checks failed on {host['name']}: "
            + ", ".join(name for name, ok in checks.items() if not ok)
        )


if __name__ == "__main__":
    main()
