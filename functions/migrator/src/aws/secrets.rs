//! Database credentials from an RDS-style Secrets Manager secret.

use migrator_engine::error::EngineError;
use serde::Deserialize;

/// The JSON RDS writes for a managed secret (extra fields are ignored).
#[derive(Deserialize)]
pub struct DbSecret {
    pub username: String,
    pub password: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default, deserialize_with = "port")]
    pub port: Option<u16>,
    #[serde(default)]
    pub dbname: Option<String>,
}

impl std::fmt::Debug for DbSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbSecret")
            .field("username", &self.username)
            .field("password", &"…")
            .field("host", &self.host)
            .field("port", &self.port)
            .finish()
    }
}

/// RDS writes the port as a number; people write it as a string.
fn port<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Port {
        Number(u16),
        Text(String),
    }
    Ok(match Option::<Port>::deserialize(d)? {
        None => None,
        Some(Port::Number(n)) => Some(n),
        Some(Port::Text(t)) => Some(t.parse().map_err(serde::de::Error::custom)?),
    })
}

pub async fn database_secret(
    client: &aws_sdk_secretsmanager::Client,
    arn: &str,
) -> Result<DbSecret, EngineError> {
    let fail = |reason: String| EngineError::Credentials { reason };
    let response = client
        .get_secret_value()
        .secret_id(arn)
        .send()
        .await
        .map_err(|e| {
            fail(format!(
                "reading secret {arn} failed: {}",
                crate::aws::describe_sdk_error(&e)
            ))
        })?;
    let text = response
        .secret_string()
        .ok_or_else(|| fail(format!("secret {arn} has no string value")))?;
    // Never echo the secret's content in an error.
    serde_json::from_str(text).map_err(|e| {
        fail(format!(
            "secret {arn} is not an RDS-style JSON secret with username and password (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rds_secrets_parse_and_debug_hides_the_password() {
        let s: DbSecret = serde_json::from_str(r#"{"username":"u","password":"p@ss","engine":"postgres","host":"h","port":5432,"dbname":"d"}"#).unwrap();
        assert_eq!(s.port, Some(5432));
        assert!(!format!("{s:?}").contains("p@ss"));
        let s: DbSecret =
            serde_json::from_str(r#"{"username":"u","password":"p","port":"3306"}"#).unwrap();
        assert_eq!(s.port, Some(3306));
    }
}
