//! From a database URL to a connected dialect. Adding a database is one arm here and one file.

use std::sync::Once;
use std::time::Duration;

use rustls::NamedGroup;
use rustls::crypto::CryptoProvider;
use url::Url;

use super::{Dialect, mysql, postgres, sqlite};
use crate::error::EngineError;
use crate::outcome::DatabaseInfo;

/// A parsed database URL, not yet connected.
#[derive(Debug, Clone)]
pub enum DatabaseTarget {
    Postgres(Box<postgres::Target>),
    MySql(Box<mysql::Target>),
    Sqlite(sqlite::Target),
}

/// Whether the connection may create what is missing (Prisma's deploy creates the database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectPurpose {
    Read,
    Write,
}

/// `postgresql://`, `postgres://`, `mysql://`, `file:`, `sqlite:`.
pub fn parse_database_url(url: &str) -> Result<DatabaseTarget, EngineError> {
    let url = url.trim();
    let scheme = url
        .split(':')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    match scheme.as_str() {
        "postgresql" | "postgres" => {
            let parsed = Url::parse(url).map_err(|e| EngineError::InvalidDatabaseUrl {
                reason: format!("The PostgreSQL URL cannot be parsed: {e}."),
            })?;
            if parsed
                .query_pairs()
                .any(|(key, value)| key == "schema" && value.trim().is_empty())
            {
                return Err(EngineError::InvalidDatabaseUrl {
                    reason: "`?schema=` is empty: name the schema (`?schema=public`) or leave the parameter out for `public`.".into(),
                });
            }
            Ok(DatabaseTarget::Postgres(Box::new(
                postgres::Target::from_url(&parsed)?,
            )))
        }
        "mysql" => {
            let parsed = Url::parse(url).map_err(|e| EngineError::InvalidDatabaseUrl {
                reason: format!("The MySQL URL cannot be parsed: {e}."),
            })?;
            Ok(DatabaseTarget::MySql(Box::new(mysql::Target::from_url(
                &parsed,
            )?)))
        }
        "file" | "sqlite" => Ok(DatabaseTarget::Sqlite(sqlite::Target::from_url(url)?)),
        "" => Err(EngineError::InvalidDatabaseUrl {
            reason: "No database URL: pass --database-url or set DATABASE_URL.".into(),
        }),
        other => Err(EngineError::InvalidDatabaseUrl {
            reason: format!(
                "The URL scheme `{other}:` is not supported; use postgresql://, postgres://, mysql://, file: or sqlite:."
            ),
        }),
    }
}

impl DatabaseTarget {
    pub fn info(&self) -> DatabaseInfo {
        match self {
            DatabaseTarget::Postgres(t) => t.info().clone(),
            DatabaseTarget::MySql(t) => t.info().clone(),
            DatabaseTarget::Sqlite(t) => t.info().clone(),
        }
    }

    /// Runs `work` (a run of the engine) with every database connection attempt in it given
    /// up at `by` at the latest, whatever the connect timeout: the caller's deadline, less its
    /// margin, bounds connecting as it bounds every other wait.
    pub async fn connecting_by<F: std::future::Future>(
        by: Option<std::time::Instant>,
        work: F,
    ) -> F::Output {
        super::server::connecting_by(by, work).await
    }

    /// The provider Prisma would call this database.
    pub fn provider(&self) -> &'static str {
        match self {
            DatabaseTarget::Postgres(_) => "postgresql",
            DatabaseTarget::MySql(_) => "mysql",
            DatabaseTarget::Sqlite(_) => "sqlite",
        }
    }
}

/// Connects. Returns the dialect and, when something was created on the way, a note saying so.
pub async fn connect(
    target: &DatabaseTarget,
    purpose: ConnectPurpose,
    lock_wait: Duration,
) -> Result<(Box<dyn Dialect>, Option<String>), EngineError> {
    let create = purpose == ConnectPurpose::Write;
    Ok(match target {
        DatabaseTarget::Postgres(t) => {
            prefer_p256_key_share();
            let (dialect, note) = t.connect(create).await?;
            (Box::new(dialect), note)
        }
        DatabaseTarget::MySql(t) => {
            prefer_p256_key_share();
            let (dialect, note) = t.connect(create).await?;
            (Box::new(dialect), note)
        }
        DatabaseTarget::Sqlite(t) => {
            let (dialect, note) = t.connect(create, lock_wait).await?;
            (Box::new(dialect), note)
        }
    })
}

/// Makes database TLS handshakes offer a P-256 key share first (the process-wide rustls provider,
/// which the patched sqlx uses; see vendor/sqlx-core/PATCHES.md).
///
/// PostgreSQL up to 17 accepts exactly the one group of `ssl_ecdh_curve`, `prime256v1` by default
/// (RDS keeps that default; PostgreSQL 18's `ssl_groups` adds X25519 after it), and MySQL/MariaDB
/// accept it too. rustls's default offers an X25519MLKEM768 + X25519 share, which such a server
/// answers with a HelloRetryRequest: one more round trip per connection. The other groups stay
/// offered after P-256, in rustls's order. Installing the provider is cheap (no configuration
/// is built here); if something else in the process installed one first, that one is used.
pub fn prefer_p256_key_share() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let mut provider = rustls::crypto::aws_lc_rs::default_provider();
        provider
            .kx_groups
            .sort_by_key(|group| group.name() != NamedGroup::secp256r1);
        if CryptoProvider::install_default(provider).is_err() {
            tracing::debug!("a TLS crypto provider was already installed; it is used as is");
        }
    });
}

/// A server database given by its parts rather than a URL (the function's `DB_*` variables
/// and secret; the password may be an IAM auth token). No `Debug`: it holds the password.
pub struct ServerLogin<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: &'a str,
    pub password: &'a str,
    pub database: &'a str,
    /// PostgreSQL's schema (`None`: `public`); MySQL has none.
    pub schema: Option<&'a str>,
    /// The only trusted roots, PEM.
    pub ca_pem: &'a [u8],
}

impl DatabaseTarget {
    /// The `provider` database (Prisma's name: `postgresql`, `mysql`) at `login`, over
    /// verified TLS with `login.ca_pem` the only trusted roots: PostgreSQL `verify-full`;
    /// MySQL `VerifyIdentity` with the cleartext plugin an IAM token needs.
    pub fn from_parts(provider: &str, login: &ServerLogin) -> Result<DatabaseTarget, EngineError> {
        match provider {
            "postgresql" => Ok(DatabaseTarget::Postgres(Box::new(
                postgres::Target::from_parts(login),
            ))),
            "mysql" => Ok(DatabaseTarget::MySql(Box::new(mysql::Target::from_parts(
                login,
            )?))),
            other => Err(EngineError::InvalidDatabaseUrl {
                reason: format!(
                    "A `{other}` database cannot be given by host and user; use postgresql or mysql, or a database URL."
                ),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::time::Duration;

    use super::*;

    /// The key-exchange groups of the first ClientHello sent to a fake PostgreSQL server that
    /// accepts the SSLRequest and then reads the handshake's first record.
    fn key_shares_offered(sslmode: &str) -> Vec<u16> {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let port = listener.local_addr().expect("its address").port();
        let server = std::thread::spawn(move || -> Vec<u8> {
            let (mut peer, _) = listener.accept().expect("the client connects");
            let mut ssl_request = [0u8; 8];
            peer.read_exact(&mut ssl_request).expect("an SSLRequest");
            assert_eq!(
                ssl_request,
                [0, 0, 0, 8, 4, 210, 22, 47],
                "PostgreSQL's SSLRequest"
            );
            peer.write_all(b"S").expect("answer S");
            let mut header = [0u8; 5];
            peer.read_exact(&mut header).expect("a TLS record header");
            let length = usize::from(u16::from_be_bytes([header[3], header[4]]));
            let mut record = vec![0u8; length];
            peer.read_exact(&mut record).expect("the record");
            record
            // Dropping the stream ends the handshake: the client fails, as intended.
        });
        let url =
            format!("postgresql://u@127.0.0.1:{port}/db?sslmode={sslmode}&connect_timeout=60");
        let target = parse_database_url(&url).expect("a valid URL");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let connected = runtime.block_on(connect(&target, ConnectPurpose::Read, Duration::ZERO));
        assert!(
            connected.is_err(),
            "the fake server never completes a handshake"
        );
        let record = server.join().expect("the fake server ran");
        client_hello_key_shares(&record)
    }

    /// The `key_share` groups of a ClientHello handshake message (RFC 8446 §4.1.2, §4.2.8).
    fn client_hello_key_shares(hello: &[u8]) -> Vec<u16> {
        let u16_at = |at: usize| u16::from_be_bytes([hello[at], hello[at + 1]]);
        assert_eq!(hello[0], 1, "a ClientHello");
        let mut at = 4 + 2 + 32; // handshake header, legacy_version, random
        at += 1 + usize::from(hello[at]); // legacy_session_id
        at += 2 + usize::from(u16_at(at)); // cipher_suites
        at += 1 + usize::from(hello[at]); // legacy_compression_methods
        let end = at + 2 + usize::from(u16_at(at));
        at += 2;
        while at < end {
            let (kind, length) = (u16_at(at), usize::from(u16_at(at + 2)));
            at += 4;
            if kind == 51 {
                let mut groups = Vec::new();
                let mut share = at + 2;
                while share < at + length {
                    groups.push(u16_at(share));
                    share += 4 + usize::from(u16_at(share + 2));
                }
                return groups;
            }
            at += length;
        }
        panic!("the ClientHello has no key_share extension");
    }

    /// secp256r1 in the TLS NamedGroup registry.
    const SECP256R1: u16 = 0x0017;

    #[test]
    fn the_first_tls_key_share_is_the_one_postgresql_accepts() {
        assert_eq!(key_shares_offered("require"), [SECP256R1]);
        // The same for the function's verify-full (the handshake fails before any verification).
        assert_eq!(key_shares_offered("verify-full"), [SECP256R1]);
    }

    /// Reports whether the socket sqlx opened has TCP_NODELAY set.
    struct NoDelay;

    impl sqlx_core::net::WithSocket for NoDelay {
        type Output = Option<bool>;

        async fn with_socket<S: sqlx_core::net::Socket>(self, socket: S) -> Option<bool> {
            let any: &dyn std::any::Any = &socket;
            let stream = any.downcast_ref::<tokio::net::TcpStream>()?;
            stream.nodelay().ok()
        }
    }

    /// PostgreSQL and MySQL connections both open their TCP socket with sqlx's `connect_tcp`:
    /// it must set TCP_NODELAY (sqlx 0.9.0 does not; the vendored patch does), or each small
    /// write of the start-up and the TLS handshake waits for the peer's delayed ACK.
    #[test]
    fn database_sockets_set_tcp_nodelay() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let port = listener.local_addr().expect("its address").port();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let nodelay = runtime
            .block_on(sqlx_core::net::connect_tcp("127.0.0.1", port, NoDelay))
            .expect("connects to the local listener");
        assert_eq!(nodelay, Some(true), "a tokio TcpStream with TCP_NODELAY");
    }
}
