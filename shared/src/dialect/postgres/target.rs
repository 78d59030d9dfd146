//! Where to connect: a `postgresql://` URL or the function's parts, the connection and the
//! database a deploy creates.

use super::*;
use crate::dialect::ServerLogin;
use crate::dialect::server::UrlParts;

/// Where to connect, from a `postgresql://` URL.
#[derive(Debug, Clone)]
pub struct Target {
    pub(super) options: PgConnectOptions,
    /// Prisma's notion of the schema: `?schema=` or `public`.
    pub(super) schema: String,
    pub(super) server: Server,
}

impl Target {
    /// Reads a Prisma-style PostgreSQL URL. Prisma-only parameters (`schema`, `connection_limit`,
    /// `pgbouncer` …) are consumed here; libpq-style TLS parameters are honoured.
    pub fn from_url(url: &Url) -> Result<Target, EngineError> {
        let invalid = |reason: String| EngineError::InvalidDatabaseUrl { reason };
        let UrlParts {
            host,
            port,
            user,
            password,
            database,
        } = UrlParts::read(url, 5432);

        let mut options = PgConnectOptions::new_without_pgpass()
            .port(port)
            .application_name("migrator");
        if let Some(host) = &host {
            options = options.host(host);
        }
        if !user.is_empty() {
            options = options.username(&user);
        }
        if let Some(password) = &password {
            options = options.password(password);
        }
        if !database.is_empty() {
            options = options.database(&database);
        }

        let mut schema = None;
        let mut connect_timeout = Duration::from_secs(10);
        for (key, value) in url.query_pairs() {
            let ignored = ["pgbouncer", "sslcert"];
            if let Some(read) =
                server::common_parameter(&key, &value, &mut connect_timeout, &ignored)
            {
                read.map_err(invalid)?;
                continue;
            }
            match &*key {
                "schema" => schema = Some(value.to_string()),
                "sslmode" => {
                    let mode: PgSslMode = value
                        .parse()
                        .map_err(|_| invalid(format!("Unknown sslmode `{value}`.")))?;
                    options = options.ssl_mode(mode);
                }
                "sslrootcert" => {
                    let pem = read_ca_file(std::path::Path::new(&*value))
                        .map_err(|e| invalid(e.to_string()))?;
                    options = options.ssl_root_cert_from_pem(pem);
                }
                "host" if value.starts_with('/') => options = options.socket(&*value),
                "host" => options = options.host(&value),
                "application_name" => options = options.application_name(&value),
                "options" => options = options.options(parse_options(&value)),
                other => {
                    return Err(invalid(format!(
                        "Unknown parameter `{other}` in the PostgreSQL URL."
                    )));
                }
            }
        }
        let schema_in_url = schema.is_some();
        let schema = schema.unwrap_or_else(|| "public".to_string());
        if schema_in_url {
            options = with_search_path(options, &schema);
        }
        let name = if database.is_empty() {
            user.clone()
        } else {
            database
        };
        let info = DatabaseInfo {
            engine: "postgresql".into(),
            host: Some(host.unwrap_or_else(|| "localhost".into())),
            port: Some(port),
            name,
            schema: Some(schema.clone()),
        };
        Ok(Target {
            options,
            schema,
            server: server(info, connect_timeout),
        })
    }

    pub fn info(&self) -> &DatabaseInfo {
        &self.server.info
    }

    /// A target from its parts (the function's stage configuration), TLS `verify-full` with
    /// `ca_pem` as the only trusted roots. The password may be an IAM auth token.
    pub fn from_parts(login: &ServerLogin) -> Target {
        let ServerLogin {
            host,
            port,
            user,
            password,
            database,
            schema,
            ca_pem,
        } = *login;
        let options = PgConnectOptions::new_without_pgpass()
            .host(host)
            .port(port)
            .username(user)
            .password(password)
            .database(database)
            .application_name("migrator")
            .ssl_mode(PgSslMode::VerifyFull)
            .ssl_root_cert_from_pem(ca_pem.to_vec());
        let schema_in_url = schema.is_some();
        let schema = schema.unwrap_or("public").to_string();
        let options = if schema_in_url {
            with_search_path(options, &schema)
        } else {
            options
        };
        let info = DatabaseInfo {
            engine: "postgresql".into(),
            host: Some(host.to_string()),
            port: Some(port),
            name: database.to_string(),
            schema: Some(schema.clone()),
        };
        Target {
            options,
            schema,
            server: server(info, Duration::from_secs(10)),
        }
    }

    /// Connects; with `create_database`, a missing database is created first, as Prisma's deploy does.
    pub async fn connect(
        &self,
        create_database: bool,
    ) -> Result<(Postgres, Option<String>), EngineError> {
        let open = async || self.open(&self.options).await;
        let (conn, created) = self
            .server
            .connect(create_database, open, async || self.create_database().await)
            .await?;
        let mut pg = Postgres {
            conn,
            worker: None,
            target: self.clone(),
            locked: false,
            unflushed: false,
            sql: BookkeepingSql::new(
                format!("{}.\"_prisma_migrations\"", quote_ident(&self.schema)),
                Placeholders::Numbered,
            ),
            standard_strings: true,
            current: String::new(),
        };
        pg.setup_session().await?;
        Ok((pg, created))
    }

    /// A plain connection with the same options (and so the same `search_path`), for
    /// preflight's read-only probes.
    pub async fn read_connection(&self) -> Result<PgConnection, EngineError> {
        self.open(&self.options)
            .await
            .map_err(|e| self.server.connect_error(e))
    }

    async fn open(&self, options: &PgConnectOptions) -> Result<PgConnection, ConnectError> {
        let refusals = Refusals {
            missing_database: |e| e.code().as_deref() == Some("3D000"),
            auth: |e| matches!(e.code().as_deref(), Some("28P01" | "28000")),
        };
        self.server
            .open(options, &refusals, |e| describe_connect_error(e, options))
            .await
    }

    async fn create_database(&self) -> Result<(), EngineError> {
        let admin = self.open(&self.options.clone().database("postgres")).await;
        // Another deploy created it at the same moment: 42P04, or 23505 on
        // `pg_database_datname_index` when both inserts raced in the catalog.
        let exists = |e: &dyn sqlx::error::DatabaseError| {
            matches!(e.code().as_deref(), Some("42P04" | "23505"))
        };
        self.server
            .create_database(admin, quote_ident(&self.server.info.name), exists)
            .await
    }
}

/// Says what went wrong with a connection in words a person can act on (TLS above all).
pub(super) fn describe_connect_error(error: &sqlx::Error, options: &PgConnectOptions) -> String {
    let raw = error.to_string();
    if let Some(text) = describe_tls(&raw, options.get_host(), "sslrootcert") {
        return text;
    }
    if raw.contains("server does not support TLS") {
        let mode = match options.get_ssl_mode() {
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
            _ => "the sslmode",
        };
        return format!("the server does not accept TLS (sslmode={mode} requires it)");
    }
    raw
}

/// `-c search_path="schema"` in the startup packet: the session's own default, which
/// `RESET` and `RESET ALL` in a script return to (Prisma's `?schema=`).
pub(super) fn with_search_path(options: PgConnectOptions, schema: &str) -> PgConnectOptions {
    options.options([("search_path", quote_ident(schema))])
}

/// `-c key=value -c other=x` from the libpq `options` parameter.
pub(super) fn parse_options(value: &str) -> Vec<(String, String)> {
    value
        .split_whitespace()
        .filter(|part| *part != "-c")
        .filter_map(|part| {
            let part = part.strip_prefix("-c").unwrap_or(part);
            part.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn server(info: DatabaseInfo, connect_timeout: Duration) -> Server {
    Server {
        label: "PostgreSQL",
        default_port: 5432,
        info,
        connect_timeout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_keeps_prisma_schema_and_never_the_password() {
        let url = Url::parse("postgresql://u:s%40cret@db.example:6543/app?schema=tenant&connection_limit=1&sslmode=require").unwrap();
        let target = Target::from_url(&url).unwrap();
        assert_eq!(target.schema, "tenant");
        assert!(format!("{:?}", target.options).contains("search_path"));
        assert_eq!(target.server.info.port, Some(6543));
        assert_eq!(target.server.info.name, "app");
        assert!(!format!("{:?}", target.server.info).contains("cret"));
    }

    #[test]
    fn unknown_url_parameters_are_refused() {
        let url = Url::parse("postgresql://u@h/db?shcema=x").unwrap();
        assert!(matches!(
            Target::from_url(&url),
            Err(EngineError::InvalidDatabaseUrl { .. })
        ));
    }
}
