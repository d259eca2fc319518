//! A throw-away Wazuh 4.x manager home for installer tests (built by [`super::home`]): the
//! packaged layout, owners and modes (root:wazuh), a stock-like ossec.conf with two roots, a
//! rules tree, and stand-in `bin/wazuh-control`, `wazuh-integratord` and `wazuh-analysisd`
//! scripts whose behaviour the test steers through files in `<home>/stand-in/` (accept, reject,
//! warn, fail to restart) and which record every call (with their environment) in
//! `<home>/stand-in/calls.log`.

use super::home::{self, HomeBuilder, Perm};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const STOCK_OSSEC_CONF: &str = r#"<!--
  Wazuh - Manager - Default configuration for debian 12
  More info at: https://documentation.wazuh.com
-->

<ossec_config>
  <global>
    <jsonout_output>yes</jsonout_output>
    <alerts_log>yes</alerts_log>
    <logall>no</logall>
    <email_notification>no</email_notification>
  </global>

  <alerts>
    <log_alert_level>3</log_alert_level>
    <email_alert_level>12</email_alert_level>
  </alerts>

  <!-- Choose between "plain", "json", or "plain,json" for the format of internal logs -->
  <logging>
    <log_format>plain</log_format>
  </logging>

  <remote>
    <connection>secure</connection>
    <port>1514</port>
    <protocol>tcp</protocol>
  </remote>

  <integration>
    <name>virustotal</name>
    <api_key>VT_KEY_PLACEHOLDER</api_key>
    <group>syscheck</group>
    <alert_format>json</alert_format>
  </integration>

  <ruleset>
    <decoder_dir>ruleset/decoders</decoder_dir>
    <rule_dir>ruleset/rules</rule_dir>
    <rule_exclude>0215-policy_rules.xml</rule_exclude>
    <list>etc/lists/audit-keys</list>
    <decoder_dir>etc/decoders</decoder_dir>
    <rule_dir>etc/rules</rule_dir>
  </ruleset>

  <cluster>
    <name>wazuh</name>
    <node_name>node01</node_name>
    <node_type>master</node_type>
    <key></key>
    <port>1516</port>
    <bind_addr>0.0.0.0</bind_addr>
    <nodes>
        <node>NODE_IP</node>
    </nodes>
    <hidden>no</hidden>
    <disabled>yes</disabled>
  </cluster>
</ossec_config>

<ossec_config>
  <localfile>
    <log_format>syslog</log_format>
    <location>/var/ossec/logs/active-responses.log</location>
  </localfile>
</ossec_config>
"#;

/// The stand-in for Wazuh's programs. `-t` consults stand-in/ files; every call is logged with
/// the environment it got.
const STAND_IN: &str = r#"#!/bin/sh
home=$(cd "$(dirname "$0")/.." && pwd)
name=$(basename "$0")
dir="$home/stand-in"
{ echo "$name $*"; env | sed 's/^/  env /'; } >> "$dir/calls.log"
case "$name $1" in
  "wazuh-control info")
    cat "$dir/version" 2>/dev/null || echo 'WAZUH_VERSION="v4.9.2"'
    echo 'WAZUH_REVISION="40921"'
    echo 'WAZUH_TYPE="server"'
    exit 0 ;;
  "wazuh-control status")
    if [ -e "$dir/running" ]; then echo "wazuh-analysisd is running..."; else echo "wazuh-analysisd not running..."; fi
    exit 0 ;;
  "wazuh-control restart")
    if [ -e "$dir/restart-fails" ]; then echo "2026/11/27 07:00:00 wazuh-analysisd: CRITICAL: (1202): Configuration error at 'etc/ossec.conf'."; rm -f "$dir/restart-fails"; exit 1; fi
    exit 0 ;;
esac
if [ "$1" = "-t" ]; then
  if [ -e "$dir/reject-$name" ] && grep -q custom-misp "$home/etc/ossec.conf"; then
    echo "2026/11/27 07:00:00 $name: ERROR: (1230): Invalid element in the configuration: 'integration'."
    echo "2026/11/27 07:00:00 $name: CRITICAL: (1202): Configuration error at 'etc/ossec.conf'."
    exit 1
  fi
  if [ -e "$dir/warn-$name" ] && [ -e "$home/etc/rules/custom-misp_rules.xml" ]; then
    echo "2026/11/27 07:00:00 $name[$$] rules_op.c:400 at OS_ReadXMLRules(): WARNING: (7617): Signature ID '117101' was found, but its value is duplicated."
  fi
  if [ "$name" = "wazuh-analysisd" ]; then
    # analysisd compiles every stale declared list to its .cdb, as user wazuh, even under -t.
    for f in "$home"/etc/lists/wazuh-misp/*; do
      case "$f" in *.cdb|*.tmp) continue ;; esac
      [ -f "$f" ] || continue
      if [ ! -e "$f.cdb" ] || [ "$(stat -c %Y "$f")" -gt "$(stat -c %Y "$f.cdb")" ]; then cp "$f" "$f.cdb"; fi
    done
    if [ -e "$dir/warn-native" ] && [ -e "$home/etc/rules/custom-misp_native_rules.xml" ]; then
      echo "2026/11/27 07:00:00 $name: WARNING: (7616): List 'etc/lists/wazuh-misp/misp-ip' could not be loaded. Rule '117120' will be ignored."
    fi
  fi
  exit 0
fi
exit 0
"#;

pub struct Manager {
    pub dir: tempfile::TempDir,
}

impl Manager {
    pub fn new() -> Manager {
        Manager::with_conf(STOCK_OSSEC_CONF)
    }

    pub fn with_conf(conf: &str) -> Manager {
        let home = HomeBuilder::new()
            .prefix("wazuh-manager-")
            .manager_layout()
            .dir("stand-in", Perm::AsCreated)
            .ossec_conf(conf)
            .stock_rules()
            .stand_ins(STAND_IN)
            .build();
        Manager { dir: home.dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    pub fn read(&self, rel: &str) -> Option<Vec<u8>> {
        std::fs::read(self.file(rel)).ok()
    }

    /// Creates a stand-in control file (`running`, `reject-wazuh-analysisd`, `restart-fails`, …).
    pub fn steer(&self, name: &str) {
        std::fs::write(self.file("stand-in").join(name), "").unwrap();
    }

    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.file("stand-in/calls.log")).unwrap_or_default()
    }

    pub fn write_settings(&self, settings: &serde_json::Value) {
        home::write_settings(self.path(), settings, 0o640);
    }

    pub fn wazuh_misp(&self, args: &[&str]) -> Output {
        Command::new(super::BIN)
            .arg("--wazuh-home")
            .arg(self.path())
            .args(args)
            .args(["--service-manager", "wazuh-control"].iter().filter(|_| {
                args.first()
                    .is_some_and(|a| *a == "install" || *a == "uninstall")
            }))
            .output()
            .unwrap()
    }
}

pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
