//! Sealed-secret opening (`host/src/secrets.rs`): any string given to `Sealer::open`,
//! `Sealer::reseal` or `inspect` gives a value or an error, never a panic, and a sealed value
//! fails closed once any byte of it changes.
//!
//! The first byte picks the mode: `S` seals the rest as plaintext and opens it back (exact
//! round trip, wrong field and wrong installation refused), `T` seals a fixed plaintext and
//! overwrites bytes of the sealed text with the input (the result must not open unless it is
//! unchanged); anything else feeds the whole input as a sealed value.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portico_host::secrets::{inspect, Resealed, Sealer, SecretError};
use portico_sdk::InstallationId;

/// 32 bytes of 7 and of 9, base64: the active and a previous key.
const ACTIVE_KEY: &str = "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=";
const PREVIOUS_KEY: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";
const FIELD: &str = "password";

struct Fixture {
    sealer: Sealer,
    inst: InstallationId,
    other_inst: InstallationId,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let active = Sealer::from_base64(ACTIVE_KEY).expect("fixed key");
        let previous = Sealer::from_base64(PREVIOUS_KEY).expect("fixed key");
        Fixture {
            sealer: active.with_previous(&[previous]),
            inst: InstallationId::parse("inst-1").expect("fixed id"),
            other_inst: InstallationId::parse("inst-2").expect("fixed id"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    match data.split_first() {
        Some((b'S', rest)) => {
            let plaintext = String::from_utf8_lossy(rest);
            let sealed = f.sealer.seal(&f.inst, FIELD, &plaintext);
            let info = inspect(&sealed).expect("a fresh value inspects");
            assert_eq!(info.field.as_deref(), Some(FIELD));
            assert_eq!(info.key_id.as_deref(), Some(f.sealer.active_id()));
            let opened = f.sealer.open(&f.inst, FIELD, &sealed).expect("round trip");
            assert_eq!(opened.expose().as_str(), &*plaintext);
            assert!(f.sealer.open(&f.inst, "other", &sealed).is_err());
            assert!(f.sealer.open(&f.other_inst, FIELD, &sealed).is_err());
            assert!(matches!(
                f.sealer.reseal(&f.inst, FIELD, &sealed),
                Ok(Resealed::Current)
            ));
        }
        Some((b'T', rest)) => {
            let sealed = f.sealer.seal(&f.inst, FIELD, "hunter2");
            let mut bytes = sealed.clone().into_bytes();
            // Pairs (position, byte): overwrite the sealed text there.
            for pair in rest.chunks_exact(2).take(8) {
                let len = bytes.len();
                bytes[usize::from(pair[0]) % len] = pair[1];
            }
            let Ok(tampered) = String::from_utf8(bytes) else {
                return;
            };
            let opened = f.sealer.open(&f.inst, FIELD, &tampered);
            if tampered != sealed {
                assert!(opened.is_err(), "a changed sealed value opened: {tampered}");
            }
        }
        _ => {
            let Ok(s) = std::str::from_utf8(data) else {
                return;
            };
            let info = inspect(s);
            let opened = f.sealer.open(&f.inst, FIELD, s);
            if let Some(info) = &info {
                if info.field.as_deref().is_some_and(|field| field != FIELD) {
                    assert!(matches!(opened, Err(SecretError::Unauthentic)));
                }
            } else {
                assert!(matches!(opened, Err(SecretError::Malformed)));
            }
            let _ = f.sealer.reseal(&f.inst, FIELD, s);
        }
    }
});
