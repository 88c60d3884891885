#!/usr/bin/env bash
# Build the local base images craton-wf's tests, examples and demo use.
#
# No image can be pulled on this machine, so the bases are made from Debian
# packages and loaded with `docker import`:
#
#   craton/busybox:latest  busybox-static's /bin/busybox plus its applet
#                          symlinks, /tmp (1777), root and nobody (65534).
#                          Built in a couple of seconds; what tests use.
#   craton/python-task:3   craton/python:3 plus examples/lib/craton_task.py
#   craton/python:3        a debootstrap'ed bookworm minbase with python3
#                          (the full stdlib: python3-minimal lacks json) and
#                          ca-certificates, apt caches and docs removed.
#
# Idempotent: an image that already exists is left alone (--force rebuilds),
# so a second run only asks the engine and returns.
#
# Usage: scripts/make-base-images.sh [--only busybox|python] [--force]
# Env:   CRATON_DEBIAN_MIRROR  the Debian mirror for debootstrap (default: the
#                              bookworm entry of /etc/apt/sources.list{,.d/*})
set -euo pipefail

readonly BUSYBOX_IMAGE="craton/busybox:latest"
readonly PYTHON_IMAGE="craton/python:3"
readonly PYTHON_TASK_IMAGE="craton/python-task:3"
readonly DEBIAN_SUITE="bookworm"
readonly FALLBACK_MIRROR="http://deb.debian.org/debian"
readonly IMAGE_PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

ONLY=""
FORCE=0
WORKDIR=""
APT_UPDATED=0

log() { echo "make-base-images: $*" >&2; }
die() {
    echo "make-base-images: ERROR: $*" >&2
    exit 1
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

parse_args() {
    while (($#)); do
        case "$1" in
            --only)
                [[ $# -ge 2 ]] || die "--only needs a value: busybox or python"
                ONLY="$2"
                shift 2
                ;;
            --only=*)
                ONLY="${1#--only=}"
                shift
                ;;
            --force)
                FORCE=1
                shift
                ;;
            -h | --help)
                usage
                exit 0
                ;;
            *) die "unknown argument '$1' (see --help)" ;;
        esac
    done
    case "$ONLY" in
        "" | busybox | python) ;;
        *) die "--only takes busybox or python, not '$ONLY'" ;;
    esac
}

cleanup() {
    if [[ -n "$WORKDIR" && -d "$WORKDIR" ]]; then
        # debootstrap unmounts what it mounted; --one-file-system guards against
        # a leftover /proc or /sys mount if it was killed halfway.
        rm -rf --one-file-system "$WORKDIR" || log "could not remove $WORKDIR"
    fi
}

now() { date +%s.%N; }
elapsed_since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'; }

image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

should_build() {
    local image="$1"
    if ((FORCE == 0)) && image_exists "$image"; then
        log "$image already exists (use --force to rebuild)"
        return 1
    fi
    return 0
}

check_docker() {
    command -v docker >/dev/null || die "the docker CLI is not installed"
    docker version --format '{{.Server.Version}}' >/dev/null 2>&1 ||
        die "the Docker engine is unreachable (is dockerd running? DOCKER_HOST=${DOCKER_HOST:-unset})"
}

package_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

ensure_package() {
    local package="$1"
    package_installed "$package" && return 0
    [[ $(id -u) -eq 0 ]] || die "$package is missing and installing it needs root (apt-get install $package)"
    log "installing $package"
    if ((APT_UPDATED == 0)); then
        apt-get update -qq || die "apt-get update failed"
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null ||
        die "apt-get install $package failed"
}

# First URI of a one-line-style "deb [opts] URI bookworm ..." entry.
mirror_from_list_file() {
    awk -v suite="$DEBIAN_SUITE" '
        $1 == "deb" {
            i = 2
            if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
            if ($(i + 1) == suite) { print $i; exit }
        }' "$1"
}

# First URI of a deb822 stanza whose Suites list bookworm itself.
mirror_from_sources_file() {
    awk -v suite="$DEBIAN_SUITE" '
        BEGIN { RS = ""; FS = "\n" }
        {
            uris = ""; suites = ""
            for (j = 1; j <= NF; j++) {
                if ($j ~ /^URIs:/) uris = $j
                if ($j ~ /^Suites:/) suites = $j
            }
            sub(/^Suites:/, "", suites)
            n = split(suites, names, /[ \t]+/)
            for (k = 1; k <= n; k++) if (names[k] == suite && uris != "") {
                sub(/^URIs:[ \t]*/, "", uris); split(uris, first, /[ \t]+/); print first[1]; exit
            }
        }' "$1"
}

debian_mirror() {
    if [[ -n "${CRATON_DEBIAN_MIRROR:-}" ]]; then
        echo "$CRATON_DEBIAN_MIRROR"
        return
    fi
    local file mirror
    for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -r "$file" ]] || continue
        mirror="$(mirror_from_list_file "$file")"
        [[ -n "$mirror" ]] && { echo "$mirror"; return; }
    done
    for file in /etc/apt/sources.list.d/*.sources; do
        [[ -r "$file" ]] || continue
        mirror="$(mirror_from_sources_file "$file")"
        [[ -n "$mirror" ]] && { echo "$mirror"; return; }
    done
    log "no $DEBIAN_SUITE entry in the apt sources, using $FALLBACK_MIRROR"
    echo "$FALLBACK_MIRROR"
}

write_accounts() {
    local etc="$1/etc"
    mkdir -p "$etc"
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
        'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$etc/passwd"
    printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$etc/group"
}

make_busybox_rootfs() {
    local rootfs="$1" busybox="/bin/busybox" applet
    [[ -x "$busybox" ]] || die "$busybox is missing although busybox-static is installed"
    mkdir -p "$rootfs"/{bin,sbin,usr/bin,usr/sbin,etc,root,proc,sys,dev,tmp,var/tmp}
    chmod 1777 "$rootfs/tmp" "$rootfs/var/tmp"
    cp "$busybox" "$rootfs/bin/busybox"
    while read -r applet; do
        applet="${applet#/}" # --list-full prints paths without the leading slash
        [[ -n "$applet" && "$applet" != "bin/busybox" ]] || continue
        mkdir -p "$rootfs/$(dirname "$applet")"
        ln -sf /bin/busybox "$rootfs/$applet"
    done < <("$busybox" --list-full)
    [[ -L "$rootfs/bin/sh" ]] || die "busybox has no sh applet"
    write_accounts "$rootfs"
}

import_rootfs() {
    local rootfs="$1" image="$2" cmd="$3"
    tar --numeric-owner --exclude='./dev/*' --exclude='./proc/*' --exclude='./sys/*' \
        -C "$rootfs" -c . |
        docker import \
            --change "ENV PATH=$IMAGE_PATH" \
            --change "ENV LANG=C.UTF-8" \
            --change "CMD $cmd" \
            - "$image" >/dev/null ||
        die "docker import of $image failed"
}

build_busybox() {
    should_build "$BUSYBOX_IMAGE" || return 0
    local start
    start="$(now)"
    ensure_package busybox-static
    make_busybox_rootfs "$WORKDIR/busybox"
    import_rootfs "$WORKDIR/busybox" "$BUSYBOX_IMAGE" '["/bin/sh"]'
    log "built $BUSYBOX_IMAGE in $(elapsed_since "$start")s"
}

clean_python_rootfs() {
    local rootfs="$1"
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/* "$rootfs"/usr/share/doc/* \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/tmp/* \
        "$rootfs"/debootstrap
    # Craton's own examples call "python /craton/task.py".
    [[ -e "$rootfs/usr/bin/python" ]] || ln -s python3 "$rootfs/usr/bin/python"
    chmod 1777 "$rootfs/tmp"
}

build_python() {
    should_build "$PYTHON_IMAGE" || return 0
    local start step mirror rootfs="$WORKDIR/python"
    start="$(now)"
    ensure_package debootstrap
    mirror="$(debian_mirror)"
    log "debootstrap $DEBIAN_SUITE minbase from $mirror (takes a minute or two)"
    step="$(now)"
    debootstrap --variant=minbase --include=python3,ca-certificates \
        "$DEBIAN_SUITE" "$rootfs" "$mirror" >"$WORKDIR/debootstrap.log" 2>&1 || {
        tail -n 20 "$WORKDIR/debootstrap.log" >&2
        die "debootstrap failed (log above)"
    }
    log "debootstrap done in $(elapsed_since "$step")s"
    chroot "$rootfs" python3 -c 'import json, ssl' || die "python3 in the new rootfs does not work"
    clean_python_rootfs "$rootfs"
    step="$(now)"
    import_rootfs "$rootfs" "$PYTHON_IMAGE" '["python3"]'
    log "docker import done in $(elapsed_since "$step")s"
    log "built $PYTHON_IMAGE in $(elapsed_since "$start")s"
}

build_python_task() {
    # The Python base plus the craton_task helper module of examples/lib.
    should_build "$PYTHON_TASK_IMAGE" || return 0
    local lib
    lib="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/examples/lib"
    docker build -q -t "$PYTHON_TASK_IMAGE" --build-arg "BASE_IMAGE=$PYTHON_IMAGE" "$lib" >/dev/null \
        || die "docker build of $PYTHON_TASK_IMAGE failed"
    log "built $PYTHON_TASK_IMAGE"
}

main() {
    parse_args "$@"
    check_docker
    WORKDIR="$(mktemp -d -t craton-base-images.XXXXXX)"
    trap cleanup EXIT
    local start
    start="$(now)"
    if [[ "$ONLY" != "python" ]]; then build_busybox; fi
    if [[ "$ONLY" != "busybox" ]]; then
        build_python
        build_python_task
    fi
    log "done in $(elapsed_since "$start")s"
}

main "$@"
