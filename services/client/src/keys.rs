//! The local identity: root key, device key and id, and home server, kept in a file readable
//! only by its owner.

use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::SigningKey;
use serde::{Deserialize, Serialize};

use crate::ClientError;

/// What `mzchat keygen` creates.
pub struct LocalIdentity {
    pub root: SigningKey,
    pub device: SigningKey,
    pub device_id: String,
    pub home_server: String,
}

impl std::fmt::Debug for LocalIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalIdentity")
            .field("user_id", &self.user_id())
            .field("device_id", &self.device_id)
            .field("home_server", &self.home_server)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct IdentityFile {
    root_seed: String,
    device_seed: String,
    device_id: String,
    home_server: String,
}

fn random_seed() -> Result<[u8; 32], ClientError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed)
        .map_err(|e| ClientError::Local(format!("random source: {e}")))?;
    Ok(seed)
}

impl LocalIdentity {
    /// New random keys for a user homed on `home_server`.
    pub fn generate(home_server: &str, device_id: &str) -> Result<Self, ClientError> {
        Ok(Self {
            root: SigningKey::from_bytes(&random_seed()?),
            device: SigningKey::from_bytes(&random_seed()?),
            device_id: device_id.to_owned(),
            home_server: home_server.trim_end_matches('/').to_ascii_lowercase(),
        })
    }

    pub fn user_id(&self) -> String {
        mzchat_proto::signing::encode_user_id(&self.root.verifying_key())
    }
}

/// Files under `$MZCHAT_HOME` (or the user's config directory).
#[derive(Debug, Clone)]
pub struct KeyStore {
    dir: PathBuf,
}

impl KeyStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// `$MZCHAT_HOME`, else the platform's config directory for mzchat.
    pub fn default_location() -> Result<Self, ClientError> {
        if let Some(home) = std::env::var_os("MZCHAT_HOME") {
            return Ok(Self::new(home));
        }
        directories::ProjectDirs::from("im", "mzchat", "mzchat")
            .map(|dirs| Self::new(dirs.config_dir()))
            .ok_or_else(|| ClientError::Local("no home directory; set MZCHAT_HOME".into()))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn identity_path(&self) -> PathBuf {
        self.dir.join("identity.json")
    }

    pub fn save_identity(&self, identity: &LocalIdentity) -> Result<(), ClientError> {
        let file = IdentityFile {
            root_seed: URL_SAFE_NO_PAD.encode(identity.root.to_bytes()),
            device_seed: URL_SAFE_NO_PAD.encode(identity.device.to_bytes()),
            device_id: identity.device_id.clone(),
            home_server: identity.home_server.clone(),
        };
        self.write_private(
            "identity.json",
            &serde_json::to_vec_pretty(&file).map_err(local)?,
        )
    }

    pub fn load_identity(&self) -> Result<LocalIdentity, ClientError> {
        let bytes = fs::read(self.identity_path()).map_err(|e| {
            ClientError::Local(format!(
                "no identity at {} ({e}); run `mzchat keygen` first",
                self.identity_path().display()
            ))
        })?;
        let file: IdentityFile = serde_json::from_slice(&bytes).map_err(local)?;
        let seed = |text: &str| -> Result<SigningKey, ClientError> {
            let bytes: [u8; 32] = URL_SAFE_NO_PAD
                .decode(text)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| ClientError::Local("identity file holds a malformed key".into()))?;
            Ok(SigningKey::from_bytes(&bytes))
        };
        Ok(LocalIdentity {
            root: seed(&file.root_seed)?,
            device: seed(&file.device_seed)?,
            device_id: file.device_id,
            home_server: file.home_server,
        })
    }

    pub fn has_identity(&self) -> bool {
        self.identity_path().exists()
    }

    /// Writes a file only its owner can read (0600 in a 0700 directory on Unix).
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> Result<(), ClientError> {
        create_private_dir(&self.dir)?;
        let path = self.dir.join(name);
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut options = fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(&tmp).map_err(local)?;
        file.write_all(bytes).map_err(local)?;
        file.sync_all().map_err(local)?;
        fs::rename(&tmp, &path).map_err(local)?;
        Ok(())
    }

    pub fn read(&self, name: &str) -> Option<Vec<u8>> {
        fs::read(self.dir.join(name)).ok()
    }
}

fn create_private_dir(dir: &Path) -> Result<(), ClientError> {
    fs::create_dir_all(dir).map_err(local)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(local)?;
    }
    Ok(())
}

fn local(err: impl std::fmt::Display) -> ClientError {
    ClientError::Local(err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_round_trips_through_a_private_file() {
        let dir = std::env::temp_dir().join(format!("mzchat-keys-{}", std::process::id()));
        let store = KeyStore::new(&dir);
        let identity = LocalIdentity::generate("https://A.example/", "laptop").expect("keys");
        store.save_identity(&identity).expect("save");
        let loaded = store.load_identity().expect("load");
        assert_eq!(loaded.user_id(), identity.user_id());
        assert_eq!(loaded.home_server, "https://a.example");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join("identity.json"))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        fs::remove_dir_all(dir).ok();
    }
}
