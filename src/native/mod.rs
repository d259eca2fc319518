//! Native matching: the mirror's indicators as Wazuh CDB lists that analysisd matches itself,
//! for every event, with our CDB rules (`wazuh::native_rules`) hanging under the stock rules.
//! `apply` owns the transaction that puts new lists in force (write, `-t`, hot reload, roll
//! back); `status` the record of what was last put in force, which `doctor` reports.

pub mod apply;
pub mod status;
