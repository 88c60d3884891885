"""disable-monitoring: Silence the host's alerts for the maintenance window.

Simulated: prints what it would do. Stdlib only; runs as nobody on a
read-only root file system. Usage: python3 disable_monitoring.py '<payload json>'
"""

import hashlib

from craton_task import host_of, load_payload, publish, say, setting


def main() -> None:
    payload = load_payload()
    host = host_of(payload)
    minutes = int(setting(payload, "maintenance_window_minutes", 60))
    endpoint = setting(payload, "monitoring_url", "https://monitoring.example.invalid")
    seed = f"{payload['job'].get('id')}/{host['name']}".encode()
    silence_id = "silence-" + hashlib.sha256(seed).hexdigest()[:12]
    say(
        f"would POST {endpoint}/api/v2/silences matching instance={host.get('ip_address')} "
        f"for {minutes} minutes"
    )
    say(f"alerts of {host['name']} silenced as {silence_id} (simulated)")
    publish({"silence_id": silence_id, "window_minutes": minutes})


if __name__ == "__main__":
    main()
