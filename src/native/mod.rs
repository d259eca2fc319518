//! Native matching: the mirror's indicators as Wazuh CDB lists that analysisd matches itself,
//! for every event, with our CDB rules (`wazuh::native_rules`) hanging under the stock rules.
//! `apply` owns the transaction that puts new lists in force (write, `-t`, hot reload, roll
//! back), judging analysisd's answers with `findings` and remembering refusals by `refusal`'s
//! key; `status` the record of what was last put in force, which `doctor` reports.

pub mod apply;
mod findings;
mod refusal;
pub mod status;
