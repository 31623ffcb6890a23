#!/usr/bin/env bash
# Builds the root file system of the real-Debian fixture on the host:
# `debootstrap --variant=minbase` of Debian 12 (bookworm) plus a kernel, GRUB,
# systemd as init, cloud-init and what they need, customised by
# customize-rootfs.sh, packed as a tarball the fixture installer unpacks onto
# the guest's disk. Not compressed: gunzip under TCG costs the guest more
# (50 s for this tarball) than carrying 2.5 times the bytes over its virtual
# network (19 s for fetch and unpack). Needs debootstrap and root.
#
# Usage: test/fixture-debian/build-rootfs.sh OUT.tar
# Environment: DEBIAN_MIRROR (default http://deb.debian.org/debian)
set -euo pipefail

log() { printf 'build-rootfs: %s\n' "$*"; }
die() {
	printf 'build-rootfs: ERROR: %s\n' "$*" >&2
	exit 1
}

[[ $# -eq 1 && -n $1 ]] || die "usage: $0 OUT.tar"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$1
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm

# What the real-Debian image holds on top of minbase (openssh-server: its host
# keys, made at install, are what generalisation removes and cloud-init makes anew). python3-cffi-backend:
# debootstrap's resolver does not follow the virtual package
# python3-cryptography needs (python3-cffi-backend-api-*). shim-signed and
# grub-efi-amd64-signed: Debian's signed boot chain for UEFI Secure Boot (shim
# signed by Microsoft's UEFI CA, GRUB and the kernel, which comes from
# linux-signed-amd64, signed by Debian), as in Debian's cloud images.
PACKAGES=(
	systemd-sysv udev kmod e2fsprogs iproute2
	linux-image-cloud-amd64 grub-pc grub-efi-amd64-bin dosfstools
	shim-signed grub-efi-amd64-signed
	cloud-init python3-cffi-backend openssh-server
)

[[ $EUID -eq 0 ]] || die "needs root (debootstrap, chroot)"
command -v debootstrap >/dev/null || die "needs debootstrap (apt-get install debootstrap)"

START=$SECONDS
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/debian-fixture-rootfs.XXXXXX")
ROOT=$WORK/root
cleanup() {
	# debootstrap mounts proc and sys in the target; a failure can leave them.
	if [[ -d $ROOT ]]; then
		awk -v r="$ROOT" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r |
			while read -r m; do umount -l "$m" 2>/dev/null || true; done
	fi
	rm -rf --one-file-system "$WORK"
}
trap cleanup EXIT

log "debootstrap $SUITE (minbase + ${PACKAGES[*]}) from $MIRROR into $ROOT"
if ! debootstrap --variant=minbase --include="$(
	IFS=,
	echo "${PACKAGES[*]}"
)" "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.out" 2>&1; then
	tail -n 30 "$WORK/debootstrap.out" >&2
	[[ -f $ROOT/debootstrap/debootstrap.log ]] && tail -n 30 "$ROOT/debootstrap/debootstrap.log" >&2
	die "debootstrap failed"
fi
log "debootstrap done after $((SECONDS - START)) s"

sh "$HERE/customize-rootfs.sh" "$ROOT"
ls "$ROOT"/boot/vmlinuz-* "$ROOT"/boot/initrd.img-* >/dev/null || die "no kernel or initramfs in /boot"
[[ -d $ROOT/usr/lib/grub/i386-pc ]] || die "no GRUB for BIOS (grub-pc-bin)"
[[ -d $ROOT/usr/lib/grub/x86_64-efi ]] || die "no GRUB for UEFI (grub-efi-amd64-bin)"
[[ -f $ROOT/usr/lib/shim/shimx64.efi.signed ]] || die "no signed shim (shim-signed)"
[[ -f $ROOT/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed ]] || die "no signed GRUB (grub-efi-amd64-signed)"
# The size of a PE image's certificate table (data directory entry 4 of the
# PE32+ optional header): 0 when the image carries no Authenticode signature.
pe_signature_size() {
	local pe
	pe=$(od -An -tu4 -j60 -N4 "$1" | tr -d ' ')
	od -An -tu4 -j$((pe + 24 + 144 + 4)) -N4 "$1" | tr -d ' '
}
for k in "$ROOT"/boot/vmlinuz-*; do
	[[ $(pe_signature_size "$k") -gt 0 ]] || die "kernel $k is not signed (linux-image-cloud-amd64 should come from linux-signed-amd64)"
done

mkdir -p "$(dirname "$OUT")"
TMP_OUT=$(mktemp "$OUT.partial.XXXXXX")
tar --numeric-owner --one-file-system -C "$ROOT" \
	--exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' --exclude='./run/*' --exclude='./tmp/*' \
	-cf "$TMP_OUT" .
chmod 644 "$TMP_OUT"
mv -f "$TMP_OUT" "$OUT"
log "$(du -sm "$ROOT" | cut -f1) MiB root, $(du -m "$OUT" | cut -f1) MiB tarball, built in $((SECONDS - START)) s: $OUT"
