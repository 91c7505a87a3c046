#!/usr/bin/env bash
# A private, throw-away Docker engine for the container tests (tests/containers_docker.rs).
#
#   tests/docker/dockerd.sh check        exit 0 if this machine can run the engine, else print
#                                        why on stdout and exit 2 (nothing is installed)
#   tests/docker/dockerd.sh start DIR    start dockerd on unix://DIR/docker.sock with its own
#                                        data-root, exec-root, pidfile and log (DIR/dockerd.log),
#                                        no networking, and import the image secops-busybox:test
#                                        made from busybox-static; prints DOCKER_HOST=unix://...
#   tests/docker/dockerd.sh stop DIR     remove that engine's containers, stop dockerd by its
#                                        pid (and the containerd it started), unmount leftovers
#
# It installs nothing: it needs Debian's docker.io (dockerd, docker, containerd, runc, tini)
# and busybox-static, and root. dockerd starts and stops its own containerd (no --containerd),
# so nothing else has to be running; no systemd is needed.
#
# Environment:
#   SECOPS_DOCKER_STORAGE_DRIVER  storage driver (default vfs: works on any filesystem,
#                                 including overlayfs; the image is ~2 MB so copying is cheap)
#   SECOPS_DOCKERD_WAIT           seconds to wait for the engine to answer (default 20)
#   SECOPS_BUSYBOX                the static busybox to put in the image (default /bin/busybox)
#   SECOPS_DOCKER_IMAGE           image tag (default secops-busybox:test)
set -euo pipefail

IMAGE="${SECOPS_DOCKER_IMAGE:-secops-busybox:test}"
BUSYBOX="${SECOPS_BUSYBOX:-/bin/busybox}"
WAIT="${SECOPS_DOCKERD_WAIT:-20}"
DRIVER="${SECOPS_DOCKER_STORAGE_DRIVER:-vfs}"
APPLETS="sh sleep true false cat echo head tail ls ps kill env"

die() {
    echo "dockerd.sh: $*" >&2
    exit 1
}

# The client that came with the engine if there is one (another docker CLI may be first in
# PATH; any recent one negotiates, but the packaged one is the known-good match).
docker_cli() {
    if [ -x /usr/bin/docker ]; then
        echo /usr/bin/docker
    else
        command -v docker || true
    fi
}

find_dockerd() {
    command -v dockerd || { [ -x /usr/sbin/dockerd ] && echo /usr/sbin/dockerd; } || true
}

# Print the first missing prerequisite and return 2, or return 0.
check() {
    if [ "$(id -u)" != 0 ]; then
        echo "not root: dockerd needs root"
        return 2
    fi
    if [ -z "$(find_dockerd)" ]; then
        echo "dockerd not installed (apt-get install docker.io)"
        return 2
    fi
    if [ -z "$(docker_cli)" ]; then
        echo "docker CLI not installed (apt-get install docker.io)"
        return 2
    fi
    local bin
    for bin in containerd runc; do
        if ! command -v "$bin" >/dev/null && [ ! -x "/usr/sbin/$bin" ]; then
            echo "$bin not installed (apt-get install docker.io)"
            return 2
        fi
    done
    if [ ! -x "$BUSYBOX" ]; then
        echo "$BUSYBOX not found (apt-get install busybox-static)"
        return 2
    fi
    # ldd succeeds only on a dynamic executable, which cannot run in an empty image.
    if ldd "$BUSYBOX" >/dev/null 2>&1; then
        echo "$BUSYBOX is dynamically linked (apt-get install busybox-static)"
        return 2
    fi
    return 0
}

log_tail() {
    local log="$1/dockerd.log"
    if [ -f "$log" ]; then
        # Errors first: the last lines are often grpc chatter of the shutdown.
        echo "---- errors in $log ----" >&2
        grep -E 'level=(error|fatal)|failed to start' "$log" | tail -n 10 >&2 || true
        echo "---- last 40 lines of $log ----" >&2
        tail -n 40 "$log" >&2
        echo "---- end of $log ----" >&2
    else
        echo "(no $log)" >&2
    fi
}

alive() {
    [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null
}

start() {
    local dir="$1"
    local why
    why="$(check)" || die "cannot start: $why"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd -P)"
    local sock="$dir/docker.sock"
    local host="unix://$sock"
    # sun_path is 108 bytes; containerd's socket under exec/ is longer than ours.
    [ "${#dir}" -le 60 ] || die "directory path too long for unix sockets: $dir (use a short one, e.g. under /tmp)"
    local cli dockerd
    cli="$(docker_cli)"
    dockerd="$(find_dockerd)"

    if [ -f "$dir/dockerd.pid" ] && alive "$(cat "$dir/dockerd.pid")"; then
        die "an engine already runs for $dir (pid $(cat "$dir/dockerd.pid")); stop it first"
    fi
    rm -f "$sock" "$dir/dockerd.pid"
    mkdir -p "$dir/data" "$dir/exec"
    # Our own (empty) daemon.json so that a machine-wide /etc/docker/daemon.json cannot
    # conflict with the flags below.
    echo '{}' >"$dir/daemon.json"

    local t0=$SECONDS
    # setsid: the engine outlives this script; stdio to the log so that no caller's pipe
    # stays open. dockerd starts its own containerd under DIR/exec/containerd.
    setsid "$dockerd" \
        --host "$host" \
        --config-file "$dir/daemon.json" \
        --data-root "$dir/data" \
        --exec-root "$dir/exec" \
        --pidfile "$dir/dockerd.pid" \
        --storage-driver "$DRIVER" \
        --iptables=false --ip-forward=false --ip-masq=false --bridge=none \
        --shutdown-timeout 2 \
        </dev/null >"$dir/dockerd.log" 2>&1 &
    local pid=$!
    echo "$pid" >"$dir/dockerd.launch.pid"

    local deadline=$((SECONDS + WAIT))
    until "$cli" -H "$host" version >/dev/null 2>&1; do
        if ! alive "$pid"; then
            log_tail "$dir"
            die "dockerd (pid $pid) exited before answering on $host"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            log_tail "$dir"
            kill -TERM "$pid" 2>/dev/null || true
            die "dockerd (pid $pid) did not answer on $host within ${WAIT}s"
        fi
        sleep 0.2
    done
    echo "dockerd.sh: engine up on $host in $((SECONDS - t0))s (pid $pid, storage driver $DRIVER, API $("$cli" -H "$host" version --format '{{.Server.APIVersion}}'))" >&2

    # A minimal image: static busybox and the applets the tests use.
    local rootfs="$dir/rootfs"
    rm -rf "$rootfs"
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/etc" "$rootfs/proc" "$rootfs/sys" "$rootfs/dev"
    cp "$BUSYBOX" "$rootfs/bin/busybox"
    local a
    for a in $APPLETS; do
        ln -s busybox "$rootfs/bin/$a"
    done
    tar -C "$rootfs" -cf "$dir/rootfs.tar" . || die "cannot pack $rootfs"
    if ! "$cli" -H "$host" import "$dir/rootfs.tar" "$IMAGE" >/dev/null 2>"$dir/import.err"; then
        cat "$dir/import.err" >&2
        log_tail "$dir"
        die "docker import of $IMAGE failed"
    fi
    # Prove that containers really run (runc, cgroups, storage driver).
    local out
    if ! out="$("$cli" -H "$host" run --rm --network none "$IMAGE" echo secops-ok 2>&1)" || [ "$out" != secops-ok ]; then
        echo "$out" >&2
        log_tail "$dir"
        die "a test container does not run on this engine"
    fi
    echo "dockerd.sh: image $IMAGE imported and runs; ready in $((SECONDS - t0))s" >&2
    echo "DOCKER_HOST=$host"
}

stop() {
    local dir="$1"
    [ -d "$dir" ] || return 0
    dir="$(cd "$dir" && pwd -P)"
    local host="unix://$dir/docker.sock"
    local cli
    cli="$(docker_cli)"
    local pid=""
    if [ -f "$dir/dockerd.pid" ]; then
        pid="$(cat "$dir/dockerd.pid")"
    elif [ -f "$dir/dockerd.launch.pid" ]; then
        pid="$(cat "$dir/dockerd.launch.pid")"
    fi
    local cpid=""
    [ -f "$dir/exec/containerd/containerd.pid" ] && cpid="$(cat "$dir/exec/containerd/containerd.pid")"

    if alive "$pid"; then
        # Containers first: dockerd would otherwise wait for each on shutdown, and shims
        # would outlive it.
        if [ -n "$cli" ]; then
            local ids
            ids="$(timeout 10 "$cli" -H "$host" ps -aq 2>/dev/null || true)"
            if [ -n "$ids" ]; then
                # shellcheck disable=SC2086
                timeout 20 "$cli" -H "$host" rm -f $ids >/dev/null 2>&1 || true
            fi
        fi
        kill -TERM "$pid" 2>/dev/null || true
        local i
        for i in $(seq 1 75); do
            alive "$pid" || break
            sleep 0.2
        done
        if alive "$pid"; then
            echo "dockerd.sh: dockerd (pid $pid) still running after 15s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
            sleep 0.5
        fi
    fi
    # The containerd that dockerd started stops with it; make sure, by its own pid.
    if alive "$cpid"; then
        kill -TERM "$cpid" 2>/dev/null || true
        sleep 1
        alive "$cpid" && kill -KILL "$cpid" 2>/dev/null || true
    fi
    # Shims of containers that were not removed (after a kill -9 of dockerd), by their pid.
    local shim
    for shim in /proc/[0-9]*; do
        if tr '\0' ' ' <"$shim/cmdline" 2>/dev/null | grep -qF -- "-address $dir/exec/containerd/containerd.sock"; then
            kill -KILL "${shim#/proc/}" 2>/dev/null || true
        fi
    done
    # Mounts left under DIR (shm, overlay, netns), deepest first.
    local m
    for m in $(awk '{print $2}' /proc/mounts | grep -F "$dir/" | sort -r || true); do
        umount -l "$m" 2>/dev/null || true
    done
    rm -f "$dir/docker.sock"
    echo "dockerd.sh: engine in $dir stopped" >&2
}

case "${1:-}" in
check)
    check
    ;;
start)
    [ -n "${2:-}" ] || die "usage: $0 start DIR"
    start "$2"
    ;;
stop)
    [ -n "${2:-}" ] || die "usage: $0 stop DIR"
    stop "$2"
    ;;
*)
    echo "usage: $0 check | start DIR | stop DIR" >&2
    exit 64
    ;;
esac
