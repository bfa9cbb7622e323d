//! The CardDAV connected app: an organization's customers as an address book that phones and
//! desktop clients discover, sync and edit.
//!
//! - [`dav`]: WebDAV/CardDAV XML (pure; RFC 4918, 6352, 6578).
//! - [`vcard`]: vCard 3.0/4.0 reading, writing, patching and conversion (pure; RFC 2426, 6350).
//! - The rest is the glue: authentication, the resource tree, property values and the methods.
pub mod dav;
pub mod vcard;

mod app;
mod auth;
mod book;
mod card;
mod device_actions;
pub mod devices;
mod groups;
mod listing;
mod multiget;
mod privileges;
pub mod profile;
mod propfind;
mod proppatch;
mod props;
mod report;
mod respond;
mod sync_token;
mod tree;
pub mod vcf_file;
mod write;

pub use app::CardDavApp;
