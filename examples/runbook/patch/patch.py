"""patch: Apply the package updates; fails when the host variable `patch_should_fail` is true.

Simulated: prints what it would do. Stdlib only; runs as nobody on a
read-only root file system. Usage: python3 patch.py '<payload json>'
"""

from craton_task import fail, host_of, is_true, load_payload, publish, say, setting


def main() -> None:
    payload = load_payload()
    host = host_of(payload)
    variables = host.get("variables") or {}
    packages = setting(payload, "patch_packages", ["linux-image-amd64", "openssl"])
    target = setting(payload, "target_kernel_version", "6.1.0-99-amd64")
    say(
        f"patching {host['name']} ({host.get('ip_address')}): "
        f"kernel {variables.get('kernel_version', 'unknown')} -> {target}"
    )
    say("would run: apt-get update && apt-get install -y --only-upgrade " + " ".join(packages))
    if is_true(variables.get("patch_should_fail")):
        fail(
            f"patch failed on {host['name']}: apt-get exited 100 "
            "(simulated because patch_should_fail is set)"
        )
    publish({"patched": True, "packages": packages, "kernel_after": target})


if __name__ == "__main__":
    main()
