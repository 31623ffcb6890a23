#!/usr/bin/env bash
# Fetches the real debian-installer netboot kernel and initrd of one Debian
# release from Debian's archive, as the package debian-installer-N-netboot-amd64
# ships them (the same files as dists/<codename>/main/installer-amd64/current/
# images/netboot/debian-installer/amd64/, which the archive here does not serve):
#   OUTDIR/linux      the installer's kernel
#   OUTDIR/initrd.gz  its initrd (text frontend)
#   OUTDIR/stamp      package name and version, and the sha256 of this script
# The package comes from `apt-get download` where the host's apt sources name
# the release; otherwise from the archive's pool by the path in the release's
# Packages index, checked against the index's SHA-256. (The index is not
# checked against the signed InRelease: the archive here serves an InRelease
# newer than its Packages files, and no by-hash/ copies.) If OUTDIR already holds the files fetched by
# this script, exits 0 at once. Concurrent runs into one OUTDIR are serialised
# with flock.
#
# Usage: test/real-installer/fetch-debian-installer.sh OUTDIR 12|13
set -euo pipefail

log() { printf 'fetch-debian-installer: %s\n' "$*"; }
die() {
	printf 'fetch-debian-installer: ERROR: %s\n' "$*" >&2
	exit 1
}

[[ $# -eq 2 && -n $1 ]] || die "usage: $0 OUTDIR 12|13"
case "$2" in
12) CODENAME=bookworm ;;
13) CODENAME=trixie ;;
*) die "unknown Debian release '$2' (12 or 13)" ;;
esac
RELEASE=$2
PACKAGE=debian-installer-$RELEASE-netboot-amd64
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
INNER=usr/lib/debian-installer/images/$RELEASE/amd64/text/debian-installer/amd64
HASH=$(sha256sum "${BASH_SOURCE[0]}" | cut -d' ' -f1)

mkdir -p "$1"
OUTDIR=$(cd "$1" && pwd)

is_current() {
	[[ -f $OUTDIR/linux && -f $OUTDIR/initrd.gz && -f $OUTDIR/stamp ]] &&
		[[ $(head -n1 "$OUTDIR/stamp") == "$HASH" ]]
}

if is_current; then
	log "up to date: $OUTDIR ($(sed -n 2p "$OUTDIR/stamp"))"
	exit 0
fi
exec 9>"$OUTDIR/.lock"
flock 9
if is_current; then
	log "up to date: $OUTDIR (fetched concurrently)"
	exit 0
fi

for tool in dpkg-deb tar sha256sum curl xz flock; do
	command -v "$tool" >/dev/null || die "needs $tool"
done
WORK=$(mktemp -d "$OUTDIR/.fetch.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
START=$SECONDS

# The deb by apt-get where apt knows it (apt verifies it), else from the pool.
from_apt() {
	(cd "$WORK" && apt-get download -q "$PACKAGE" >/dev/null 2>&1) || return 1
	DEB=$(ls "$WORK"/"$PACKAGE"_*.deb)
	VERSION=$(dpkg-deb --field "$DEB" Version)
	log "apt-get download $PACKAGE: version $VERSION"
}

from_pool() {
	local index=main/binary-all/Packages.xz stanza file sum
	curl -sfS -o "$WORK/Packages.xz" "$MIRROR/dists/$CODENAME/$index" || die "cannot fetch $CODENAME's $index"
	stanza=$(xz -dc "$WORK/Packages.xz" | awk -v p="$PACKAGE" '$0 == "Package: " p { s = 1 } s && /^$/ { s = 0 } s')
	[[ -n $stanza ]] || die "$CODENAME's index has no package $PACKAGE"
	file=$(sed -n 's/^Filename: //p' <<<"$stanza")
	sum=$(sed -n 's/^SHA256: //p' <<<"$stanza")
	VERSION=$(sed -n 's/^Version: //p' <<<"$stanza")
	log "downloading $file ($(sed -n 's/^Size: //p' <<<"$stanza") bytes) from $CODENAME's pool"
	DEB=$WORK/${file##*/}
	curl -sfS -o "$DEB" "$MIRROR/$file" || die "cannot fetch $file"
	echo "$sum  $DEB" | sha256sum -c --quiet - || die "$file does not match its index checksum"
}

from_apt || from_pool
dpkg-deb --fsys-tarfile "$DEB" | tar -x -C "$WORK" "./$INNER/linux" "./$INNER/initrd.gz" ||
	die "$DEB holds no $INNER/{linux,initrd.gz}"
mv "$WORK/$INNER/linux" "$WORK/$INNER/initrd.gz" "$OUTDIR/"
printf '%s\n%s %s\n' "$HASH" "$PACKAGE" "$VERSION" >"$OUTDIR/stamp"
log "fetched $PACKAGE $VERSION into $OUTDIR in $((SECONDS - START)) s"
