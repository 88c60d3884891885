"""disable-compute: Disable the nova-compute service so no new VMs land on the host.

Simulated: prints what it would do. Stdlib only; runs as nobody on a
read-only root file system. Usage: python3 disable_compute.py '<payload json>'
"""

import json

from craton_task import host_of, load_payload, publish, say, setting


def main() -> None:
    payload = load_payload()
    host = host_of(payload)
    reason = setting(payload, "maintenance_reason", f"maintenance job {payload['job'].get('id')}")
    service = setting(payload, "compute_service", "nova-compute")
    say(
        f"host {host['name']} ({host.get('ip_address')}), region {host.get('region')}, "
        f"cell {host.get('cell')}"
    )
    say(
        f"would run: openstack compute service set --disable "
        f"--disable-reason {json.dumps(reason)} {host['name']} {service}"
    )
    say(f"{service} on {host['name']} is now disabled (simulated)")
    publish({"compute_disabled": True, "service": service, "reason": reason})


if __name__ == "__main__":
    main()
