# Sourced by bench/run and bench/net: the bundle a bare runtime runs, and the wrapper it runs in.
# crun 1.8 refuses this machine's hybrid cgroups, so bare runtimes run inside `unshare -m` with
# the cgroup2 mount hidden (PEERS.md); the benchmarks time `$HIDE true` too and subtract it.
# shellcheck shell=bash
HIDE="unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec \"\$@\"' sh"

# bare_bundle BIN BUNDLE ROOTFS PROGRAM: an OCI bundle in BUNDLE (berth-runtime's default spec)
# that runs PROGRAM from ROOTFS, without a terminal.
bare_bundle() {
    mkdir -p "$2"
    "$1/berth-runtime" spec --bundle "$2"
    python3 - "$2/config.json" "$3" "$4" <<'PY'
import json, sys
p, root, prog = sys.argv[1:4]
c = json.load(open(p))
c["process"]["terminal"] = False
c["process"]["args"] = [prog]
c["root"]["path"] = root
json.dump(c, open(p, "w"), indent=1)
PY
}
