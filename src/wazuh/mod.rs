//! Everything that is Wazuh's contract rather than ours: where the Wazuh home is, the
//! analysisd queue socket and its message framing, `logs/integrations.log`, the ossec.conf and
//! rules files, the installer, and the manager's service control.

pub mod atomic;
// pub mod detect; (enabled once ossec_conf lands)
pub mod home;
// pub mod install; (enabled once ossec_conf and rules land)
pub mod log;
pub mod queue;
pub mod service;
