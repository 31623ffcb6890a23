#!/bin/sh
# Turns a fresh `debootstrap --variant=minbase` root of Debian 12 into what
# Debian's cloud images ship: serial console on the kernel command line, a
# short boot menu, cloud-init limited to the NoCloud datasource, networking by
# systemd-networkd (cloud-init renders its configuration), no machine-id, no
# package lists or caches. Run by build-rootfs.sh on the host.
#
# Usage: customize-rootfs.sh ROOT
set -eu

R=${1:?usage: customize-rootfs.sh ROOT}
chroot "$R" test -x /sbin/init || { echo "customize-rootfs: $R has no /sbin/init (systemd-sysv missing?)" >&2; exit 1; }

# Boot loader defaults (read by update-grub inside the installed system).
mkdir -p "$R/etc/default/grub.d"
cat > "$R/etc/default/grub.d/50-image-factory-fixture.cfg" <<'EOF'
# Debian cloud image style: kernel and boot loader on the serial console.
GRUB_TIMEOUT=0
GRUB_TIMEOUT_STYLE=hidden
GRUB_CMDLINE_LINUX_DEFAULT=""
GRUB_CMDLINE_LINUX="console=tty0 console=ttyS0,115200"
GRUB_TERMINAL="console serial"
GRUB_SERIAL_COMMAND="serial --speed=115200"
GRUB_DISABLE_OS_PROBER=true
EOF

# cloud-init: only the NoCloud seed (a disk labelled cidata), then None.
mkdir -p "$R/etc/cloud/cloud.cfg.d"
cat > "$R/etc/cloud/cloud.cfg.d/90-image-factory-fixture.cfg" <<'EOF'
datasource_list: [ NoCloud, None ]
EOF

# Networking: systemd-networkd, configured by cloud-init (its networkd renderer).
chroot "$R" systemctl enable systemd-networkd.service >/dev/null 2>&1 ||
	chroot "$R" systemctl enable systemd-networkd.service

echo debian > "$R/etc/hostname"
cat > "$R/etc/hosts" <<'EOF'
127.0.0.1	localhost
127.0.1.1	debian

::1	localhost ip6-localhost ip6-loopback
ff02::1	ip6-allnodes
ff02::2	ip6-allrouters
EOF

# First boot, on the serial console: the machine ID systemd made and the SSH
# host keys cloud-init made (its ssh module runs in cloud-init.service), in one
# line printed before cloud-final, so before the boot test's marker.
cat > "$R/usr/local/sbin/image-factory-fixture-identity" <<'EOF'
#!/bin/sh
n=0
keys=
for k in /etc/ssh/ssh_host_*_key.pub; do
	[ -f "$k" ] || continue
	n=$((n + 1))
	keys="$keys $(ssh-keygen -lf "$k" | awk '{ print $NF ":" $2 }')"
done
printf '\nfixture-firstboot: machine-id=%s ssh-host-keys=%d%s\n' "$(cat /etc/machine-id 2>/dev/null)" "$n" "$keys" > /dev/ttyS0
EOF
chmod 755 "$R/usr/local/sbin/image-factory-fixture-identity"
cat > "$R/etc/systemd/system/image-factory-fixture-identity.service" <<'EOF'
[Unit]
Description=Print the machine ID and SSH host keys on the serial console (image-factory fixture)
After=cloud-init.service cloud-config.service systemd-machine-id-commit.service
Before=cloud-final.service

[Service]
Type=oneshot
ExecStart=/usr/local/sbin/image-factory-fixture-identity

[Install]
WantedBy=multi-user.target
EOF
chroot "$R" systemctl enable image-factory-fixture-identity.service >/dev/null 2>&1 ||
	chroot "$R" systemctl enable image-factory-fixture-identity.service

# A golden image has no identity: systemd makes a machine-id at first boot.
: > "$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
: > "$R/etc/resolv.conf"

# Slim, as Debian's own minimal images: no documentation or translations.
cat > "$R/etc/dpkg/dpkg.cfg.d/01-image-factory-fixture-nodoc" <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-include=/usr/share/locale/locale.alias
EOF
find "$R/usr/share/doc" -mindepth 1 ! -name copyright ! -type d -exec rm -f {} + 2>/dev/null || true
rm -rf "$R/usr/share/man" "$R/usr/share/info"
find "$R/usr/share/locale" -mindepth 1 -maxdepth 1 ! -name locale.alias -exec rm -rf {} + 2>/dev/null || true

chroot "$R" apt-get clean >/dev/null 2>&1 || rm -f "$R"/var/cache/apt/archives/*.deb
rm -rf "$R"/var/lib/apt/lists/* "$R"/var/cache/apt/*.bin
rm -f "$R"/var/log/*.log "$R"/var/log/apt/* "$R"/var/log/alternatives.log
exit 0
