#!/usr/bin/env bash
# The mmdebstrap customize hook of scripts/v2/rig.sh build:
#   guest-setup.sh ROOTFS PUBKEY
# Configures the guest image: fstab (root + the 9p share at /mnt/host), DHCP on
# qemu's user-mode NIC, root ssh by key only, serial autologin, no timers.
# It writes into ROOTFS only, never to the host.
set -euo pipefail
R=$1 PUB=$2

echo v2guest > "$R/etc/hostname"
printf '127.0.0.1 localhost\n127.0.1.1 v2guest\n' > "$R/etc/hosts"
cat > "$R/etc/fstab" <<'FSTAB'
/dev/vda  /          ext4  rw,relatime,errors=remount-ro  0 1
host      /mnt/host  9p    trans=virtio,version=9p2000.L,msize=262144,nofail,x-systemd.device-timeout=10s  0 0
FSTAB
mkdir -p "$R/mnt/host"

# qemu user-mode NIC, DHCP through systemd-networkd (the guest has no route
# anywhere: restrict=on), without waiting for "online" at boot.
mkdir -p "$R/etc/systemd/network"
printf '[Match]\nName=en* eth*\n[Network]\nDHCP=ipv4\n' > "$R/etc/systemd/network/10-user.network"
chroot "$R" systemctl enable systemd-networkd.service >/dev/null 2>&1
chroot "$R" systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1
printf 'nameserver 10.0.2.3\n' > "$R/etc/resolv.conf"

install -d -m 700 "$R/root/.ssh"
install -m 600 "$PUB" "$R/root/.ssh/authorized_keys"
printf 'UseDNS no\nPermitRootLogin prohibit-password\n' > "$R/etc/ssh/sshd_config.d/v2rig.conf"

# `rig.sh console`: root logs in on the serial console without a password.
mkdir -p "$R/etc/systemd/system/serial-getty@ttyS0.service.d"
cat > "$R/etc/systemd/system/serial-getty@ttyS0.service.d/autologin.conf" <<'GETTY'
[Service]
ExecStart=
ExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM
GETTY
passwd -R "$R" -d root >/dev/null

# Nothing runs behind the tests' back; logs stay in memory (journalctl works).
for t in apt-daily.timer apt-daily-upgrade.timer fstrim.timer e2scrub_all.timer; do
    chroot "$R" systemctl mask "$t" >/dev/null 2>&1 || true
done
mkdir -p "$R/etc/systemd/journald.conf.d"
printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' > "$R/etc/systemd/journald.conf.d/v2rig.conf"
date -u +%FT%TZ > "$R/etc/v2rig-build"
# The image was built without docs, man pages and locales (smaller, faster);
# packages installed later (tepui's, in the tests) install whole.
rm -f "$R/etc/dpkg/dpkg.cfg.d/99mmdebstrap"
