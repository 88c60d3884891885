"""migrate-vms: Live-migrate the host's VMs away (the VMs come from the host variable `vms`).

Simulated: prints what it would do. Stdlib only; runs as nobody on a
read-only root file system. Usage: python3 migrate_vms.py '<payload json>'
"""

from craton_task import fail, host_of, is_true, load_payload, output_of, publish, say, setting

TEMPORARY_FAILURE = 75  # EX_TEMPFAIL: the platform may retry the step


def vms_on(host: dict, payload: dict) -> list[str]:
    vms = setting(payload, "vms")
    if isinstance(vms, list):
        return [str(vm) for vm in vms]
    count = int(setting(payload, "vm_count", 2))
    return [f"{host['name']}-vm-{i}" for i in range(1, count + 1)]


def main() -> None:
    payload = load_payload()
    host = host_of(payload)
    if not output_of(payload, "disable-compute").get("compute_disabled"):
        say("note: disable-compute did not report success; migrating anyway")
    if is_true(setting(payload, "migration_busy")):
        fail("the scheduler is busy migrating other hosts; try again later", TEMPORARY_FAILURE)
    targets = setting(payload, "migration_targets") or ["any"]
    moved = {}
    for i, vm in enumerate(vms_on(host, payload)):
        target = targets[i % len(targets)]
        say(
            f"would run: openstack server migrate --live-migration "
            f"{'' if target == 'any' else '--host ' + target + ' '}{vm}"
        )
        moved[vm] = target
    say(f"moved {len(moved)} VM(s) off {host['name']} ({host.get('ip_address')})")
    publish({"migrated_vms": sorted(moved), "targets": moved})


if __name__ == "__main__":
    main()
