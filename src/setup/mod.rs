//! The admin-facing commands around the runtime: `doctor` (and, as they land, the `setup`
//! wizard and the live self test).

pub mod doctor;
pub mod selftest;
pub mod wizard;
