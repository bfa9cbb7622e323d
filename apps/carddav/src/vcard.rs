//! vCard (RFC 6350 / RFC 2426) reading and writing.
