//! The CardDAV connected app.
pub mod dav;
pub mod vcard;
