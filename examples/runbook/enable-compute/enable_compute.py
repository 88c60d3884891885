"""enable-compute: Re-enable the nova-compute service.

Simulated: prints what it would do. Stdlib only; runs as nobody on a
read-only root file system. Usage: python3 enable_compute.py '<payload json>'
"""

from craton_task import host_of, load_payload, output_of, publish, say


def main() -> None:
    payload = load_payload()
    host = host_of(payload)
    service = output_of(payload, "disable-compute").get("service") or "nova-compute"
    moved = output_of(payload, "migrate-vms").get("migrated_vms", [])
    say(f"would run: openstack compute service set --enable {host['name']} {service}")
    say(
        f"{host['name']} ({host.get('ip_address')}) accepts VMs again; "
        f"{len(moved)} VM(s) were moved away during maintenance: {', '.join(moved) or 'none'}"
    )
    publish({"compute_enabled": True})


if __name__ == "__main__":
    main()
