#!/usr/bin/env bash
# Installs the Ashyq kiosk as a systemd service on Raspberry Pi OS / Debian 12, upgrades it,
# or rolls it back:
#
#   sudo ./scripts/install.sh [--root DIR] [--no-apt] [--skip-venv] [--wheelhouse DIR]
#   sudo ./scripts/install.sh --rollback [--root DIR]
#
#   --root DIR        install into DIR instead of / (an image being built, or a test); no
#                     Debian packages are installed then, and nothing is started or reloaded
#   --no-apt          do not install missing Debian packages (only report them)
#   --skip-venv       do not build the program's virtual environment (a note is left in its
#                     place). For tests and image builds: a venv's scripts name the absolute
#                     path they were built at, so one built under --root DIR would point into
#                     DIR; build it on the device (run this again there) or inside a chroot
#   --wheelhouse DIR  offline: install the kiosk's wheel and its pinned dependencies from DIR
#                     only (pip --no-index --find-links DIR), never from the network. DIR is
#                     made by scripts/wheelhouse.sh and holds exactly one ashyq_kiosk wheel
#   --rollback        switch back to the release that was current before the last upgrade
#                     (again: forward to the newer one); configuration is not touched
#
# What it does, each step printed, every step idempotent (a second run changes nothing):
# Debian packages; the program in /opt/ashyq-kiosk/releases/VERSION/venv (the kiosk and
# the exact dependency versions of constraints.txt), switched to by the symlink
# /opt/ashyq-kiosk/current, the one before it kept as /opt/ashyq-kiosk/previous; the user
# ashyq-kiosk and its groups (sysusers.d); /etc/ashyq-kiosk with a configuration from
# config/production.toml and a generated venue secret; the unit, enabled. An upgrade
# replaces the program, the unit and the sysusers/tmpfiles files but never a file that
# exists in /etc/ashyq-kiosk: the configuration and secrets are the integrator's. It does
# not start or restart the service (the gate may be in use).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
ROOT=/
APT=1
VENV=1
WHEELHOUSE=
ROLLBACK=0
NAME=ashyq-kiosk
# The Debian Python, not one from /usr/local: python3-lgpio is built for it, and the venv
# sees it through --system-site-packages.
PYTHON=${PYTHON:-/usr/bin/python3}
# SYSUSERS=none exercises the fallback below (for the installer's own tests).
SYSUSERS=${SYSUSERS:-systemd-sysusers}

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
        --root)
            [ $# -ge 2 ] || { echo "install: --root needs a directory" >&2; exit 2; }
            ROOT=$2
            shift 2
            ;;
        --root=*) ROOT=${1#--root=}; shift ;;
        --no-apt) APT=0; shift ;;
        --skip-venv) VENV=0; shift ;;
        --wheelhouse)
            [ $# -ge 2 ] || { echo "install: --wheelhouse needs a directory" >&2; exit 2; }
            WHEELHOUSE=$2
            shift 2
            ;;
        --wheelhouse=*) WHEELHOUSE=${1#--wheelhouse=}; shift ;;
        --rollback) ROLLBACK=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) echo "install: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done

if [ "$ROLLBACK" = 1 ] && { [ -n "$WHEELHOUSE" ] || [ "$VENV" = 0 ]; }; then
    echo "install: --rollback only switches releases; it takes no --wheelhouse or --skip-venv" >&2
    exit 2
fi
KIOSK_WHEEL=
if [ -n "$WHEELHOUSE" ]; then
    [ -d "$WHEELHOUSE" ] || { echo "install: --wheelhouse $WHEELHOUSE is not a directory" >&2; exit 2; }
    WHEELHOUSE=$(cd "$WHEELHOUSE" && pwd)
    wheels=("$WHEELHOUSE"/ashyq_kiosk-*.whl)
    if [ ! -e "${wheels[0]}" ]; then
        echo "install: $WHEELHOUSE holds no ashyq_kiosk wheel (make it with scripts/wheelhouse.sh)" >&2
        exit 2
    elif [ "${#wheels[@]}" -gt 1 ]; then
        echo "install: $WHEELHOUSE holds ${#wheels[@]} ashyq_kiosk wheels, keep the one to install:" \
            "${wheels[*]##*/}" >&2
        exit 2
    fi
    KIOSK_WHEEL=${wheels[0]}
fi

if [ "$(id -u)" != 0 ]; then
    echo "install: run as root (sudo $0 $*): it creates a system user and root-owned files" >&2
    exit 1
fi

mkdir -p "$ROOT"
ROOT=$(cd "$ROOT" && pwd)
# R is prepended to absolute paths: empty for the live system, so paths print as on a Pi.
R=${ROOT%/}
LIVE=0
[ -z "$R" ] && LIVE=1

OPT=$R/opt/$NAME
ETC=$R/etc/$NAME
UNIT_DIR=$R/etc/systemd/system

say() { printf '==> %s\n' "$*"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'install: %s\n' "$*" >&2; exit 1; }

# Releases: $OPT/releases/VERSION/venv, one per installed version; $OPT/current and
# $OPT/previous are relative symlinks to two of them, and $OPT/venv -> current/venv is the
# path the unit and the technician's commands use, the same whatever the version.
RELEASES=$OPT/releases
# release_of LINK: the version LINK ($OPT/current or previous) points at; fails without one.
release_of() {
    local target
    target=$(readlink "$OPT/$1" 2>/dev/null) || return 1
    printf '%s\n' "${target#releases/}"
}
# complete VERSION: the release was installed to the end (the digest is written last).
complete() {
    [ -x "$RELEASES/$1/venv/bin/kiosk" ] && [ -s "$RELEASES/$1/venv/.source-digest" ]
}
# point LINK TARGET: make $OPT/LINK a symlink to TARGET in one rename(2), so the service
# (ExecStart and ExecStopPost go through it) never sees it missing or half switched.
point() {
    local link=$OPT/$1 target=$2
    [ "$(readlink "$link" 2>/dev/null)" = "$target" ] && return 0
    ln -sfn "$target" "$link.new"
    mv -Tf "$link.new" "$link"
}

if [ "$ROLLBACK" = 1 ]; then
    say "Rollback ($OPT)"
    cur=$(release_of current) || die "no release installed in $OPT (no $OPT/current)"
    prev=$(release_of previous) \
        || die "nothing to roll back to: only $cur is installed (no $OPT/previous)"
    complete "$prev" || die "$RELEASES/$prev is incomplete or missing; not switching"
    point current "releases/$prev"
    point previous "releases/$cur"
    note "current: $prev (was $cur; $cur kept as previous, --rollback again returns to it)"
    note "configuration in $ETC untouched"
    note "the running service still runs $cur: sudo systemctl restart $NAME"
    exit 0
fi

# put SRC DEST MODE: install a file we own (root:root), rewriting it only when it differs,
# so that a re-run leaves every file as it was.
put() {
    local src=$1 dest=$2 mode=$3
    if [ -f "$dest" ] && cmp -s "$src" "$dest" \
        && [ "$(stat -c '%a %u %g' "$dest")" = "${mode#0} 0 0" ]; then
        note "unchanged $dest"
        return
    fi
    install -D -m "$mode" -o 0 -g 0 "$src" "$dest"
    note "installed $dest"
}

# gid NAME: a group's number in the target root's /etc/group (the host's may differ).
gid() {
    awk -F: -v g="$1" '$1 == g { print $3; found = 1 } END { exit !found }' "$R/etc/group"
}

# ---------------------------------------------------------------------------------------
say "Debian packages"
# python3-lgpio comes from Raspberry Pi OS's archive (plain Debian has no such package);
# mosquitto-clients is for the technician (mosquitto_sub to watch the fleet topics).
required=(python3-venv libzbar0)
optional=(python3-lgpio mosquitto-clients)
missing=()
for pkg in "${required[@]}" "${optional[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -eq 0 ]; then
    note "all present: ${required[*]} ${optional[*]}"
elif [ "$LIVE" = 0 ] || [ "$APT" = 0 ]; then
    note "not installing (--root or --no-apt); missing here: ${missing[*]}"
else
    apt-get update -qq
    installable=()
    for pkg in "${missing[@]}"; do
        if apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            installable+=("$pkg")
        else
            note "no package $pkg in this system's archives, skipped"
        fi
    done
    if [ "${#installable[@]}" -gt 0 ]; then
        note "installing ${installable[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${installable[@]}" >/dev/null
    fi
fi

# ---------------------------------------------------------------------------------------
say "User and groups ($R/usr/lib/sysusers.d/$NAME.conf)"
put "$REPO/systemd/$NAME.sysusers" "$R/usr/lib/sysusers.d/$NAME.conf" 0644
mkdir -p "$R/etc"
if command -v "$SYSUSERS" >/dev/null; then
    # From standard input: with --root, a file name would be looked up inside the root.
    "$SYSUSERS" --root "$ROOT" - <"$REPO/systemd/$NAME.sysusers" 2>&1 | sed 's/^/    /'
else
    # Without systemd's tool (not on Debian 12, but keep the installer self-sufficient):
    # the same result with the shadow tools, which take --prefix for an image root.
    for f in passwd group shadow gshadow; do [ -e "$R/etc/$f" ] || install -m 0644 /dev/null "$R/etc/$f"; done
    chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
    # The numbers the sysusers file gives: Debian's static video and dialout, gpio dynamic.
    for g in gpio:- video:44 dialout:20; do
        name=${g%:*} number=${g#*:}
        gid "$name" >/dev/null && continue
        if [ "$number" = - ]; then
            groupadd --prefix "$ROOT" -r "$name"
        else
            groupadd --prefix "$ROOT" -r -g "$number" "$name"
        fi
        note "created group $name"
    done
    if ! grep -q "^$NAME:" "$R/etc/passwd"; then
        useradd --prefix "$ROOT" -r -U -d / -s /usr/sbin/nologin -c "Ashyq entrance kiosk" "$NAME"
        note "created user $NAME"
    fi
    for g in gpio video dialout; do
        if ! awk -F: -v g="$g" -v u="$NAME" '$1 == g && ("," $4 ",") ~ ("," u ",") { ok = 1 }
            END { exit !ok }' "$R/etc/group"; then
            usermod --prefix "$ROOT" -a -G "$g" "$NAME"
            note "added $NAME to $g"
        fi
    done
fi
GID=$(gid "$NAME")
note "user $NAME, groups: $(awk -F: -v u="$NAME" '$4 ~ "(^|,)" u "(,|$)" { printf "%s ", $1 }' "$R/etc/group")"

# ---------------------------------------------------------------------------------------
say "Directories ($R/usr/lib/tmpfiles.d/$NAME.conf)"
put "$REPO/systemd/$NAME.tmpfiles" "$R/usr/lib/tmpfiles.d/$NAME.conf" 0644
# Creates /etc/ashyq-kiosk (0750 root:ashyq-kiosk) and /var/lib/ashyq-kiosk, resolving the
# names in the target root's user database; fixes their modes if someone changed them.
systemd-tmpfiles --root "$ROOT" --create - <"$REPO/systemd/$NAME.tmpfiles"
note "$ETC: mode $(stat -c '%a, owner %u:%g' "$ETC") (root:$NAME)"

# ---------------------------------------------------------------------------------------
say "Configuration and secrets ($ETC)"
# secret_file DEST: a new file readable by the service only (0640 root:ashyq-kiosk), filled
# from standard input, moved into place atomically so a reader never sees it half written.
secret_file() {
    local dest=$1 tmp
    tmp=$(mktemp "$dest.XXXXXX")
    cat >"$tmp"
    chown "0:$GID" "$tmp"
    chmod 0640 "$tmp"
    mv "$tmp" "$dest"
}
if [ -e "$ETC/kiosk.toml" ]; then
    note "kept $ETC/kiosk.toml (existing configuration is never overwritten)"
else
    secret_file "$ETC/kiosk.toml" <"$REPO/config/production.toml"
    note "created $ETC/kiosk.toml from config/production.toml: edit it"
fi
if [ -e "$ETC/venue-secret" ]; then
    note "kept $ETC/venue-secret"
else
    # 32 random bytes as 64 hex characters: the HMAC key of the subject pseudonyms.
    od -An -N32 -tx1 /dev/urandom | tr -d ' \n' | secret_file "$ETC/venue-secret"
    note "generated $ETC/venue-secret (mode 0640 root:$NAME)"
fi

# ---------------------------------------------------------------------------------------
say "Program ($OPT)"
put "$REPO/config/production.toml" "$OPT/kiosk.toml.template" 0644
put "$REPO/README.md" "$OPT/README.md" 0644
put "$REPO/config/README.md" "$OPT/CONFIGURATION.md" 0644
CONSTRAINTS=$REPO/constraints.txt
if [ "$VENV" = 0 ]; then
    if [ -x "$OPT/venv/bin/kiosk" ]; then
        note "--skip-venv: left $OPT/venv as it is"
    else
        printf '%s\n' "No virtual environment: installed with --skip-venv." \
            "Run scripts/install.sh on the device to build /opt/$NAME/venv." >"$OPT/venv.skipped.tmp"
        put "$OPT/venv.skipped.tmp" "$OPT/VENV-SKIPPED" 0644
        rm -f "$OPT/venv.skipped.tmp"
    fi
else
    [ -f "$CONSTRAINTS" ] || die "no $CONSTRAINTS: the pinned dependency versions (scripts/lock.sh)"
    # The digest names what a release is built from: the kiosk's wheel (offline), or the
    # checkout's sources and git revision; with the pins either way. pip runs only when it
    # differs from the current release's, so a re-run is quick and changes nothing.
    if [ -n "$KIOSK_WHEEL" ]; then
        stamp=$(cat "$KIOSK_WHEEL" "$CONSTRAINTS" | sha256sum | cut -c1-32)
    else
        stamp=$( (cd "$REPO" && find pyproject.toml constraints.txt kiosk drivers simulators -type f \
            ! -path '*/__pycache__/*' ! -name '*.pyc' -print0 | LC_ALL=C sort -z \
            | xargs -0 sha256sum
            git -C "$REPO" describe --tags --always --dirty 2>/dev/null || true) \
            | sha256sum | cut -c1-32)
    fi
    cur=$(release_of current || true)
    if [ -n "$cur" ] && complete "$cur" \
        && [ "$(cat "$RELEASES/$cur/venv/.source-digest")" = "$stamp" ]; then
        note "unchanged: release $cur is current ($RELEASES/$cur)"
    else
        build=$(mktemp -d)
        trap 'rm -rf "$build"' EXIT
        wheel=$KIOSK_WHEEL
        if [ -z "$wheel" ]; then
            # The version is the wheel's (setuptools-scm, from the git tag): build it first,
            # with a throwaway pip, to know which release directory it goes to.
            "$PYTHON" -m venv "$build/pip"
            "$build/pip/bin/python" -m pip wheel -q --no-deps -w "$build" "$REPO"
            wheel=$(echo "$build"/ashyq_kiosk-*.whl)
        fi
        version=$(basename "$wheel" | cut -d- -f2)
        dir=$RELEASES/$version
        if complete "$version" && [ "$(cat "$dir/venv/.source-digest")" = "$stamp" ]; then
            note "release $version already in $dir"
        elif [ "$version" = "$cur" ]; then
            # Rebuilding the running release in place would leave no program to run or to
            # release the relay with if it failed half way.
            die "release $version is current but was built from something else (an" \
                "uncommitted change, or a copy without git); commit and tag it as a new" \
                "version, or roll back first (install.sh --rollback) and run this again"
        else
            rm -rf "$dir"
            mkdir -p "$RELEASES"
            # --system-site-packages: the GPIO library comes from Debian (python3-lgpio).
            "$PYTHON" -m venv --system-site-packages "$dir/venv"
            pip_from=()
            [ -n "$WHEELHOUSE" ] && pip_from=(--no-index --find-links "$WHEELHOUSE")
            # -c: every dependency at its pinned version, the same on every gate. A dependency
            # outside the pins (pyproject.toml changed, constraints.txt did not) would be
            # whatever the index had that day: pip's plan is checked before it installs.
            "$dir/venv/bin/python" -m pip install -q --dry-run --report "$build/plan.json" \
                "${pip_from[@]}" -c "$CONSTRAINTS" "$wheel"
            unpinned=$("$dir/venv/bin/python" - "$build/plan.json" "$CONSTRAINTS" <<'PY'
import json, re, sys
def norm(name): return re.sub(r"[-_.]+", "-", name).lower()
plan = json.load(open(sys.argv[1]))
with open(sys.argv[2]) as pins:
    pinned = {norm(line.split("==")[0]) for line in pins if "==" in line}
names = (item["metadata"]["name"] for item in plan["install"])
print(" ".join(n for n in names if norm(n) not in pinned | {"ashyq-kiosk"}))
PY
            )
            if [ -n "$unpinned" ]; then
                die "not pinned in constraints.txt: $unpinned (run scripts/lock.sh);" \
                    "release $version not installed, the current release unchanged"
            fi
            # Not editable: the service must not depend on this checkout staying where it is.
            "$dir/venv/bin/python" -m pip install -q "${pip_from[@]}" -c "$CONSTRAINTS" "$wheel"
            # What this release runs, for the IT department (the venv's own packages only).
            {
                echo "ashyq-kiosk==$version"
                "$dir/venv/bin/python" -m pip freeze --local --all --exclude pip --exclude ashyq-kiosk
            } >"$dir/installed.txt"
            printf '%s\n' "$stamp" >"$dir/venv/.source-digest"
            note "installed $("$dir/venv/bin/kiosk" --version) into $dir"
        fi
        if [ "$cur" != "$version" ]; then
            point current "releases/$version"
            if [ -n "$cur" ]; then
                point previous "releases/$cur"
                note "current: $version (was $cur, kept as previous: install.sh --rollback)"
            else
                note "current: $version"
            fi
        fi
    fi
    # Two releases are kept: the current one and the one to roll back to.
    keep_cur=$(release_of current || true) keep_prev=$(release_of previous || true)
    for old in "$RELEASES"/*/; do
        old=$(basename "$old")
        [ -d "$RELEASES/$old" ] || continue
        [ "$old" = "$keep_cur" ] || [ "$old" = "$keep_prev" ] && continue
        rm -rf "${RELEASES:?}/$old"
        note "removed old release $old"
    done
    if [ -d "$OPT/venv" ] && [ ! -L "$OPT/venv" ]; then
        # The layout before releases: one venv in place, replaced by the symlink below.
        rm -rf "$OPT/venv"
        note "removed $OPT/venv of the layout before releases"
    fi
    if [ "$(readlink "$OPT/venv")" = current/venv ]; then
        note "unchanged $OPT/venv -> current/venv"
    else
        point venv current/venv
        note "linked $OPT/venv -> current/venv"
    fi
    rm -f "$OPT/VENV-SKIPPED"
fi

# ---------------------------------------------------------------------------------------
say "Service ($UNIT_DIR/$NAME.service)"
put "$REPO/systemd/$NAME.service" "$UNIT_DIR/$NAME.service" 0644
if [ "$LIVE" = 1 ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
wants=$UNIT_DIR/multi-user.target.wants/$NAME.service
if [ -L "$wants" ]; then
    note "unchanged: enabled ($wants)"
elif command -v systemctl >/dev/null; then
    # Works offline on a root that is not running (systemd 252): it only makes the symlink.
    systemctl --root "$ROOT" enable "$NAME.service" 2>&1 | sed 's/^/    /'
else
    mkdir -p "$(dirname "$wants")"
    ln -s "/etc/systemd/system/$NAME.service" "$wants"
    note "enabled: $wants"
fi

# ---------------------------------------------------------------------------------------
cat <<EOF

Installed. Next steps for the integrator:
  1. Edit $ETC/kiosk.toml: kiosk id, venue id, status URL, policy, devices, pins
     (every key: $OPT/CONFIGURATION.md).
  2. Put the secrets and keys next to it, mode 0640 root:$NAME:
       passes.jwks.json     the pass issuer's public keys
       status-token         the status service's bearer token
     and give every kiosk of a venue the same venue-secret (copy it from the first kiosk).
       sudo install -m 0640 -o root -g $NAME FILE $ETC/
  3. Check: sudo -u $NAME /opt/$NAME/venv/bin/kiosk config check /etc/$NAME/kiosk.toml
           sudo -u $NAME /opt/$NAME/venv/bin/kiosk doctor --config /etc/$NAME/kiosk.toml
  4. Start: sudo systemctl start $NAME   (it starts by itself at boot from now on)
     Watch: journalctl -u $NAME -f      Sandbox: systemd-analyze security $NAME
EOF
