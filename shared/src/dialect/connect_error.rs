//! Connection failures, as every dialect reports them: Prisma's codes, and TLS failures in
//! words a person can act on.

use crate::error::EngineError;
use crate::outcome::DatabaseInfo;

/// Why a connection attempt failed.
pub(crate) enum ConnectError {
    /// The database named in the URL does not exist (deploy creates it, like Prisma).
    MissingDatabase,
    Auth(String),
    /// The server answered with an error of its own (it was reached): reported as it said it.
    Refused(sqlx::Error),
    Other(String),
}

impl ConnectError {
    /// P1003, P1000 or P1001, naming where we tried (`default_port` when the URL had none);
    /// the server's own refusal as its error.
    pub(crate) fn into_engine(self, info: &DatabaseInfo, default_port: u16) -> EngineError {
        let target = format!(
            "{}:{}",
            info.host.as_deref().unwrap_or("localhost"),
            info.port.unwrap_or(default_port)
        );
        let (reason, code) = match self {
            ConnectError::Refused(source) => {
                return EngineError::Database {
                    context: "The database server refused the connection",
                    source,
                };
            }
            ConnectError::MissingDatabase => {
                (format!("database `{}` does not exist", info.name), "P1003")
            }
            ConnectError::Auth(reason) => (format!("authentication failed: {reason}"), "P1000"),
            ConnectError::Other(reason) => (reason, "P1001"),
        };
        EngineError::Connect {
            target,
            reason,
            code,
        }
    }
}

/// The TLS failures rustls reports, said plainly; `None` for anything else. `ca_param` names
/// the URL parameter that sets the CA (`sslrootcert`, `sslcert`).
pub(crate) fn describe_tls(raw: &str, host: &str, ca_param: &str) -> Option<String> {
    if raw.contains("UnknownIssuer") {
        Some(format!(
            "the server's TLS certificate is not signed by a trusted CA (unknown issuer): check {ca_param} / the CA bundle ({raw})"
        ))
    } else if raw.contains("not valid for name") || raw.contains("NotValidForName") {
        Some(format!(
            "the server's TLS certificate is not valid for host `{host}` ({raw})"
        ))
    } else if raw.contains("Expired") {
        Some(format!(
            "the server's TLS certificate has expired or is not yet valid ({raw})"
        ))
    } else {
        None
    }
}
