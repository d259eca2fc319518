#!/bin/sh
# Regenerates tests/fixtures/native/stock-rules-<version>.tsv: facts (never the files) about the
# stock rules native matching hangs from and the correlations it mirrors, read from a Wazuh
# source checkout. Not run by CI.
#   scripts/native-facts.sh /path/to/wazuh [v4.14.7]
# Columns: id level file frequency timeframe ignore same_source_ip if_sid if_matched_sid groups
# if_group if_matched_group (rows in analysisd's load order: files by name, rules in file order).
# (groups without the compliance tags: gdpr_, pci_dss_, hipaa_, nist_, tsc_, gpg13_, mitre).
set -eu
repo=${1:?usage: native-facts.sh WAZUH_CHECKOUT [TAG]}
tag=${2:-v4.14.7}
out="$(dirname "$0")/../tests/fixtures/native/stock-rules-${tag#v}.tsv"
git -C "$repo" ls-tree --name-only "$tag" ruleset/rules/ | grep '\.xml$' | while read -r f; do
  printf '\036%s\n' "$(basename "$f")"
  git -C "$repo" show "$tag:$f"
done | python3 -c '
import re, sys
text = sys.stdin.read()
rows = []
for chunk in text.split("\x1e")[1:]:
    name, _, body = chunk.partition("\n")
    body = re.sub(r"<!--.*?-->", "", body, flags=re.S)
    # Each rule in file order; its enclosing <group name="..."> is the last one opened before it.
    opens = [(m.start(), m.group(1)) for m in re.finditer(r"<group\s+name=\"([^\"]*)\"", body)]
    for rm in re.finditer(r"<rule\s+([^>]*)>(.*?)</rule>", body, re.S):
        outer_name = ""
        for at, group_name in opens:
            if at < rm.start():
                outer_name = group_name
        outer = [g.strip() for g in outer_name.split(",") if g.strip()]
        attrs = dict(re.findall(r"(\w+)=\"([^\"]*)\"", rm.group(1)))
        inner = rm.group(2)
        def tag(t):
            m = re.search(r"<%s>\s*([^<]*?)\s*</%s>" % (t, t), inner)
            return m.group(1).replace(" ", "") if m else "-"
        groups = outer + [g for m in re.findall(r"<group>([^<]*)</group>", inner) for g in m.split(",") if g]
        keep = [g for g in groups if not re.match(r"(gdpr_|pci_dss_|hipaa_|nist_|tsc_|gpg13_)", g)]
        same = "yes" if re.search(r"<same_source_ip\s*/>|<same_srcip\s*/>", inner) else "no"
        rows.append([attrs.get("id", "?"), attrs.get("level", "?"), name,
                     attrs.get("frequency", "-"), attrs.get("timeframe", "-"), attrs.get("ignore", "-"),
                     same, tag("if_sid"), tag("if_matched_sid"), ",".join(keep) or "-",
                     tag("if_group"), tag("if_matched_group")])
print("# id\tlevel\tfile\tfrequency\ttimeframe\tignore\tsame_source_ip\tif_sid\tif_matched_sid\tgroups\tif_group\tif_matched_group")
for r in rows:
    print("\t".join(r))
' > "$out.full"
# Keep the families native matching uses (sshd, PAM, web, Suricata, FIM, Sysmon, Windows, firewalls),
# and from every other file the rules attached by group (if_group, if_matched_group), which can
# become children of those families' rules.
awk -F'\t' '/^#/ || $3 ~ /^(0015-ossec_rules|0085-pam_rules|0095-sshd_rules|0245-web_rules|0250-apache_rules|0260-nginx_rules|0475-suricata_rules|0595-win-sysmon_rules|0580-win-security_rules|0840-win_event_channel|0955-WEF-baseline_rules|0810-sysmon_id_3|0900-firewall_rules|0540-pfsense_rules|0999-malicious-ioc-rules|0280-attack_rules)\.xml$/ || $11 != "-" || $12 != "-"' "$out.full" > "$out"
rm -f "$out.full"
echo "wrote $out ($(grep -vc '^#' "$out") rules)"
