#!/usr/bin/env bash
# Builds the real-Debian fixture used by the boot-test end-to-end tests:
#   OUTDIR/vmlinuz        the small fixture's kernel (Debian's cloud kernel)
#   OUTDIR/initrd.gz      the small fixture's initrd with an overlay appended
#                         (the kernel unpacks concatenated archives in order)
#                         that holds test/fixture-debian/init as /init
#   OUTDIR/rootfs.tar     Debian 12 made by debootstrap on the host
#                         (build-rootfs.sh), which the installer unpacks
#   OUTDIR/stamp, OUTDIR/rootfs.stamp
#                         sha256 of the scripts each was made from (line 1)
# Each part is rebuilt only when its scripts changed; the small fixture is
# built (or reused) in BASEDIR (default: OUTDIR/../fixture). Needs root,
# debootstrap, and `apt-get update` to have been run once.
#
# Usage: test/fixture-debian/build-fixture-debian.sh OUTDIR [BASEDIR]
set -euo pipefail

log() { printf 'build-fixture-debian: %s\n' "$*"; }
die() {
	printf 'build-fixture-debian: ERROR: %s\n' "$*" >&2
	exit 1
}

[[ $# -ge 1 && -n $1 ]] || die "usage: $0 OUTDIR [BASEDIR]"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)
BASEDIR=${2:-$(dirname "$OUTDIR")/fixture}

hash_of() { (cd "$HERE" && sha256sum "$@" | sha256sum | cut -d' ' -f1); }
stamp_is() { [[ -f $1 ]] && [[ $(head -n1 "$1") == "$2" ]]; }

exec 9>"$OUTDIR/.lock"
flock 9

# ------------------------------------------------------------- the small fixture
bash "$HERE/../fixture/build-fixture.sh" "$BASEDIR" >&2
BASE_HASH=$(head -n1 "$BASEDIR/stamp")

# ------------------------------------------------------------------- root fs
ROOTFS_HASH=$(hash_of build-rootfs.sh customize-rootfs.sh)
if [[ -f $OUTDIR/rootfs.tar ]] && stamp_is "$OUTDIR/rootfs.stamp" "$ROOTFS_HASH"; then
	log "root file system up to date: $OUTDIR/rootfs.tar"
else
	START=$SECONDS
	rm -f "$OUTDIR/rootfs.stamp" "$OUTDIR/rootfs.tar.gz"
	bash "$HERE/build-rootfs.sh" "$OUTDIR/rootfs.tar"
	{
		echo "$ROOTFS_HASH"
		echo "# sha256 of test/fixture-debian/{build-rootfs.sh,customize-rootfs.sh}; built $(date -u +%FT%TZ) in $((SECONDS - START)) s"
	} >"$OUTDIR/rootfs.stamp"
fi

# ----------------------------------------------------------------- installer
INSTALLER_HASH=$( (hash_of build-fixture-debian.sh init && echo "$BASE_HASH") | sha256sum | cut -d' ' -f1)
if [[ -f $OUTDIR/vmlinuz && -f $OUTDIR/initrd.gz ]] && stamp_is "$OUTDIR/stamp" "$INSTALLER_HASH"; then
	log "installer up to date: $OUTDIR (stamp $INSTALLER_HASH)"
	exit 0
fi

for tool in cpio gzip; do
	command -v "$tool" >/dev/null || die "needs $tool"
done
START=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/fixture-debian-build.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
ROOT=$WORK/overlay
mkdir -p "$ROOT"
install -m 755 "$HERE/init" "$ROOT/init"

(cd "$ROOT" && find . -mindepth 1 -printf '%P\n' | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -6 -n >"$WORK/overlay.cpio.gz"
cat "$BASEDIR/initrd.gz" "$WORK/overlay.cpio.gz" >"$WORK/initrd.gz"
cp "$BASEDIR/vmlinuz" "$WORK/vmlinuz"
{
	echo "$INSTALLER_HASH"
	echo "# sha256 of test/fixture-debian/{build-fixture-debian.sh,init} and the small fixture's stamp; built $(date -u +%FT%TZ)"
	sed -n 2,3p "$BASEDIR/stamp"
} >"$WORK/stamp"
chmod 644 "$WORK/initrd.gz" "$WORK/vmlinuz" "$WORK/stamp"
rm -f "$OUTDIR/stamp"
mv -f "$WORK/vmlinuz" "$OUTDIR/vmlinuz"
mv -f "$WORK/initrd.gz" "$OUTDIR/initrd.gz"
mv -f "$WORK/stamp" "$OUTDIR/stamp"
log "installer built in $((SECONDS - START)) s: initrd.gz $(du -k "$OUTDIR/initrd.gz" | cut -f1) KiB"
