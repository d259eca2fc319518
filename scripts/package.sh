#!/usr/bin/env bash
# scripts/package.sh: builds the .deb and the .rpm of wazuh-misp into target/packages/
# ($CARGO_TARGET_DIR/packages/ when that is set).
#
#   scripts/package.sh              # as root or not; needs the tools of scripts/ci-deps.sh
#
# prints, at the end, one line per package: `built: <path>`.
#
# What it does:
#   1. reads the version from Cargo.toml (cargo metadata), nowhere else;
#   2. builds the binary with cargo-zigbuild for x86_64-unknown-linux-gnu.2.17 and refuses it if
#      objdump -T shows a symbol newer than GLIBC_2.17, or if it links any library but glibc's
#      (the packages declare libc6 >= 2.17 / glibc >= 2.17 by hand and nothing else);
#   3. generates the man pages and completions from the clap definition (examples/gen_docs.rs)
#      and the list of bundled crates with their license texts (THIRD-PARTY-LICENSES.gz);
#   4. stages the tree (files root:root, 0755 binary, 0644 the rest) and builds
#      - target/packages/wazuh-misp_<version>-<release>_amd64.deb with dpkg-deb (debian/), and
#      - target/packages/wazuh-misp-<version>-<release>.x86_64.rpm with rpmbuild (rpm/).
#
# Environment:
#   WAZUH_MISP_PKG_RELEASE    package release (Debian revision / RPM Release), default 1: raise it
#                             to ship a packaging-only change over the same Cargo version
#   WAZUH_MISP_PACKAGES_DIR   output directory instead of target/packages
#   WAZUH_MISP_MAINTAINER     "Name <email>" instead of Cargo.toml's first author
#   SOURCE_DATE_EPOCH         timestamps in the packages (default: the last commit's time)
#
# Cargo pre-releases map to a tilde, which sorts before the release in dpkg and rpm alike:
# 1.2.0-rc.1 becomes 1.2.0~rc.1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

die() { echo "package.sh: $*" >&2; exit 1; }
step() { echo "package.sh: $*"; }

RELEASE=${WAZUH_MISP_PKG_RELEASE:-1}
[[ $RELEASE =~ ^[1-9][0-9]*$ ]] || die "WAZUH_MISP_PKG_RELEASE must be a positive integer, not '$RELEASE'"
TARGET=x86_64-unknown-linux-gnu
ZIG_TARGET=$TARGET.2.17
MAX_GLIBC=2.17

# --- tools -------------------------------------------------------------------------------------
for tool in cargo python3 dpkg-deb rpmbuild objdump readelf gzip; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/ci-deps.sh installs what is needed)"
done
ZIGBUILD=$(command -v cargo-zigbuild || true)
if [[ -z $ZIGBUILD ]]; then
    for dir in "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')" \
               "$(python3 -m site --user-base 2>/dev/null)/bin"; do
        [[ -x $dir/cargo-zigbuild ]] && { ZIGBUILD=$dir/cargo-zigbuild; break; }
    done
fi
[[ -n $ZIGBUILD ]] || die "cargo-zigbuild not found: pip install ziglang cargo-zigbuild (or scripts/ci-deps.sh)"

# --- version and metadata, from Cargo.toml only -------------------------------------------------
META=$(cargo metadata --no-deps --format-version 1 --locked)
read_meta() {
    python3 -c '
import json, sys
meta = json.load(sys.stdin)
pkg = next(p for p in meta["packages"] if p["name"] == "wazuh-misp")
field = sys.argv[1]
if field == "author":
    print((pkg.get("authors") or [""])[0])
elif field == "target_directory":
    print(meta["target_directory"])
else:
    print(pkg.get(field) or "")
' "$1" <<<"$META"
}
CARGO_VERSION=$(read_meta version)
TARGET_DIR=$(read_meta target_directory)
LICENSE=$(read_meta license)
HOMEPAGE=$(read_meta homepage)
[[ -n $HOMEPAGE ]] || HOMEPAGE=$(read_meta repository)
[[ -n $CARGO_VERSION ]] || die "no version in Cargo.toml"
[[ $LICENSE == Apache-2.0 ]] || die "Cargo.toml's license is '$LICENSE': update debian/copyright and rpm/wazuh-misp.spec first"
MAINTAINER=${WAZUH_MISP_MAINTAINER:-$(read_meta author)}
# Cargo.toml names no author yet; a Debian package needs "Name <email>".
[[ $MAINTAINER == *"<"*"@"*">"* ]] || MAINTAINER="wazuh-misp maintainers <wazuh-misp@example.org>"
# semver 1.2.0-rc.1+build5 -> 1.2.0~rc.1+build5 (dpkg and rpm both sort ~ first).
UPSTREAM=${CARGO_VERSION/-/\~}
[[ $UPSTREAM =~ ^[0-9][A-Za-z0-9.+~]*$ ]] || die "cannot make a package version of '$CARGO_VERSION'"
DEB_VERSION=$UPSTREAM-$RELEASE
# Exported only for dpkg-deb and rpmbuild below: cc-rs makes build scripts (ring's) rerun when it
# changes, which would recompile half the tree.
DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$ROOT" log -1 --format=%ct 2>/dev/null || date +%s)}
unset SOURCE_DATE_EPOCH

OUT=${WAZUH_MISP_PACKAGES_DIR:-$TARGET_DIR/packages}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
mkdir -p "$TARGET_DIR"
WORK=$(mktemp -d "$TARGET_DIR/package-work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
umask 022

# --- the binary ---------------------------------------------------------------------------------
step "building wazuh-misp $CARGO_VERSION for $ZIG_TARGET (cargo-zigbuild)"
if ! "$ZIGBUILD" zigbuild --locked --release -p wazuh-misp --bin wazuh-misp --target "$ZIG_TARGET" 2>&1 |
        tee "$WORK/zigbuild.log"; then
    if grep -q "undefined symbol" "$WORK/zigbuild.log"; then
        die "linking against glibc $MAX_GLIBC failed: the code (or a crate) calls a libc function that glibc $MAX_GLIBC does not have (the undefined symbols above; getrandom, for one, arrived in glibc 2.25: use std or libc::syscall instead)"
    fi
    die "cargo zigbuild failed"
fi
BIN=$TARGET_DIR/$TARGET/release/wazuh-misp
[[ -x $BIN ]] || die "the build left no $BIN"

step "checking the glibc symbol versions (at most GLIBC_$MAX_GLIBC)"
too_new=$(objdump -T "$BIN" | grep -o 'GLIBC_[0-9][0-9.]*' | sort -u | sed 's/^GLIBC_//' |
    while read -r v; do
        if [[ $(printf '%s\n%s\n' "$v" "$MAX_GLIBC" | sort -V | tail -n1) != "$MAX_GLIBC" ]]; then
            echo "GLIBC_$v: $(objdump -T "$BIN" | grep "GLIBC_$v " | awk '{print $NF}' | tr '\n' ' ')"
        fi
    done)
[[ -z $too_new ]] || die "the binary needs a glibc newer than $MAX_GLIBC (so it would not run on RHEL/CentOS 7):
$too_new"
step "checking the linked libraries (glibc's only)"
needed=$(objdump -p "$BIN" | awk '$1 == "NEEDED" {print $2}')
for lib in $needed; do
    case $lib in
        libc.so.6|libm.so.6|libpthread.so.0|libdl.so.2|librt.so.1|libutil.so.1|ld-linux-x86-64.so.2) ;;
        *) die "the binary links $lib, which the packages do not declare: add the dependency to debian/control.in and rpm/wazuh-misp.spec, then to this list" ;;
    esac
done
interp=$(readelf -l "$BIN" | sed -n 's/.*program interpreter: \(.*\)]$/\1/p')
[[ $interp == /lib64/ld-linux-x86-64.so.2 ]] || die "unexpected ELF interpreter '$interp'"

# --- man pages, completions, licenses -------------------------------------------------------------
step "generating man pages and completions (examples/gen_docs.rs)"
cargo run --locked --quiet -p wazuh-misp --example gen_docs -- "$WORK/docs"
[[ -s $WORK/docs/man1/wazuh-misp.1 ]] || die "gen_docs wrote no man page"

step "collecting the licenses of the bundled crates"
cargo metadata --format-version 1 --locked --filter-platform "$TARGET" >"$WORK/metadata.json"
python3 - "$WORK/metadata.json" "$WORK/THIRD-PARTY-LICENSES" <<'PY'
import json, os, sys
meta = json.load(open(sys.argv[1]))
pkgs = {p["id"]: p for p in meta["packages"]}
nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
root = next(i for i, p in pkgs.items() if p["name"] == "wazuh-misp")
# Crates linked into the binary: normal dependencies, transitively, less proc-macros (they run
# in the compiler and leave no code of their own in the binary).
seen, todo = set(), [root]
while todo:
    cur = todo.pop()
    for dep in nodes[cur]["deps"]:
        if any(k["kind"] is None for k in dep["dep_kinds"]) and dep["pkg"] not in seen:
            p = pkgs[dep["pkg"]]
            if all("proc-macro" in t["kind"] for t in p["targets"]):
                continue
            seen.add(dep["pkg"])
            todo.append(dep["pkg"])
crates = sorted((pkgs[i] for i in seen), key=lambda p: (p["name"], p["version"]))
out = ["Third-party crates statically linked into /usr/bin/wazuh-misp, with their license texts.",
       "Generated from Cargo.lock by scripts/package.sh.", ""]
out += ["%-32s %-12s %s" % (p["name"], p["version"], p.get("license") or "(see its license file)") for p in crates]
missing = []
for p in crates:
    d = os.path.dirname(p["manifest_path"])
    names = sorted(f for f in os.listdir(d)
                   if f.upper().startswith(("LICENSE", "LICENCE", "COPYING", "NOTICE", "COPYRIGHT", "UNLICENSE"))
                   and os.path.isfile(os.path.join(d, f)))
    if p.get("license_file"):
        lf = os.path.relpath(os.path.join(d, p["license_file"]), d)
        if lf not in names and os.path.isfile(os.path.join(d, lf)):
            names.append(lf)
    if not names:
        missing.append(p["name"])
    for n in names:
        out += ["", "=" * 100, "%s %s: %s" % (p["name"], p["version"], n), "=" * 100, ""]
        out.append(open(os.path.join(d, n), encoding="utf-8", errors="replace").read().rstrip("\n"))
if missing:
    out += ["", "Crates that ship no license file (their license is the SPDX expression above): " + ", ".join(missing)]
open(sys.argv[2], "w").write("\n".join(out) + "\n")
print("package.sh: %d crates bundled%s" % (len(crates), "; without a license file: " + ", ".join(missing) if missing else ""))
PY

LICENSE_TEXT=""
for f in "$ROOT/LICENSE" "$ROOT/LICENSE-APACHE" /usr/share/common-licenses/Apache-2.0; do
    [[ -f $f ]] && { LICENSE_TEXT=$f; break; }
done
[[ -n $LICENSE_TEXT ]] || die "no Apache-2.0 license text (add LICENSE to the repository)"

# --- the staged tree (shared by both packages) --------------------------------------------------
# $1: the root to fill; $2: zsh's completion directory (Debian's zsh reads vendor-completions/,
# Fedora's and RHEL's site-functions/).
stage() {
    local r=$1 zsh_dir=$2
    install -D -m 0755 "$BIN" "$r/usr/bin/wazuh-misp"
    install -d -m 0755 "$r/usr/share/man/man1"
    for page in "$WORK"/docs/man1/*.1; do
        gzip -9n <"$page" >"$r/usr/share/man/man1/$(basename "$page").gz"
        chmod 0644 "$r/usr/share/man/man1/$(basename "$page").gz"
    done
    install -D -m 0644 "$WORK/docs/completions/wazuh-misp.bash" "$r/usr/share/bash-completion/completions/wazuh-misp"
    install -D -m 0644 "$WORK/docs/completions/_wazuh-misp" "$r/$zsh_dir/_wazuh-misp"
    install -D -m 0644 "$WORK/docs/completions/wazuh-misp.fish" "$r/usr/share/fish/vendor_completions.d/wazuh-misp.fish"
    install -d -m 0755 "$r/usr/share/wazuh-misp"
    for t in "$ROOT"/templates/*; do
        [[ -f $t ]] && install -m 0644 "$t" "$r/usr/share/wazuh-misp/"
    done
    install -D -m 0644 "$ROOT/README.md" "$r/usr/share/doc/wazuh-misp/README.md"
    gzip -9n <"$WORK/THIRD-PARTY-LICENSES" >"$r/usr/share/doc/wazuh-misp/THIRD-PARTY-LICENSES.gz"
    chmod 0644 "$r/usr/share/doc/wazuh-misp/THIRD-PARTY-LICENSES.gz"
}
set_mtimes() { find "$1" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +; }

export SOURCE_DATE_EPOCH=$DATE_EPOCH

# --- .deb -----------------------------------------------------------------------------------------
step "building the .deb ($DEB_VERSION)"
DEB_ROOT=$WORK/deb
stage "$DEB_ROOT" usr/share/zsh/vendor-completions
install -m 0644 "$ROOT/debian/copyright" "$DEB_ROOT/usr/share/doc/wazuh-misp/copyright"
sed -e "s|@VERSION@|$DEB_VERSION|g" -e "s|@UPSTREAM_VERSION@|$CARGO_VERSION|g" \
    -e "s|@MAINTAINER@|$MAINTAINER|g" \
    -e "s|@DATE@|$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")|g" \
    "$ROOT/debian/changelog.in" | gzip -9n >"$DEB_ROOT/usr/share/doc/wazuh-misp/changelog.Debian.gz"
chmod 0644 "$DEB_ROOT/usr/share/doc/wazuh-misp/changelog.Debian.gz"
install -D -m 0644 "$ROOT/debian/lintian-overrides" "$DEB_ROOT/usr/share/lintian/overrides/wazuh-misp"
install -d -m 0755 "$DEB_ROOT/DEBIAN"
for script in postinst prerm postrm; do
    install -m 0755 "$ROOT/debian/$script" "$DEB_ROOT/DEBIAN/$script"
done
(cd "$DEB_ROOT" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | LC_ALL=C sort -z |
    xargs -0 md5sum) >"$DEB_ROOT/DEBIAN/md5sums"
chmod 0644 "$DEB_ROOT/DEBIAN/md5sums"
installed_size=$(du -sk --apparent-size --exclude=DEBIAN "$DEB_ROOT" | cut -f1)
homepage_line=""
[[ -n $HOMEPAGE ]] && homepage_line="Homepage: $HOMEPAGE\\n"
sed -e "s|@VERSION@|$DEB_VERSION|" -e "s|@MAINTAINER@|$MAINTAINER|" \
    -e "s|@INSTALLED_SIZE@|$installed_size|" -e "s|@HOMEPAGE@|$homepage_line|" \
    "$ROOT/debian/control.in" >"$DEB_ROOT/DEBIAN/control"
chmod 0644 "$DEB_ROOT/DEBIAN/control"
set_mtimes "$DEB_ROOT"
DEB=$OUT/wazuh-misp_${DEB_VERSION}_amd64.deb
dpkg-deb --root-owner-group -Zxz --build "$DEB_ROOT" "$DEB" >/dev/null

# --- .rpm -----------------------------------------------------------------------------------------
step "building the .rpm ($UPSTREAM-$RELEASE)"
RPM_ROOT=$WORK/rpm-root
stage "$RPM_ROOT" usr/share/zsh/site-functions
install -D -m 0644 "$LICENSE_TEXT" "$RPM_ROOT/usr/share/licenses/wazuh-misp/LICENSE"
set_mtimes "$RPM_ROOT"
RPM=$OUT/wazuh-misp-$UPSTREAM-$RELEASE.x86_64.rpm
url_define=()
[[ -n $HOMEPAGE ]] && url_define=(--define "pkg_url $HOMEPAGE")
mkdir -p "$WORK/tmp"
rpmbuild -bb --quiet "$ROOT/rpm/wazuh-misp.spec" \
    --define "_topdir $WORK/rpmbuild" \
    --define "_rpmdir $WORK/rpms" \
    --define "_rpmfilename %%{NAME}-%%{VERSION}-%%{RELEASE}.%%{ARCH}.rpm" \
    --define "_tmppath $WORK/tmp" \
    --define "stagedir $RPM_ROOT" \
    --define "scriptdir $ROOT/rpm" \
    --define "pkg_version $UPSTREAM" \
    --define "pkg_release $RELEASE" \
    --define "pkg_packager $MAINTAINER" \
    --define "pkg_changelog_date $(LC_ALL=C date -u -d "@$SOURCE_DATE_EPOCH" '+%a %b %d %Y')" \
    "${url_define[@]}" >/dev/null
mv "$WORK/rpms/wazuh-misp-$UPSTREAM-$RELEASE.x86_64.rpm" "$RPM"

echo "built: $DEB"
echo "built: $RPM"
