//! Docker's credentials file (`~/.docker/config.json`, or
//! `$DOCKER_CONFIG/config.json`): `auths` with base64 `user:password`, and
//! the `credsStore` / `credHelpers` programs (`docker-credential-<name>`),
//! so that `imgstore login` and `docker login` read each other's logins.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::{Map, Value, json};

use super::client::{base64, base64_decode};
use super::{Client, ClientOptions, Credentials, RegistryError};

/// The key Docker files Docker Hub's credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// Docker's credentials file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerConfig {
    path: PathBuf,
}

/// The key of `host`'s entry in `auths` (Docker Hub's is its v1 URL).
pub fn config_key(host: &str) -> String {
    if is_docker_hub(host) {
        DOCKER_HUB_KEY.to_owned()
    } else {
        host.to_owned()
    }
}

fn is_docker_hub(host: &str) -> bool {
    matches!(
        host,
        "docker.io" | "index.docker.io" | "registry-1.docker.io" | DOCKER_HUB_KEY
    )
}

/// The host an `auths` key names: `https://host/v1/` and `host` alike.
fn key_host(key: &str) -> &str {
    let rest = key.split_once("://").map_or(key, |(_, rest)| rest);
    rest.split('/').next().unwrap_or(rest)
}

impl DockerConfig {
    /// The file Docker uses: `$DOCKER_CONFIG/config.json`, else
    /// `~/.docker/config.json`.
    pub fn default_location() -> DockerConfig {
        let dir = match std::env::var_os("DOCKER_CONFIG") {
            Some(dir) if !dir.is_empty() => PathBuf::from(dir),
            _ => std::env::var_os("HOME")
                .map_or_else(|| PathBuf::from("."), PathBuf::from)
                .join(".docker"),
        };
        DockerConfig::at(dir.join("config.json"))
    }

    /// The credentials file at `path`.
    pub fn at(path: impl Into<PathBuf>) -> DockerConfig {
        DockerConfig { path: path.into() }
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, reason: impl std::fmt::Display) -> RegistryError {
        RegistryError::Credentials {
            path: self.path.clone(),
            reason: reason.to_string(),
        }
    }

    /// The file's JSON object; an empty one when it does not exist.
    fn read(&self) -> Result<Map<String, Value>, RegistryError> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
            Err(e) => return Err(self.error(e)),
        };
        match serde_json::from_slice(&bytes).map_err(|e| self.error(e))? {
            Value::Object(map) => Ok(map),
            _ => Err(self.error("not a JSON object")),
        }
    }

    /// Replaces the file (0600, its directory 0700 when created) with a
    /// complete new one: written beside it, then renamed.
    fn write(&self, config: &Map<String, Value>) -> Result<(), RegistryError> {
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let dir = self.path.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| self.error(e))?;
        let bytes = serde_json::to_vec_pretty(config).map_err(|e| self.error(e))?;
        let temp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)
            .and_then(|mut file| {
                file.write_all(&bytes)?;
                file.write_all(b"\n")?;
                file.sync_all()
            })
            .and_then(|()| std::fs::rename(&temp, &self.path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temp);
            return Err(self.error(e));
        }
        Ok(())
    }

    /// The helper program for `host`: its `credHelpers` entry, else
    /// `credsStore`.
    fn helper(config: &Map<String, Value>, host: &str) -> Option<String> {
        let key = config_key(host);
        config
            .get("credHelpers")
            .and_then(Value::as_object)
            .and_then(|helpers| {
                helpers
                    .iter()
                    .find(|(k, _)| k.as_str() == key || key_host(k) == key_host(&key))
                    .and_then(|(_, v)| v.as_str())
            })
            .or_else(|| config.get("credsStore").and_then(Value::as_str))
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
    }

    /// The helper program (`docker-credential-<name>`) that keeps `host`'s
    /// credentials; `None` when they go in the file.
    pub fn helper_for(&self, host: &str) -> Result<Option<String>, RegistryError> {
        Ok(DockerConfig::helper(&self.read()?, host))
    }

    /// The credentials stored for `host` (`docker.io` or `127.0.0.1:5000`),
    /// from its helper program if one is configured, else from `auths`.
    pub fn credentials_for(&self, host: &str) -> Result<Option<Credentials>, RegistryError> {
        let config = self.read()?;
        if let Some(helper) = DockerConfig::helper(&config, host) {
            return self.helper_get(&helper, &config_key(host));
        }
        let key = config_key(host);
        let Some(auths) = config.get("auths").and_then(Value::as_object) else {
            return Ok(None);
        };
        let entry = auths
            .get(&key)
            .or_else(|| {
                auths
                    .iter()
                    .find(|(k, _)| key_host(k) == key_host(&key))
                    .map(|(_, v)| v)
            })
            .and_then(Value::as_object);
        let Some(entry) = entry else {
            return Ok(None);
        };
        if let Some(auth) = entry.get("auth").and_then(Value::as_str)
            && !auth.is_empty()
        {
            let decoded = base64_decode(auth)
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| {
                    self.error(format!("auths.{key}.auth is not base64 of user:password"))
                })?;
            let (username, password) = decoded
                .split_once(':')
                .ok_or_else(|| self.error(format!("auths.{key}.auth holds no ':'")))?;
            return Ok(Some(Credentials {
                username: username.to_owned(),
                password: password.to_owned(),
            }));
        }
        Ok(None)
    }

    /// Stores `credentials` for `host`: with its helper program if one is
    /// configured, else base64 in `auths` (the file's other settings kept).
    pub fn store(&self, host: &str, credentials: &Credentials) -> Result<(), RegistryError> {
        let mut config = self.read()?;
        let key = config_key(host);
        if let Some(helper) = DockerConfig::helper(&config, host) {
            let input = json!({
                "ServerURL": key,
                "Username": credentials.username,
                "Secret": credentials.password,
            })
            .to_string();
            self.run_helper(&helper, "store", &input)?;
            return Ok(());
        }
        let auths = config
            .entry("auths")
            .or_insert_with(|| Value::Object(Map::new()));
        if !auths.is_object() {
            *auths = Value::Object(Map::new());
        }
        if let Value::Object(auths) = auths {
            let auth =
                base64(format!("{}:{}", credentials.username, credentials.password).as_bytes());
            auths.insert(key, json!({ "auth": auth }));
        }
        self.write(&config)
    }

    /// Forgets `host`'s credentials; false when there were none.
    pub fn erase(&self, host: &str) -> Result<bool, RegistryError> {
        let mut config = self.read()?;
        let key = config_key(host);
        if let Some(helper) = DockerConfig::helper(&config, host) {
            let found = self.helper_get(&helper, &key)?.is_some();
            if found {
                self.run_helper(&helper, "erase", &key)?;
            }
            return Ok(found);
        }
        let removed = match config.get_mut("auths").and_then(Value::as_object_mut) {
            Some(auths) => {
                let keys: Vec<String> = auths
                    .keys()
                    .filter(|k| k.as_str() == key || key_host(k) == key_host(&key))
                    .cloned()
                    .collect();
                for k in &keys {
                    auths.remove(k);
                }
                !keys.is_empty()
            }
            None => false,
        };
        if removed {
            self.write(&config)?;
        }
        Ok(removed)
    }

    fn helper_get(&self, helper: &str, key: &str) -> Result<Option<Credentials>, RegistryError> {
        let Some(output) = self.run_helper(helper, "get", key)? else {
            return Ok(None);
        };
        let value: Value = serde_json::from_slice(&output)
            .map_err(|e| self.error(format!("docker-credential-{helper} get: {e}")))?;
        let field = |name: &str| {
            value
                .get(name)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let (username, password) = (field("Username"), field("Secret"));
        if username.is_empty() && password.is_empty() {
            return Ok(None);
        }
        Ok(Some(Credentials { username, password }))
    }

    /// Runs `docker-credential-<helper> <action>` with `input` on stdin:
    /// its stdout, or `None` when it says the credentials are not found.
    fn run_helper(
        &self,
        helper: &str,
        action: &str,
        input: &str,
    ) -> Result<Option<Vec<u8>>, RegistryError> {
        let program = format!("docker-credential-{helper}");
        let failed = |reason: String| self.error(format!("{program} {action}: {reason}"));
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(input.as_bytes())
                .map_err(|e| failed(e.to_string()))?;
        }
        let output = child
            .wait_with_output()
            .map_err(|e| failed(e.to_string()))?;
        if output.status.success() {
            return Ok(Some(output.stdout));
        }
        let said = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        // The helpers' protocol: this message means "nothing stored".
        if said.contains("credentials not found") {
            return Ok(None);
        }
        Err(failed(if said.is_empty() {
            String::from_utf8_lossy(&output.stderr).trim().to_owned()
        } else {
            said
        }))
    }
}

/// The registry a `login` argument names: `host[:port]` of a URL or of a
/// bare name; Docker Hub (`docker.io`) when `None`.
pub fn login_host(server: Option<&str>) -> String {
    match server {
        None => "docker.io".to_owned(),
        Some(server) if is_docker_hub(server) => "docker.io".to_owned(),
        Some(server) => key_host(server).to_owned(),
    }
}

/// `docker login`: checks `credentials` against `host` (`GET /v2/`,
/// answering its challenge) and, when the registry accepts them, stores
/// them in `config`. Nothing is stored when it refuses.
pub fn login(
    host: &str,
    credentials: &Credentials,
    options: &ClientOptions,
    config: &DockerConfig,
) -> Result<(), RegistryError> {
    let mut options = options.clone();
    options.credentials = Some(credentials.clone());
    Client::new(host, &options)?.ping()?;
    config.store(host, credentials)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> Credentials {
        Credentials {
            username: "alice".to_owned(),
            password: "s3:cret".to_owned(),
        }
    }

    #[test]
    fn stored_credentials_read_back_and_the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = DockerConfig::at(dir.path().join("docker/config.json"));
        assert_eq!(
            config.credentials_for("127.0.0.1:5000").expect("read"),
            None
        );
        config.store("127.0.0.1:5000", &alice()).expect("store");
        assert_eq!(
            config.credentials_for("127.0.0.1:5000").expect("read"),
            Some(alice())
        );
        let mode = std::fs::metadata(config.path())
            .expect("stat")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let json: Value =
            serde_json::from_slice(&std::fs::read(config.path()).expect("read")).expect("json");
        assert_eq!(
            json["auths"]["127.0.0.1:5000"]["auth"],
            "YWxpY2U6czM6Y3JldA=="
        );
        assert!(config.erase("127.0.0.1:5000").expect("erase"));
        assert!(!config.erase("127.0.0.1:5000").expect("erase again"));
        assert_eq!(
            config.credentials_for("127.0.0.1:5000").expect("read"),
            None
        );
    }

    #[test]
    fn docker_hub_is_filed_under_its_v1_url_and_other_settings_are_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths":{"https://quay.io/v1/":{"auth":"Ym9iOnB3"}},"psFormat":"table {{.ID}}"}"#,
        )
        .expect("write");
        let config = DockerConfig::at(&path);
        config.store("docker.io", &alice()).expect("store");
        let json: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("json");
        assert_eq!(json["psFormat"], "table {{.ID}}");
        assert!(json["auths"][DOCKER_HUB_KEY]["auth"].is_string());
        // A key with a scheme and path names its host.
        assert_eq!(
            config.credentials_for("quay.io").expect("read"),
            Some(Credentials {
                username: "bob".to_owned(),
                password: "pw".to_owned()
            })
        );
        assert_eq!(
            config.credentials_for("docker.io").expect("read"),
            Some(alice())
        );
    }

    #[test]
    fn a_credentials_file_that_is_not_json_is_named_in_the_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("config.json");
        std::fs::write(&path, "{not json").expect("write");
        let err = DockerConfig::at(&path)
            .credentials_for("docker.io")
            .expect_err("refused");
        assert!(
            err.to_string().starts_with(&path.display().to_string()),
            "{err}"
        );
    }
}
