//! The admin-facing commands around the runtime: the `setup` wizard (`wizard`), `doctor`'s
//! installation checks (`doctor`), and the live end-to-end self test (`selftest`).

pub mod doctor;
pub mod selftest;
pub mod wizard;
