//! Everything that is Wazuh's contract rather than ours: where the Wazuh home is, the
//! analysisd queue socket and its message framing, `logs/integrations.log`, the ossec.conf and
//! rules files, the installer, the manager's service control and whether its daemons run.

pub mod atomic;
pub mod daemon;
pub mod detect;
pub mod home;
pub mod install;
pub mod log;
pub mod native_rules;
pub mod ossec_conf;
pub mod queue;
pub mod reload;
pub mod rules;
pub mod service;
pub mod xml;
