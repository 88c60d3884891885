#!/usr/bin/env bash
# Build the craton-wf service image from the Dockerfile, offline.
#
# The dependencies are fetched on this host (`pip wheel`, which may use the
# package index and pip's cache) into build/service-wheels inside the build
# context, at the versions of constraints.txt (those the tests pass with); the
# image then installs from those wheels alone, so the build needs no network
# and no pip in the base image. The base defaults to craton/python:3,
# made by scripts/make-base-images.sh when it is missing.
#
# Rebuilding is skipped when the image already carries the same source hash:
# a hash of the Dockerfile, .dockerignore, pyproject.toml, constraints.txt,
# README.md, craton_wf/, migrations/ and the base image's id. The wheels are
# fetched again, and the image's dependency layer rebuilt, only when the
# dependencies in pyproject.toml or their constraints changed.
#
# Prints the image reference on the last line of stdout.
#
# Usage: scripts/build-service-image.sh [--base IMAGE] [--tag IMAGE] [--force]
# Env:   CRATON_WF_BASE_IMAGE  the base image (default craton/python:3)
set -euo pipefail
cd "$(dirname "$0")/.."

readonly DEFAULT_BASE="craton/python:3"
readonly WHEEL_DIR="build/service-wheels"
readonly HASH_LABEL="craton.source-hash"

BASE="${CRATON_WF_BASE_IMAGE:-$DEFAULT_BASE}"
TAG=""
FORCE=0

log() { echo "build-service-image: $*" >&2; }
die() {
    echo "build-service-image: ERROR: $*" >&2
    exit 1
}
now() { date +%s.%N; }
elapsed_since() { awk -v start="$1" -v end="$(now)" 'BEGIN { printf "%.1f", end - start }'; }

while (($#)); do
    case "$1" in
        --base) BASE="${2:?--base needs an image}"; shift 2 ;;
        --tag) TAG="${2:?--tag needs an image reference}"; shift 2 ;;
        --force) FORCE=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument '$1' (see --help)" ;;
    esac
done

version="$(python3 -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')"
TAG="${TAG:-craton/craton-wf:$version}"

docker version --format '{{.Server.Version}}' >/dev/null 2>&1 || die "the Docker engine is unreachable"

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
    [[ "$BASE" == "$DEFAULT_BASE" ]] || die "base image $BASE does not exist"
    log "making $BASE"
    scripts/make-base-images.sh --only python >&2
fi
base_id="$(docker image inspect --format '{{.Id}}' "$BASE")"

mkdir -p build
# One build at a time: a second caller waits, then finds the image built.
exec 9>build/service-image.lock
flock 9

source_hash="$(
    {
        echo "base $base_id"
        find Dockerfile .dockerignore pyproject.toml constraints.txt README.md craton_wf migrations \
            -type f \
            ! -path '*/__pycache__/*' ! -name '*.py[cod]' -print0 |
            LC_ALL=C sort -z | xargs -0 sha256sum
    } | sha256sum | cut -c1-32
)"

if ((FORCE == 0)) &&
    [[ "$(docker image inspect --format "{{index .Config.Labels \"$HASH_LABEL\"}}" "$TAG" 2>/dev/null)" == "$source_hash" ]]; then
    log "$TAG is up to date (source hash $source_hash)"
    echo "$TAG"
    exit 0
fi

start="$(now)"
# What the image installs: the dependencies and the postgres and kubernetes extras.
requirements="$(python3 -c 'import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
extras = project["optional-dependencies"]
print("\n".join(project["dependencies"] + extras["postgres"] + extras["kubernetes"]))')"
constraints_hash="$(sha256sum constraints.txt | cut -c1-32)"
if [[ ! -f "$WHEEL_DIR/requirements.txt" || "$(cat "$WHEEL_DIR/requirements.txt")" != "$requirements" ||
    "$(cat "$WHEEL_DIR/constraints.sha256" 2>/dev/null)" != "$constraints_hash" ]]; then
    log "fetching wheels into $WHEEL_DIR"
    rm -rf "$WHEEL_DIR"
    mkdir -p "$WHEEL_DIR"
    printf '%s\n' "$requirements" >"$WHEEL_DIR/requirements.txt.new"
    # pip, setuptools and wheel too: pip runs from its wheel inside the build,
    # and builds craton-wf from the sources with the other two.
    python3 -m pip wheel -q --disable-pip-version-check -w "$WHEEL_DIR" -c constraints.txt \
        -r "$WHEEL_DIR/requirements.txt.new" pip setuptools wheel >&2 || die "pip wheel failed"
    # Written last: a half-filled directory is fetched again next time.
    echo "$constraints_hash" >"$WHEEL_DIR/constraints.sha256"
    mv "$WHEEL_DIR/requirements.txt.new" "$WHEEL_DIR/requirements.txt"
    log "wheels ready in $(elapsed_since "$start")s"
fi

step="$(now)"
old_id="$(docker image inspect --format '{{.Id}}' "$TAG" 2>/dev/null || true)"
revision="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
log "docker build $TAG from $BASE"
DOCKER_BUILDKIT=0 docker build -q \
    --build-arg "BASE_IMAGE=$BASE" \
    --build-arg "WHEELS=$WHEEL_DIR" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    --label "$HASH_LABEL=$source_hash" \
    -t "$TAG" . >&2 || die "docker build failed"
log "docker build done in $(elapsed_since "$step")s"
new_id="$(docker image inspect --format '{{.Id}}' "$TAG")"
if [[ -n "$old_id" && "$old_id" != "$new_id" ]]; then
    # The image this tag named before; kept if a container still uses it.
    docker image rm "$old_id" >/dev/null 2>&1 || true
fi
log "built $TAG in $(elapsed_since "$start")s"
echo "$TAG"
