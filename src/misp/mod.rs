//! The MISP side: an HTTP client that speaks MISP's REST conventions within a deadline, the
//! attribute search (request, response, and re-checking each answer), and the fixed list of
//! error kinds the rest of the program reports.

pub mod client;
pub mod error;
pub mod index;
pub mod search;
pub mod tlsinfo;
mod transport;

pub use client::MispClient;
pub use error::{ErrorKind, MispError};
