//! Where to connect: a `mysql://` URL or the function's parts (TLS, the cleartext plugin for
//! IAM tokens), the session options, the connection and the database a deploy creates.

use super::*;
use crate::dialect::ServerLogin;
use crate::dialect::server::UrlParts;

/// Where to connect, from a `mysql://` URL or the function's parts.
#[derive(Debug, Clone)]
pub struct Target {
    pub(super) options: MySqlConnectOptions,
    /// The same without a database, to create a missing one.
    pub(super) admin: MySqlConnectOptions,
    pub(super) server: Server,
}

impl Target {
    /// Reads a Prisma-style MySQL URL. Prisma's pool and driver parameters are accepted and
    /// ignored; `sslmode` / `ssl-mode` and `sslcert` (Prisma: the CA to trust) are honoured.
    pub fn from_url(url: &Url) -> Result<Target, EngineError> {
        let invalid = |reason: String| EngineError::InvalidDatabaseUrl { reason };
        let parts = UrlParts::read(url, 3306);
        if parts.database.is_empty() {
            return Err(invalid(
                "The MySQL URL names no database: use mysql://user:password@host:3306/database."
                    .into(),
            ));
        }
        refuse_system_database(&parts.database)?;
        let host = parts.host.unwrap_or_else(|| "localhost".to_string());
        let (port, database) = (parts.port, parts.database);

        let mut options = base_options().host(&host).port(port);
        if !parts.user.is_empty() {
            options = options.username(&parts.user);
        }
        if let Some(password) = &parts.password {
            options = options.password(password);
        }
        let mut connect_timeout = Duration::from_secs(10);
        for (key, value) in url.query_pairs() {
            let ignored = ["max_connection_lifetime", "max_idle_connection_lifetime"];
            if let Some(read) =
                server::common_parameter(&key, &value, &mut connect_timeout, &ignored)
            {
                read.map_err(invalid)?;
                continue;
            }
            match &*key {
                "sslmode" | "ssl-mode" | "ssl_mode" => {
                    let mode: MySqlSslMode = value
                        .replace('-', "_")
                        .parse()
                        .map_err(|_| invalid(format!("Unknown sslmode `{value}` (use disabled, preferred, required, verify_ca or verify_identity).")))?;
                    options = options.ssl_mode(mode);
                }
                // Prisma's MySQL `sslcert` is the server's root certificate.
                "sslcert" | "sslrootcert" | "ssl-ca" => {
                    let pem = read_ca_file(std::path::Path::new(&*value))
                        .map_err(|e| invalid(e.to_string()))?;
                    options = options.ssl_ca_from_pem(pem);
                }
                "socket" => options = options.socket(&*value),
                other => {
                    return Err(invalid(format!(
                        "Unknown parameter `{other}` in the MySQL URL."
                    )));
                }
            }
        }
        let admin = options.clone();
        let options = options.database(&database);
        let info = DatabaseInfo {
            engine: "mysql".into(),
            host: Some(host),
            port: Some(port),
            name: database,
            schema: None,
        };
        Ok(Target {
            options,
            admin,
            server: server(info, connect_timeout),
        })
    }

    /// A target from its parts (the function's stage configuration): TLS `VerifyIdentity`
    /// (the server certificate must chain to `ca_pem` and name `host`) and the cleartext
    /// plugin, which RDS IAM authentication needs (the password is then an IAM auth token;
    /// it only ever travels inside the verified TLS session).
    pub fn from_parts(login: &ServerLogin) -> Result<Target, EngineError> {
        let ServerLogin {
            host,
            port,
            user,
            password,
            database,
            ca_pem,
            ..
        } = *login;
        refuse_system_database(database)?;
        let admin = base_options()
            .host(host)
            .port(port)
            .username(user)
            .password(password)
            .ssl_mode(MySqlSslMode::VerifyIdentity)
            .ssl_ca_from_pem(ca_pem.to_vec())
            .enable_cleartext_plugin(true);
        let options = admin.clone().database(database);
        let info = DatabaseInfo {
            engine: "mysql".into(),
            host: Some(host.to_string()),
            port: Some(port),
            name: database.to_string(),
            schema: None,
        };
        Ok(Target {
            options,
            admin,
            server: server(info, Duration::from_secs(10)),
        })
    }

    pub fn info(&self) -> &DatabaseInfo {
        &self.server.info
    }

    /// Connects; with `create_database`, a missing database is created first, as Prisma's deploy does.
    pub async fn connect(
        &self,
        create_database: bool,
    ) -> Result<(MySql, Option<String>), EngineError> {
        let open = async || self.open(&self.options).await;
        let (conn, created) = self
            .server
            .connect(create_database, open, async || self.create_database().await)
            .await?;
        let mut mysql = MySql {
            conn,
            worker: None,
            target: self.clone(),
            locked: false,
            mariadb: false,
            current: String::new(),
            sql: BookkeepingSql::new(
                format!(
                    "{}.`_prisma_migrations`",
                    quote_ident(&self.server.info.name)
                ),
                Placeholders::Question,
            ),
        };
        let version: String = sqlx::query_scalar("SELECT VERSION()")
            .fetch_one(&mut mysql.conn)
            .await
            .map_err(EngineError::database("reading the server version"))?;
        mysql.mariadb = version.to_ascii_lowercase().contains("mariadb");
        Ok((mysql, created))
    }

    /// Another connection with the same options (login, TLS): the working session of an apply,
    /// and preflight's probes.
    pub async fn read_connection(&self) -> Result<MySqlConnection, EngineError> {
        self.open(&self.options)
            .await
            .map_err(|e| self.server.connect_error(e))
    }

    async fn open(&self, options: &MySqlConnectOptions) -> Result<MySqlConnection, ConnectError> {
        let refusals = Refusals {
            missing_database: |e| error_number(e) == Some(ER_BAD_DB_ERROR),
            auth: |e| {
                matches!(
                    error_number(e),
                    Some(
                        ER_ACCESS_DENIED_ERROR
                            | ER_DBACCESS_DENIED_ERROR
                            | ER_ACCESS_DENIED_NO_PASSWORD_ERROR
                    )
                ) || e.code().as_deref() == Some("28000")
            },
        };
        self.server
            .open(options, &refusals, |e| describe_connect_error(e, options))
            .await
    }

    async fn create_database(&self) -> Result<(), EngineError> {
        let admin = self.open(&self.admin).await;
        // Another deploy created it at the same moment.
        let exists =
            |e: &dyn sqlx::error::DatabaseError| error_number(e) == Some(ER_DB_CREATE_EXISTS);
        self.server
            .create_database(admin, quote_ident(&self.server.info.name), exists)
            .await
    }
}

/// Options shared by URLs and parts: the session keeps the server's `sql_mode` and
/// `time_zone` (sqlx would otherwise add `PIPES_AS_CONCAT`, which changes what `||` means in
/// a migration, and force `time_zone`, which changes `NOW()` in one). Timestamps are bound as
/// UTC wall times into `DATETIME(3)`, as Prisma does, so the session time zone does not matter.
pub(super) fn base_options() -> MySqlConnectOptions {
    MySqlConnectOptions::new()
        .pipes_as_concat(false)
        .no_engine_substitution(false)
        .timezone(None)
        .statement_cache_capacity(16)
}

pub(super) fn refuse_system_database(database: &str) -> Result<(), EngineError> {
    if SYSTEM_DATABASES
        .iter()
        .any(|s| s.eq_ignore_ascii_case(database))
    {
        return Err(EngineError::SystemDatabase {
            database: database.to_string(),
        });
    }
    Ok(())
}

/// Says what went wrong with a connection in words a person can act on (TLS above all).
pub(super) fn describe_connect_error(error: &sqlx::Error, options: &MySqlConnectOptions) -> String {
    let raw = error.to_string();
    if let Some(text) = describe_tls(&raw, options.get_host(), "sslcert") {
        return text;
    }
    if raw.contains("RSA auth backend disabled") {
        return format!(
            "the server asked for RSA password exchange (caching_sha2_password without TLS): connect with TLS (sslmode=required or stricter) ({raw})"
        );
    }
    raw
}

fn server(info: DatabaseInfo, connect_timeout: Duration) -> Server {
    Server {
        label: "MySQL",
        default_port: 3306,
        info,
        connect_timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_reads_prisma_parameters_and_never_shows_the_password() {
        let url = Url::parse(
            "mysql://u:s%40cret@db.example:3307/app?connection_limit=1&sslaccept=strict&sslmode=required",
        )
        .unwrap();
        let target = Target::from_url(&url).unwrap();
        assert_eq!(target.server.info.engine, "mysql");
        assert_eq!(target.server.info.port, Some(3307));
        assert_eq!(target.server.info.name, "app");
        assert!(matches!(
            target.options.get_ssl_mode(),
            MySqlSslMode::Required
        ));
        assert!(!format!("{:?}", target.server.info).contains("cret"));
    }

    #[test]
    fn system_databases_are_refused_with_p3004() {
        for db in ["mysql", "INFORMATION_SCHEMA", "performance_schema", "Sys"] {
            let url = Url::parse(&format!("mysql://root@h/{db}")).unwrap();
            let err = Target::from_url(&url).unwrap_err();
            assert_eq!(err.code(), Some("P3004"), "{db}");
        }
        assert!(Target::from_parts(&login("mysql", b"")).is_err());
    }

    #[test]
    fn unknown_parameters_and_missing_databases_are_refused() {
        for url in [
            "mysql://u@h/db?shcema=x",
            "mysql://u@h/",
            "mysql://u@h/db?sslmode=bogus",
        ] {
            assert!(
                matches!(
                    Target::from_url(&Url::parse(url).unwrap()),
                    Err(EngineError::InvalidDatabaseUrl { .. })
                ),
                "{url}"
            );
        }
    }

    fn login<'a>(database: &'a str, ca_pem: &'a [u8]) -> ServerLogin<'a> {
        ServerLogin {
            host: "db.example",
            port: 3306,
            user: "app",
            password: "token",
            database,
            schema: None,
            ca_pem,
        }
    }

    #[test]
    fn parts_verify_identity_with_the_cleartext_plugin() {
        let target = Target::from_parts(&login("app", b"pem")).unwrap();
        assert!(matches!(
            target.options.get_ssl_mode(),
            MySqlSslMode::VerifyIdentity
        ));
        assert_eq!(target.server.info.name, "app");
    }
}
