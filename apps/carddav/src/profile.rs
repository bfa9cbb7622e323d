//! Apple configuration profiles (`.mobileconfig`): one tap on an iPhone, iPad or Mac adds the
//! address book as a Contacts account. The payload is `com.apple.carddav.account` (Apple's
//! Device Management reference, "CardDAV"): host name, port, principal URL, username, SSL flag
//! and, only when the owner asks for it, the password (otherwise the device asks for it once).

use sha2::{Digest, Sha256};

/// Where a CardDAV account lives, split the way the payload wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountLocation {
    /// Host name or address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Path of the account (the principal / address book home), starting with `/`.
    pub path: String,
    /// HTTPS.
    pub ssl: bool,
}

impl AccountLocation {
    /// Splits an absolute `http`/`https` URL; `None` for anything else.
    pub fn from_url(url: &str) -> Option<Self> {
        let (ssl, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return None;
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let authority = authority.rsplit('@').next().unwrap_or(authority);
        let default_port = if ssl { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().ok()?,
                None if after.is_empty() => default_port,
                None => return None,
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().ok()?),
                None => (authority.to_owned(), default_port),
            }
        };
        if host.is_empty() {
            return None;
        }
        Some(AccountLocation {
            host,
            port,
            path: path.to_owned(),
            ssl,
        })
    }
}

/// What goes into a profile.
#[derive(Debug, Clone)]
pub struct ProfileInput<'a> {
    /// The account's location.
    pub location: &'a AccountLocation,
    /// The username (the organization's slug).
    pub username: &'a str,
    /// The password, when the owner chose to include it.
    pub password: Option<&'a str>,
    /// What Contacts shows as the account name (e.g. the organization's name).
    pub description: &'a str,
    /// A stable identifier of the account (the installation id): installing the profile twice
    /// replaces the account instead of adding a second one.
    pub account_id: &'a str,
}

/// The profile as XML property-list text.
pub fn mobileconfig(p: &ProfileInput<'_>) -> String {
    let account_uuid = uuid_from(&format!("portico-carddav-account:{}", p.account_id));
    let profile_uuid = uuid_from(&format!("portico-carddav-profile:{}", p.account_id));
    let ident = format!("org.portico.carddav.{}", ident_part(p.account_id));
    let mut account = String::new();
    push_string(&mut account, "CardDAVAccountDescription", p.description);
    push_string(&mut account, "CardDAVHostName", &p.location.host);
    account.push_str(&format!(
        "\t\t\t<key>CardDAVPort</key>\n\t\t\t<integer>{}</integer>\n",
        p.location.port
    ));
    push_string(&mut account, "CardDAVPrincipalURL", &p.location.path);
    account.push_str(&format!(
        "\t\t\t<key>CardDAVUseSSL</key>\n\t\t\t<{}/>\n",
        p.location.ssl
    ));
    push_string(&mut account, "CardDAVUsername", p.username);
    if let Some(pw) = p.password {
        push_string(&mut account, "CardDAVPassword", pw);
    }
    push_string(
        &mut account,
        "PayloadDescription",
        "Adds the contacts account",
    );
    push_string(&mut account, "PayloadDisplayName", p.description);
    push_string(
        &mut account,
        "PayloadIdentifier",
        &format!("{ident}.account"),
    );
    push_string(&mut account, "PayloadType", "com.apple.carddav.account");
    push_string(&mut account, "PayloadUUID", &account_uuid);
    account.push_str("\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n");

    let mut top = String::new();
    push_string(&mut top, "PayloadDisplayName", p.description);
    push_string(&mut top, "PayloadIdentifier", &ident);
    top.push_str("\t\t\t<key>PayloadRemovalDisallowed</key>\n\t\t\t<false/>\n");
    push_string(&mut top, "PayloadType", "Configuration");
    push_string(&mut top, "PayloadUUID", &profile_uuid);
    top.push_str("\t\t\t<key>PayloadVersion</key>\n\t\t\t<integer>1</integer>\n");
    let top = top.replace("\t\t\t", "\t");

    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
         <!DOCTYPE plist PUBLIC \"-//Apple//DTD PLIST 1.0//EN\" \
         \"http://www.apple.com/DTDs/PropertyList-1.0.dtd\">\n\
         <plist version=\"1.0\">\n<dict>\n\
         \t<key>PayloadContent</key>\n\t<array>\n\t\t<dict>\n{account}\t\t</dict>\n\t</array>\n\
         {top}</dict>\n</plist>\n"
    )
}

fn push_string(out: &mut String, key: &str, value: &str) {
    out.push_str(&format!(
        "\t\t\t<key>{key}</key>\n\t\t\t<string>{}</string>\n",
        xml_text(value)
    ));
}

fn xml_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // Control characters are not allowed in XML 1.0 text; drop them.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Reverse-DNS identifiers allow letters, digits, `-` and `.`.
fn ident_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// A name-based UUID (version 5 layout over SHA-256 bits), upper case as Apple writes them.
fn uuid_from(name: &str) -> String {
    let d = Sha256::digest(name.as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls() {
        let l = AccountLocation::from_url("https://dav.example.com/api/apps/o/i/").unwrap();
        assert_eq!(
            l,
            AccountLocation {
                host: "dav.example.com".into(),
                port: 443,
                path: "/api/apps/o/i/".into(),
                ssl: true
            }
        );
        let l = AccountLocation::from_url("http://127.0.0.1:8080/x/").unwrap();
        assert_eq!((l.host.as_str(), l.port, l.ssl), ("127.0.0.1", 8080, false));
        let l = AccountLocation::from_url("http://[::1]:9/p").unwrap();
        assert_eq!((l.host.as_str(), l.port), ("::1", 9));
        assert!(AccountLocation::from_url("ftp://x/").is_none());
        assert!(AccountLocation::from_url("http://:80/").is_none());
        assert!(AccountLocation::from_url("http://h:notaport/").is_none());
    }

    fn parse_plist(text: &str) -> roxmltree::Document<'_> {
        let opts = roxmltree::ParsingOptions {
            allow_dtd: true,
            ..Default::default()
        };
        roxmltree::Document::parse_with_options(text, opts).expect("well-formed plist")
    }

    /// The value element following `<key>name</key>` inside the account dict.
    fn value_of<'a>(doc: &'a roxmltree::Document<'a>, name: &str) -> Option<String> {
        let key = doc
            .descendants()
            .find(|n| n.has_tag_name("key") && n.text() == Some(name))?;
        let v = key.next_siblings().skip(1).find(|n| n.is_element())?;
        Some(match v.tag_name().name() {
            "true" | "false" => v.tag_name().name().to_owned(),
            _ => v.text().unwrap_or_default().to_owned(),
        })
    }

    #[test]
    fn profile_has_the_carddav_payload_and_escapes_text() {
        let loc = AccountLocation::from_url("https://dav.example.com/api/apps/o1/i1/").unwrap();
        let input = ProfileInput {
            location: &loc,
            username: "acme",
            password: Some("p<&>w"),
            description: "Acme & Co customers",
            account_id: "i1",
        };
        let text = mobileconfig(&input);
        let doc = parse_plist(&text);
        assert_eq!(
            value_of(&doc, "PayloadType").as_deref(),
            Some("com.apple.carddav.account")
        );
        assert_eq!(
            value_of(&doc, "CardDAVHostName").as_deref(),
            Some("dav.example.com")
        );
        assert_eq!(value_of(&doc, "CardDAVPort").as_deref(), Some("443"));
        assert_eq!(
            value_of(&doc, "CardDAVPrincipalURL").as_deref(),
            Some("/api/apps/o1/i1/")
        );
        assert_eq!(value_of(&doc, "CardDAVUseSSL").as_deref(), Some("true"));
        assert_eq!(value_of(&doc, "CardDAVUsername").as_deref(), Some("acme"));
        assert_eq!(value_of(&doc, "CardDAVPassword").as_deref(), Some("p<&>w"));
        assert_eq!(
            value_of(&doc, "CardDAVAccountDescription").as_deref(),
            Some("Acme & Co customers")
        );
        // Stable ids: the same installation gives the same profile UUIDs.
        assert_eq!(text, mobileconfig(&input));
    }

    #[test]
    fn password_only_when_asked() {
        let loc = AccountLocation::from_url("http://h:8080/p/").unwrap();
        let text = mobileconfig(&ProfileInput {
            location: &loc,
            username: "u",
            password: None,
            description: "d",
            account_id: "i",
        });
        let doc = parse_plist(&text);
        assert_eq!(value_of(&doc, "CardDAVPassword"), None);
        assert_eq!(value_of(&doc, "CardDAVUseSSL").as_deref(), Some("false"));
        let uuid = value_of(&doc, "PayloadUUID").unwrap();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "5", "version nibble");
    }
}
