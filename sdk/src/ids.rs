use std::fmt;

/// Why a string is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The id is empty or longer than 128 bytes.
    #[error("an id must be 1 to 128 characters long")]
    Length,
    /// The id contains a character outside `A-Z a-z 0-9 - _ .` (or starts with `.`).
    #[error(
        "an id may only contain letters, digits, '-', '_' and '.', and may not start with '.'"
    )]
    Character,
}

/// The bytes an id may hold: `A-Z a-z 0-9 - _ .` (one lookup per byte; ids are read with every
/// stored record).
const ID_BYTES: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.');
        b += 1;
    }
    t
};

fn check_id(s: &str) -> Result<(), IdError> {
    if s.is_empty() || s.len() > 128 {
        return Err(IdError::Length);
    }
    if s.starts_with('.') || !s.bytes().all(|b| ID_BYTES[usize::from(b)]) {
        return Err(IdError::Character);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Checks the syntax (1–128 characters of `A-Z a-z 0-9 - _ .`, not starting with
            /// `.`) and wraps the string.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                check_id(s)?;
                Ok($name(s.to_owned()))
            }
            /// A new random id: 128 bits from the operating system, as 32 hex digits.
            pub fn random() -> Self {
                $name(crate::ids::random_hex_128())
            }
            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                check_id(&s).map_err(serde::de::Error::custom)?;
                Ok($name(s))
            }
        }
    };
}

id_type!(
    /// The id of an organization (a tenant). Every store operation is scoped by one.
    OrgId
);

impl OrgId {
    /// The id under which the organization's contact groups are stored
    /// ([`crate::AppContext::groups`]): `{id}~groups`. No organization can have it, since ids
    /// never contain `~`, so groups share no key, index or change log with any organization.
    pub fn group_space(&self) -> OrgId {
        OrgId(format!("{}~groups", self.0))
    }
}
id_type!(
    /// The id of an installed-app record; the `{appId}` segment of the gateway path.
    InstallationId
);
id_type!(
    /// The id of a customer inside one organization.
    CustomerId
);

/// 128 random bits as lowercase hex, from the operating system's generator.
pub(crate) fn random_hex_128() -> String {
    let mut buf = [0u8; 16];
    fill_random(&mut buf);
    let mut s = String::with_capacity(32);
    for b in buf {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Fills `buf` from `/dev/urandom` (all platforms Portico runs on), falling back to a mix of the
/// clock and the address space layout only if that fails.
fn fill_random(buf: &mut [u8]) {
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open("/dev/urandom") {
        if f.read_exact(buf).is_ok() {
            return;
        }
    }
    // Fallback: not cryptographic, but ids are identifiers, not secrets.
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    for chunk in buf.chunks_mut(8) {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0),
        );
        let v = h.finish().to_le_bytes();
        chunk.copy_from_slice(&v[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked() {
        assert!(OrgId::parse("acme-1").is_ok());
        assert_eq!(OrgId::parse(""), Err(IdError::Length));
        assert_eq!(OrgId::parse("../x"), Err(IdError::Character));
        assert_eq!(OrgId::parse("a/b"), Err(IdError::Character));
        assert_eq!(OrgId::parse(&"a".repeat(129)), Err(IdError::Length));
        let r = InstallationId::random();
        assert_eq!(r.as_str().len(), 32);
        assert_ne!(r, InstallationId::random());
    }

    #[test]
    fn every_byte_is_judged_as_the_rule_says() {
        for b in 0..=255u8 {
            let allowed = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
            let s = format!("x{}", char::from(b));
            assert_eq!(CustomerId::parse(&s).is_ok(), allowed, "byte {b:#04x}");
        }
        assert_eq!(CustomerId::parse(".x"), Err(IdError::Character));
        assert_eq!(CustomerId::parse("x\u{e9}"), Err(IdError::Character));
    }

    #[test]
    fn deserialize_validates() {
        for (json, ok) in [("\"A-z_0.9\"", true), ("\".x\"", false), ("\"\"", false)] {
            let r: Result<OrgId, _> = serde_json::from_str(json);
            assert_eq!(r.is_ok(), ok, "{json}");
            if let Ok(id) = r {
                assert_eq!(id.as_str(), "A-z_0.9");
            }
        }
        let ok: Result<CustomerId, _> = serde_json::from_str("\"c1\"");
        assert!(ok.is_ok());
        let bad: Result<CustomerId, _> = serde_json::from_str("\"a b\"");
        assert!(bad.is_err());
    }
}
