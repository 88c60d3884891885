"""reboot: Reboot the host into the new kernel (out-of-band address from `bmc_address`).

Simulated: prints what it would do. Stdlib only; runs as nobody on a
read-only root file system. Usage: python3 reboot.py '<payload json>'
"""

import time

from craton_task import host_of, load_payload, output_of, publish, say, setting


def main() -> None:
    payload = load_payload()
    host = host_of(payload)
    bmc = setting(payload, "bmc_address", f"{host['name']}-bmc")
    kernel = output_of(payload, "patch").get("kernel_after") or "the current kernel"
    say(f"would run: ipmitool -H {bmc} chassis power cycle   # {host['name']}")
    wait = min(float(setting(payload, "simulate_reboot_seconds", 0)), 30.0)
    if wait > 0:
        say(f"waiting {wait:g}s for {host['name']} to come back")
        time.sleep(wait)
    say(f"{host['name']} ({host.get('ip_address')}) is back, booted {kernel} (simulated)")
    publish({"rebooted": True, "booted_kernel": kernel})


if __name__ == "__main__":
    main()
