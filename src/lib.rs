//! wazuh-misp: one binary that connects the Wazuh SIEM to MISP threat intelligence. It is the
//! integration `wazuh-integratord` runs for every alert (`runtime`), and the admin's tool around
//! it (`cli`). `misp` talks to MISP, `wazuh` holds Wazuh's contracts, `ioc`, `fieldmap` and
//! `settings` are shared by both.

pub mod civil;
pub mod cli;
pub mod fieldmap;
pub mod ioc;
pub mod lists;
pub mod mirror;
pub mod misp;
pub mod native;
pub mod runtime;
pub mod schedule;
pub mod settings;
pub mod setup;
pub mod sightings;
pub mod state;
pub mod sync;
pub mod wazuh;
