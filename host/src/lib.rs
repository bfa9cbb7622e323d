//! The Portico host: configuration, the app registry, the gateway, the admin API, the stores and
//! secret sealing. The `portico` binary is a thin command-line layer over this crate.
pub mod admin;
pub mod admin_auth;
pub mod audit;
pub mod config;
pub mod console;
pub mod core;
pub mod demo;
pub mod error;
pub mod gateway;
pub mod imports;
pub mod keys;
pub mod limits;
pub mod operations;
pub mod ports;
pub mod registry;
pub mod secrets;
pub mod server;
pub mod setup;
pub mod store;
pub mod tls;
pub mod webhooks;

pub use crate::config::Config;
pub use crate::core::Portico;
