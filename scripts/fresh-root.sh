#!/usr/bin/env bash
# Proves the README's two set-up commands on a fresh Debian 12 that has nothing but the Swift toolchain.
# Long (each command builds the package from nothing: 40 minutes and more on 2 busy cores) and it needs
# root, debootstrap and a network namespace: run it by hand before a release, never in CI.
#
#   bash scripts/fresh-root.sh [demo|test|all]     default all: the README's first command, then its second
#
# What it does (as root, on a Debian 12 host):
#  1. Builds a minimal Debian 12 root with debootstrap (--variant=minbase) from the host's own Debian mirror
#     (read from /etc/apt/sources.list*), plus the Debian packages that the Swift toolchain itself needs at
#     run time (swift.org's list for Debian 12, less pkg-config, which the README's command must install).
#     The root is built once into $DIR/base and copied to a new $DIR/root for every run; `rm -rf $DIR` to
#     rebuild it.
#  2. Clones this repository's HEAD commit (committed work only) into /root/erp-sync in the root.
#  3. Makes the toolchain and the Swift package mirror visible inside: /opt/swift and /opt/swift-packages
#     are bind-mounted read-only, and the host's `url.*.insteadOf` git settings (which send github.com to
#     the mirror) are written to the root's /etc/gitconfig.
#  4. Runs the two commands of the README's "Two commands" block inside the root (chroot), in a network
#     namespace of its own: its 127.0.0.1 is not the host's, so it cannot use the PostgreSQL or MariaDB
#     servers running there, and the only way out is TCP to the Debian mirror's address and port, through a
#     veth pair and NAT (the mirror's name is put into the root's /etc/hosts: no DNS inside).
#  5. Prints each command's output and its time, stops whatever the commands left running in the root,
#     removes the namespace, the veth pair and the firewall rules, and restores net.ipv4.ip_forward.
#
# Environment:
#   ERP_SYNC_FRESH_DIR   where the roots and the log go (default /var/tmp/erp-sync-fresh; ~3 GB after a
#                        test run). The full output is also in $DIR/fresh-root.log.
#   ERP_SYNC_FRESH_KEEP  1: run in the root the previous run left (its packages and build), with the clone moved
#                        to this repository's HEAD, instead of a pristine copy: to run `test` after an `all` or
#                        `demo` run failed in the test command, as a user runs the second command after the first.
# Exit status: 0 when every command passed; otherwise that of the first failing command (1 for set-up).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
DIR="${ERP_SYNC_FRESH_DIR:-/var/tmp/erp-sync-fresh}"
WHAT="${1:-all}"
BASE="$DIR/base"
ROOT="$DIR/root"
LOG="$DIR/fresh-root.log"
SUITE=bookworm
NS=erp-sync-fresh
VETH_HOST=erpfresh0
VETH_NS=erpfresh1
HOST_IP=10.203.15.1
NS_IP=10.203.15.2
CHAIN=ERP_SYNC_FRESH
# What the Swift toolchain needs on Debian 12 (swift.org's install page and its debian12 Docker image),
# without pkg-config: the README's first command has to install that one itself.
TOOLCHAIN_PACKAGES=git,gcc,libc6-dev,libstdc++-12-dev,binutils,libcurl4-openssl-dev,libxml2-dev,libedit-dev,libsqlite3-dev,libncurses-dev,libpython3-dev,uuid-dev,libicu-dev,zlib1g-dev,tzdata,ca-certificates

log() { echo "fresh-root [$(date -u +%H:%M:%S)]: $*"; }
die() { log "error: $*"; exit 1; }

case "$WHAT" in demo | test | all) ;; *) die "usage: bash scripts/fresh-root.sh [demo|test|all]" ;; esac
[[ "$(id -u)" == 0 ]] || die "run as root (debootstrap, chroot, ip netns, iptables)"
command -v swift >/dev/null || die "no swift on PATH: the toolchain to make visible in the root"
TOOLCHAIN="$(dirname "$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")")"
PACKAGES_MIRROR=/opt/swift-packages
[[ -d "$PACKAGES_MIRROR" ]] || die "no Swift package mirror at $PACKAGES_MIRROR"
mkdir -p "$DIR"
exec > >(tee "$LOG") 2>&1

# The host's Debian mirror for $SUITE: the URIs of the first deb822 stanza (or one-line entry) naming it.
mirror_url() {
  local url
  url="$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk -v suite="$SUITE" 'BEGIN { RS = "" }
    { uri = ""; hit = 0; n = split($0, line, "\n")
      for (i = 1; i <= n; i++) {
        if (line[i] ~ /^URIs:/) { split(line[i], f, /[ \t]+/); uri = f[2] }
        if (line[i] ~ /^Suites:/ && (" " line[i] " ") ~ ("[ \t]" suite "[ \t]")) hit = 1
      }
      if (uri != "" && hit) { print uri; exit } }')"
  [[ -n "$url" ]] || url="$(grep -hs '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
    | awk -v suite="$SUITE" '$3 == suite { print $2; exit }')"
  [[ -n "$url" ]] || die "no Debian $SUITE mirror in /etc/apt/sources.list*"
  echo "${url%/}"
}

# Kills the processes whose root directory is $ROOT (servers the test command started), by pid.
stop_root_processes() {
  local pid pids=()
  for pid in /proc/[0-9]*; do
    [[ "$(readlink "$pid/root" 2>/dev/null)" == "$ROOT" ]] && pids+=("${pid#/proc/}")
  done
  [[ ${#pids[@]} -eq 0 ]] && return 0
  log "stopping what the commands left running in the root: pids ${pids[*]}"
  kill "${pids[@]}" 2>/dev/null || true
  sleep 3
  kill -9 "${pids[@]}" 2>/dev/null || true
}

OLD_FORWARD=""
cleanup() {
  stop_root_processes
  ip netns del "$NS" 2>/dev/null || true # takes the veth pair with it
  iptables -D FORWARD -j "$CHAIN" 2>/dev/null || true
  iptables -F "$CHAIN" 2>/dev/null || true
  iptables -X "$CHAIN" 2>/dev/null || true
  iptables -D INPUT -i "$VETH_HOST" -j DROP 2>/dev/null || true
  iptables -t nat -D POSTROUTING -s "$NS_IP/32" -j MASQUERADE 2>/dev/null || true
  [[ -n "$OLD_FORWARD" ]] && sysctl -qw "net.ipv4.ip_forward=$OLD_FORWARD"
  return 0
}

# ---- 1. the root -------------------------------------------------------------------------------------
bash "$REPO/scripts/apt-install.sh" debootstrap iptables iproute2 git
MIRROR="$(mirror_url)"
MIRROR_HOST="$(echo "$MIRROR" | sed -E 's#^[a-z]+://([^/:]+).*#\1#')"
MIRROR_PORT="$(echo "$MIRROR" | sed -nE 's#^[a-z]+://[^/:]+:([0-9]+).*#\1#p')"
[[ -n "$MIRROR_PORT" ]] || { [[ "$MIRROR" == https://* ]] && MIRROR_PORT=443 || MIRROR_PORT=80; }
MIRROR_IP="$(getent ahostsv4 "$MIRROR_HOST" | awk '{ print $1; exit }')"
[[ -n "$MIRROR_IP" ]] || die "cannot resolve $MIRROR_HOST"
log "Debian mirror $MIRROR ($MIRROR_IP:$MIRROR_PORT); toolchain $TOOLCHAIN; packages $PACKAGES_MIRROR"

if [[ ! -f "$BASE/.complete" ]]; then
  log "debootstrap $SUITE into $BASE (minbase + the toolchain's packages)"
  rm -rf "$BASE"
  started=$SECONDS
  debootstrap --variant=minbase --include="$TOOLCHAIN_PACKAGES" "$SUITE" "$BASE" "$MIRROR" >"$DIR/debootstrap.log" 2>&1 \
    || { tail -n 30 "$DIR/debootstrap.log"; die "debootstrap failed (log: $DIR/debootstrap.log)"; }
  touch "$BASE/.complete"
  log "debootstrap took $((SECONDS - started)) s"
fi
stop_root_processes
KEEP=0
if [[ "${ERP_SYNC_FRESH_KEEP:-0}" == 1 && -d "$ROOT/root/erp-sync" ]]; then
  KEEP=1
  log "reusing the root the previous run left in $ROOT (ERP_SYNC_FRESH_KEEP=1)"
else
  log "copying the pristine root to $ROOT"
  rm -rf "$ROOT"
  cp -a "$BASE" "$ROOT"
  rm -f "$ROOT/.complete"
fi

# ---- 2. the repository -------------------------------------------------------------------------------
[[ -z "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]] \
  || log "warning: $REPO has uncommitted changes; the root gets its HEAD commit only"
COMMIT="$(git -C "$REPO" rev-parse HEAD)"
[[ $KEEP == 1 ]] || git clone --quiet --no-checkout "$REPO" "$ROOT/root/erp-sync"
git -C "$ROOT/root/erp-sync" fetch --quiet "$REPO" "$COMMIT"
git -C "$ROOT/root/erp-sync" checkout --quiet "$COMMIT"
log "cloned $REPO at $(git -C "$REPO" log -1 --format='%h %s')"

# ---- 3. toolchain and package mirror -----------------------------------------------------------------
mkdir -p "$ROOT$TOOLCHAIN" "$ROOT$PACKAGES_MIRROR"
git config --system --get-regexp '^url\..*\.insteadof$' | while read -r key value; do
  git config --file "$ROOT/etc/gitconfig" --add "$key" "$value"
done
# /etc/hosts as a Debian install writes it (debootstrap leaves it empty; mariadb-install-db looks the host name
# up), plus the mirror's address: the namespace has no DNS.
printf '127.0.0.1 localhost\n127.0.1.1 %s\n::1 localhost ip6-localhost ip6-loopback\n%s %s\n' \
  "$(hostname)" "$MIRROR_IP" "$MIRROR_HOST" >"$ROOT/etc/hosts"
echo "deb $MIRROR $SUITE main" >"$ROOT/etc/apt/sources.list"
if [[ $KEEP == 0 ]]; then
  absent=()
  for package in pkg-config libmariadb-dev unixodbc-dev postgresql-15 mariadb-server; do
    chroot "$ROOT" dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null | grep -qx installed \
      && die "$package is already installed in the fresh root: it proves nothing"
    absent+=("$package")
  done
  log "not in the fresh root: ${absent[*]}"
fi

# ---- 4. the network namespace ------------------------------------------------------------------------
ip netns list | grep -qw "$NS" && die "network namespace $NS exists: another run? (ip netns del $NS)"
trap cleanup EXIT
ip netns add "$NS"
ip link add "$VETH_HOST" type veth peer name "$VETH_NS"
ip link set "$VETH_NS" netns "$NS"
ip addr add "$HOST_IP/30" dev "$VETH_HOST"
ip link set "$VETH_HOST" up
ip netns exec "$NS" ip link set lo up
ip netns exec "$NS" ip addr add "$NS_IP/30" dev "$VETH_NS"
ip netns exec "$NS" ip link set "$VETH_NS" up
ip netns exec "$NS" ip route add default via "$HOST_IP"
OLD_FORWARD="$(sysctl -n net.ipv4.ip_forward)"
sysctl -qw net.ipv4.ip_forward=1
iptables -N "$CHAIN"
iptables -A "$CHAIN" -i "$VETH_HOST" -d "$MIRROR_IP" -p tcp --dport "$MIRROR_PORT" -j ACCEPT
iptables -A "$CHAIN" -o "$VETH_HOST" -m conntrack --ctstate ESTABLISHED,RELATED -j ACCEPT
iptables -A "$CHAIN" -i "$VETH_HOST" -j DROP
iptables -A "$CHAIN" -o "$VETH_HOST" -j DROP
iptables -I FORWARD -j "$CHAIN"
iptables -I INPUT -i "$VETH_HOST" -j DROP # nothing on the host itself, its database servers included
iptables -t nat -I POSTROUTING -s "$NS_IP/32" -j MASQUERADE

# Runs one shell command line in the root, inside the namespace. `ip netns exec` gives the command a
# mount namespace of its own, so the mounts made here vanish with it.
in_root() {
  ip netns exec "$NS" bash -c '
    set -e
    root="$1" toolchain="$2" packages="$3" command="$4"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount --rbind /sys "$root/sys"
    mount --bind -o ro "$toolchain" "$root$toolchain"
    mount --bind -o ro "$packages" "$root$packages"
    exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
      PATH="$toolchain/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
      bash -c "cd /root/erp-sync && $command"' _ "$ROOT" "$TOOLCHAIN" "$PACKAGES_MIRROR" "$1"
}

log "inside: $(in_root 'swift --version 2>&1 | head -1')"
log "inside: the host's PostgreSQL port: $(in_root '(exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null && echo open || echo closed'), \
its MariaDB port: $(in_root '(exec 3<>/dev/tcp/127.0.0.1/3306) 2>/dev/null && echo open || echo closed'), \
the mirror: $(in_root "(exec 3<>/dev/tcp/$MIRROR_HOST/$MIRROR_PORT) 2>/dev/null && echo open || echo closed"), \
the host over the veth: $(in_root "timeout 5 bash -c '(exec 3<>/dev/tcp/$HOST_IP/5432)' 2>/dev/null && echo open || echo closed")"

# ---- 5. the README's two commands --------------------------------------------------------------------
mapfile -t COMMANDS < <(awk '/^## Two commands/ { section = 1; next }
  section && /^```sh/ { block = 1; next } block && /^```/ { exit }
  block { sub(/[ \t]+#.*$/, ""); if (length($0)) print }' "$ROOT/root/erp-sync/README.md")
[[ ${#COMMANDS[@]} -eq 2 ]] || die "the README's \"Two commands\" block has ${#COMMANDS[@]} commands, not 2"
case "$WHAT" in demo) COMMANDS=("${COMMANDS[0]}") ;; test) COMMANDS=("${COMMANDS[1]}") ;; esac

status=0
for command in "${COMMANDS[@]}"; do
  log "README command: $command"
  started=$SECONDS
  rc=0
  in_root "$command" || rc=$?
  log "README command: $command -> exit $rc after $((SECONDS - started)) s"
  if [[ $rc -ne 0 ]]; then status=$rc; break; fi
done
log "$([[ $status -eq 0 ]] && echo PASSED || echo FAILED) (log: $LOG)"
exit "$status"
