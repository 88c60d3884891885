"""enable-monitoring: Remove the silence disable-monitoring created.

Simulated: prints what it would do. Stdlib only; runs as nobody on a
read-only root file system. Usage: python3 enable_monitoring.py '<payload json>'
"""

from craton_task import host_of, load_payload, output_of, publish, say, setting


def main() -> None:
    payload = load_payload()
    host = host_of(payload)
    silence_id = output_of(payload, "disable-monitoring").get("silence_id")
    endpoint = setting(payload, "monitoring_url", "https://monitoring.example.invalid")
    if silence_id:
        say(f"would DELETE {endpoint}/api/v2/silence/{silence_id}")
    else:
        say(f"no silence recorded for {host['name']}; nothing to remove")
    say(f"alerts of {host['name']} ({host.get('ip_address')}) are live again (simulated)")
    publish({"monitoring_enabled": True, "removed_silence": silence_id})


if __name__ == "__main__":
    main()
