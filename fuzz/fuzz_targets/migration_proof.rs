//! Homeserver migration proofs (PROTOCOL.md section 8): identity's verify_migration.
//!
//! Properties, for every input decoded as a `MigrationProof`:
//! - nothing panics;
//! - as received, it is accepted only with exactly the signature the user's root key makes;
//! - re-signed by the root key, moved to this server and timed within the clock skew, it is
//!   accepted exactly when it names at most 16 targets that all parse as origins, and the
//!   accepted targets are those origins, deduplicated, without this server.
#![no_main]

use ed25519_dalek::Signer;
use libfuzzer_sys::fuzz_target;
use mzchat_fuzz::{ME, NOW, certificate, me, root_key};
use mzchat_identity::domain::login::{CLOCK_SKEW_SECS, MAX_MIGRATION_TARGETS, verify_migration};
use mzchat_platform::Origin;
use mzchat_proto::{common::MigrationProof, signing};
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(received) = MigrationProof::decode(data) else {
        return;
    };
    for allow_http in [false, true] {
        // As received: the fuzzer cannot sign, so acceptance means our key signed it.
        if verify_migration(certificate(), &received, &me(), NOW, allow_http).is_ok() {
            assert_eq!(received.migration_signature, sign(&received));
        }
        // Re-signed as it stands, so the checks after the signature run on the fuzzer's fields.
        let mut signed = received.clone();
        signed.migration_signature = sign(&signed);
        if let Ok(verified) = verify_migration(certificate(), &signed, &me(), NOW, allow_http) {
            assert_eq!(signed.new_homeserver, ME);
            assert!(NOW.abs_diff(signed.migration_timestamp) <= CLOCK_SKEW_SECS.unsigned_abs());
            assert_eq!(
                verified.targets,
                expected_targets(&signed, allow_http).expect("accepted")
            );
        }
        // Moved to this server within the skew: only the targets decide.
        let mut current = received.clone();
        current.new_homeserver = ME.into();
        current.migration_timestamp = NOW - CLOCK_SKEW_SECS
            + received
                .migration_timestamp
                .rem_euclid(2 * CLOCK_SKEW_SECS + 1);
        current.migration_signature = sign(&current);
        let result = verify_migration(certificate(), &current, &me(), NOW, allow_http);
        match expected_targets(&current, allow_http) {
            Some(targets) => {
                let verified = result.expect("a signed, current proof with valid targets");
                assert_eq!(verified.targets, targets);
                assert_eq!(verified.timestamp, current.migration_timestamp);
                assert_eq!(verified.signature, current.migration_signature);
            }
            None => assert!(
                result.is_err(),
                "accepted bad targets {:?}",
                current.migration_targets
            ),
        }
    }
});

/// The root key's signature over the proof's `new_homeserver|timestamp`.
fn sign(proof: &MigrationProof) -> Vec<u8> {
    let input = signing::migration_signing_input(&proof.new_homeserver, proof.migration_timestamp);
    root_key().sign(&input).to_bytes().to_vec()
}

/// The targets an acceptable proof yields, or None when they make it unacceptable.
fn expected_targets(proof: &MigrationProof, allow_http: bool) -> Option<Vec<Origin>> {
    if proof.migration_targets.len() > MAX_MIGRATION_TARGETS {
        return None;
    }
    let mut targets: Vec<Origin> = Vec::new();
    for text in &proof.migration_targets {
        let origin = Origin::parse(text, allow_http).ok()?;
        if origin != me() && !targets.contains(&origin) {
            targets.push(origin);
        }
    }
    Some(targets)
}
