#!/usr/bin/env bash
# A throwaway Samba AD DC for the delegation tests and benchmark, bound to loopback only.
#   scripts/testbed/samba-ad.sh up DIR      provision into DIR (own test CA + LDAPS cert), start, wait for an LDAPS bind
#   scripts/testbed/samba-ad.sh down DIR    stop the DC started by `up` (by its PID only)
#   scripts/testbed/samba-ad.sh purge DIR   down + remove DIR
# Domain LAB.TEST (NetBIOS LAB), DC dc1, Administrator password in DIR/ad.env. Written into DIR:
#   ad.env (LDAP_URL, LDAP_CA, LDAP_BIND_USER, LDAP_PASSWORD, LDAP_BASE_DN, AD_DOMAIN, SAMBA_CONF, SAMBA_SAM),
#   tls/{ca,cert,key}.pem, tls/other-ca.pem (a CA that did not sign the DC's cert), dc/ (the provisioned
#   domain), log/, samba.pid.
# Samba's LDAP ports are fixed (636/389), so one DC per machine at a time: `up` fails if 636 is taken.
# Every Samba process runs in a private mount namespace whose /etc/resolv.conf points at 127.0.0.1 and
# whose /etc/hosts knows only dc1, so none of its name lookups leave loopback ("dns forwarder" empty).
# Needs root and the Debian packages samba samba-ad-dc samba-ad-provision winbind ldb-tools ldap-utils openssl.
# Measured recipe: ../shared/reference/ad-ssh-ansible (provision 4-10 s, start 0.3-2 s, ~110 MiB PSS).
set -euo pipefail
cmd=${1:?usage: samba-ad.sh up|down|purge DIR}; dir=${2:?DIR}
REALM=LAB.TEST; DOMAIN=LAB; DC=dc1; PASS='Passw0rd!Lab2024'
realm_lc=${REALM,,}; conf="$dir/dc/etc/smb.conf"

port636_open() { bash -c 'exec 3<>/dev/tcp/127.0.0.1/636' 2>/dev/null; }

# Run a command with /etc/resolv.conf and /etc/hosts replaced in a private mount namespace.
isolated() {
  unshare --mount --propagation private bash -c '
    mount --bind "$0/overlay/resolv.conf" /etc/resolv.conf
    mount --bind "$0/overlay/hosts" /etc/hosts
    exec "$@"' "$dir" "$@"
}

down() {
  [ -f "$dir/samba.pid" ] || return 0
  local pid; pid=$(cat "$dir/samba.pid")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  rm -f "$dir/samba.pid"
  # The children exit on their own once the parent is gone; wait until 636 is free for the next DC.
  for _ in $(seq 1 100); do port636_open || break; sleep 0.1; done
}

make_certs() {
  local d="$dir/tls"; mkdir -p "$d"
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=labctl delegation test CA" -keyout "$d/ca.key" -out "$d/ca.pem" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=some other CA" -keyout "$d/other-ca.key" -out "$d/other-ca.pem" \
    -addext basicConstraints=critical,CA:TRUE 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=$DC.$realm_lc" -keyout "$d/key.pem" -out "$d/srv.csr" 2>/dev/null
  printf 'subjectAltName=DNS:%s,DNS:%s,DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' \
    "$DC.$realm_lc" "$DC" > "$d/ext.cnf"
  openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 30 -extfile "$d/ext.cnf" \
    -out "$d/cert.pem" 2>/dev/null
  chmod 600 "$d/key.pem" "$d/ca.key" "$d/other-ca.key"
}

provision() {
  rm -rf "$dir/dc" "$dir/overlay" "$dir/tls"
  mkdir -p "$dir/overlay" "$dir/dc" "$dir/log" "$dir/run"
  chmod 700 "$dir"
  echo "nameserver 127.0.0.1" > "$dir/overlay/resolv.conf"
  printf '127.0.0.1 localhost\n127.0.0.1 %s %s\n::1 localhost ip6-localhost\n' "$DC.$realm_lc" "$DC" > "$dir/overlay/hosts"
  make_certs
  # ldb:nosync: no fsync per transaction (throwaway data; 3x faster writes).
  isolated samba-tool domain provision --targetdir="$dir/dc" --realm="$REALM" --domain="$DOMAIN" \
    --server-role=dc --dns-backend=SAMBA_INTERNAL --host-name="$DC" --host-ip=127.0.0.1 --adminpass="$PASS" \
    --option="interfaces = lo" --option="bind interfaces only = yes" --option="disable netbios = yes" \
    --option="dns forwarder = " --option="server services = -nbt -wrepl -dnsupdate -s3fs" \
    --option="log file = $dir/log/log.%m" --option="pid directory = $dir/run" \
    --option="ncalrpc dir = $dir/run/ncalrpc" --option="winbindd socket directory = $dir/run/winbindd" \
    --option="ntp signd socket directory = $dir/run/ntp_signd" --option="ldb:nosync = true" \
    --option="tls keyfile = $dir/tls/key.pem" --option="tls certfile = $dir/tls/cert.pem" \
    --option="tls cafile = $dir/tls/ca.pem" > "$dir/log/provision.log" 2>&1 || { cat "$dir/log/provision.log" >&2; exit 1; }
  umask 077
  cat > "$dir/ad.env" <<EOF
LDAP_URL=ldaps://127.0.0.1:636
LDAP_CA=$dir/tls/ca.pem
LDAP_OTHER_CA=$dir/tls/other-ca.pem
LDAP_BIND_USER=Administrator@$realm_lc
LDAP_PASSWORD=$PASS
LDAP_BASE_DN=DC=lab,DC=test
AD_DOMAIN=$realm_lc
SAMBA_CONF=$conf
SAMBA_SAM=$dir/dc/private/sam.ldb
EOF
}

case "$cmd" in
  up)
    [ "$(id -u)" = 0 ] || { echo "samba-ad.sh: needs root (Samba, ports below 1024, mount namespace)" >&2; exit 1; }
    if port636_open; then echo "samba-ad.sh: 127.0.0.1:636 is already in use (another DC running?)" >&2; exit 1; fi
    t0=$(date +%s%N)
    mkdir -p "$dir"
    [ -f "$conf" ] || provision
    t1=$(date +%s%N)
    # --maximum-runtime: the DC ends itself after an hour even if a test run forgets to stop it.
    ( exec unshare --mount --propagation private bash -c '
        mount --bind "$0/overlay/resolv.conf" /etc/resolv.conf
        mount --bind "$0/overlay/hosts" /etc/hosts
        exec samba -s "$1" -i -M standard --no-process-group --maximum-runtime=3600' "$dir" "$conf" \
        > "$dir/log/samba.stdout" 2>&1 ) &
    echo $! > "$dir/samba.pid"
    ready=""
    for _ in $(seq 1 300); do
      if LDAPTLS_CACERT="$dir/tls/ca.pem" ldapsearch -LLL -x -H ldaps://127.0.0.1 -D "Administrator@$realm_lc" -w "$PASS" \
           -b "" -s base defaultNamingContext >/dev/null 2>&1; then ready=1; break; fi
      kill -0 "$(cat "$dir/samba.pid")" 2>/dev/null || break
      sleep 0.1
    done
    if [ -z "$ready" ]; then tail -20 "$dir/log/samba.stdout" >&2; down; echo "samba-ad.sh: DC did not answer LDAPS" >&2; exit 1; fi
    t2=$(date +%s%N)
    echo "samba-ad: up pid=$(cat "$dir/samba.pid") provision_ms=$(( (t1 - t0) / 1000000 )) start_ms=$(( (t2 - t1) / 1000000 )) env=$dir/ad.env"
    ;;
  down) down ;;
  purge) down; rm -rf "$dir" ;;
  *) echo "usage: samba-ad.sh up|down|purge DIR" >&2; exit 2 ;;
esac
