//! Everything that is Wazuh's contract rather than ours: where the Wazuh home is, the
//! analysisd queue socket and its message framing, and `logs/integrations.log`.

pub mod home;
pub mod log;
pub mod queue;
