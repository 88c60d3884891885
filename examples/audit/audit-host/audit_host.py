"""audit-host: Report a few facts about the host from its inventory (read only).

Simulated: prints what it would do. Stdlib only; runs as nobody on a
read-only root file system. Usage: python3 audit_host.py '<payload json>'
"""

import json

from craton_task import host_of, load_payload, publish, say


def main() -> None:
    payload = load_payload()
    host = host_of(payload)
    variables = host.get("variables") or {}
    result = {
        "host": host["name"],
        "ip_address": host.get("ip_address"),
        "kernel_version": variables.get("kernel_version"),
        "labels": sorted(host.get("labels") or []),
        "ntp_configured": bool(variables.get("ntp_server")),
        "region": host.get("region"),
        "cell": host.get("cell"),
    }
    say(json.dumps({"audit": result}, sort_keys=True))
    if not result["ntp_configured"]:
        say(f"finding: {host['name']} has no ntp_server variable")
    publish(result)


if __name__ == "__main__":
    main()
