//! RDS IAM database authentication tokens.
//!
//! A token is a SigV4 query-string presign, for service `rds-db` and valid for 900 s, of
//! `https://HOST:PORT/?Action=connect&DBUser=USER`, with the scheme stripped; RDS takes it as
//! the password. It is built the way the AWS Rust SDK's own generator builds it
//! (`awslabs/aws-sdk-rust`, `sdk/rds/src/auth_token.rs`), with two changes that make it
//! byte-identical to botocore's `generate_db_auth_token` (what `aws rds generate-db-auth-token`
//! prints) for every input:
//!
//! - the user name is percent-encoded (the SDK puts it in the URL raw, so a `+` in it is signed
//!   as a space);
//! - `X-Amz-Signature` comes last, after `X-Amz-Security-Token`.
//!
//! Mint a fresh token for every connection, and never log one: [`describe`] gives a form of it
//! with the signature and the session token masked.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
};
use aws_sigv4::sign::v4;

/// The signing name of RDS IAM authentication.
const SERVICE: &str = "rds-db";
/// How long a token is valid: the most RDS accepts.
const EXPIRES_IN: Duration = Duration::from_secs(900);
/// The query parameters that [`describe`] masks.
const MASKED: [&str; 2] = ["X-Amz-Signature", "X-Amz-Security-Token"];

/// What a token is minted for.
#[derive(Debug, Clone, Copy)]
pub struct TokenRequest<'a> {
    /// The database endpoint's DNS name (or IPv4 address), as clients connect to it.
    pub host: &'a str,
    /// The database port, e.g. 5432 or 3306.
    pub port: u16,
    /// The database user that has the `rds_iam` role (PostgreSQL) or plugin (MySQL).
    pub user: &'a str,
    /// The database's AWS region, e.g. `eu-west-1`.
    pub region: &'a str,
}

/// Why no token was minted. Messages name the bad input, never credentials or tokens.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The host is empty or not a plain DNS name or IPv4 address.
    #[error("RDS auth token: host {0:?} is not a DNS name or IPv4 address")]
    InvalidHost(String),
    /// Port 0.
    #[error("RDS auth token: port 0 is not a database port")]
    InvalidPort,
    /// The region is empty or has characters other than ASCII letters, digits and `-`.
    #[error("RDS auth token: region {0:?} is not an AWS region name")]
    InvalidRegion(String),
    /// The user name is empty.
    #[error("RDS auth token: the database user name is empty")]
    EmptyUser,
    /// The SigV4 signer refused; the text is the signer's error message.
    #[error("RDS auth token: signing failed: {0}")]
    Signing(String),
}

/// A token without the scheme: `HOST:PORT/?Action=connect&DBUser=USER&X-Amz-…` (what RDS
/// expects as the password), signed with `credentials` at `time`, valid for 900 s from then.
pub fn generate(
    request: &TokenRequest<'_>,
    credentials: &Credentials,
    time: SystemTime,
) -> Result<String, TokenError> {
    validate(request)?;
    let base = format!(
        "{}:{}/?Action=connect&DBUser={}",
        request.host,
        request.port,
        encode(request.user)
    );
    // The signed `host` header is lowercase (as botocore signs it); the token keeps the host
    // as given, as botocore's does.
    let url = format!(
        "https://{}{}",
        request.host.to_ascii_lowercase(),
        &base[request.host.len()..]
    );

    let mut settings = SigningSettings::default();
    settings.expires_in = Some(EXPIRES_IN);
    settings.signature_location = SignatureLocation::QueryParams;
    let identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(request.region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    let signable = SignableRequest::new("GET", &url, std::iter::empty(), SignableBody::Bytes(&[]))
        .map_err(|e| TokenError::Signing(e.to_string()))?;
    let (instructions, _signature) = sign(signable, &params.into())
        .map_err(|e| TokenError::Signing(e.to_string()))?
        .into_parts();

    // botocore's order: the signer's parameters as it lists them, the signature last.
    let mut ordered: Vec<_> = instructions.params().iter().collect();
    ordered.sort_by_key(|(name, _)| *name == "X-Amz-Signature");
    let mut token = base;
    for (name, value) in ordered {
        token.push('&');
        token.push_str(&encode(name));
        token.push('=');
        token.push_str(&encode(value));
    }
    Ok(token)
}

/// `token` with the values of `X-Amz-Signature` and `X-Amz-Security-Token` replaced by `…`:
/// safe for debug logs (what is left is the host, port, user, access key id and time).
pub fn describe(token: &str) -> String {
    let Some((head, query)) = token.split_once('?') else {
        return token.to_owned();
    };
    let pairs: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, _)) if MASKED.contains(&name) => format!("{name}=…"),
            _ => pair.to_owned(),
        })
        .collect();
    format!("{head}?{}", pairs.join("&"))
}

fn validate(request: &TokenRequest<'_>) -> Result<(), TokenError> {
    let host_ok = !request.host.is_empty()
        && request
            .host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if !host_ok {
        return Err(TokenError::InvalidHost(request.host.to_owned()));
    }
    if request.port == 0 {
        return Err(TokenError::InvalidPort);
    }
    let region_ok = !request.region.is_empty()
        && request
            .region
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if !region_ok {
        return Err(TokenError::InvalidRegion(request.region.to_owned()));
    }
    if request.user.is_empty() {
        return Err(TokenError::EmptyUser);
    }
    Ok(())
}

/// SigV4's URI encoding (RFC 3986): every byte but `A-Z a-z 0-9 - _ . ~` as `%XX`, the same
/// as botocore's `quote(value, safe='-_.~')`.
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::process::Command;
    use std::time::UNIX_EPOCH;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    const SESSION: &str = "IQoJb3JpZ2luX2VjEHcaCWV1LXdlc3QtMSJHMEUCIQD+example/session==";

    fn at(epoch: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(epoch)
    }

    fn request<'a>(host: &'a str, port: u16, user: &'a str, region: &'a str) -> TokenRequest<'a> {
        TokenRequest {
            host,
            port,
            user,
            region,
        }
    }

    /// The test vector of the AWS Rust SDK's RDS auth token generator, copied exactly from
    /// `signing_works` in `awslabs/aws-sdk-rust`, file `sdk/rds/src/auth_token.rs`.
    #[test]
    fn matches_the_aws_rust_sdk_test_vector() {
        let credentials = Credentials::new("akid", "secret", None, None, "test");
        let token = generate(
            &request(
                "prod-instance.us-east-1.rds.amazonaws.com",
                3306,
                "peccy",
                "us-east-1",
            ),
            &credentials,
            UNIX_EPOCH + Duration::from_secs(1724709600),
        )
        .unwrap();
        assert_eq!(
            token,
            "prod-instance.us-east-1.rds.amazonaws.com:3306/?Action=connect&DBUser=peccy&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=akid%2F20240826%2Fus-east-1%2Frds-db%2Faws4_request&X-Amz-Date=20240826T220000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host&X-Amz-Signature=dd0cba843009474347af724090233265628ace491ea17ce3eb3da098b983ad89"
        );
    }

    /// The workspace root: this crate is `functions/migrator`.
    fn workspace() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// botocore's token for the same inputs, from `tests/scripts/botocore_token.py`.
    fn botocore(req: &TokenRequest<'_>, akid: &str, session: Option<&str>, epoch: u64) -> String {
        let python = std::env::var_os("MIGRATOR_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace().join("target/py/bin/python3"));
        let hint = "run `make setup` (it creates the target/py venv with botocore), \
                    or point MIGRATOR_PYTHON at a python3 that can import botocore";
        assert!(python.exists(), "no python at {}: {hint}", python.display());
        let port = req.port.to_string();
        let epoch = epoch.to_string();
        let mut args = vec![req.host, &port, req.user, req.region, akid, SECRET];
        args.extend(session);
        args.push(&epoch);
        let out = Command::new(&python)
            .arg(workspace().join("tests/scripts/botocore_token.py"))
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}; {hint}", python.display()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "botocore_token.py failed ({}): {stderr}\n{hint}",
            out.status
        );
        String::from_utf8(out.stdout).unwrap().trim_end().to_owned()
    }

    #[test]
    fn matches_botocore() {
        let host = "mydb.cluster-c9akciq32.eu-west-1.rds.amazonaws.com";
        let cases = [
            (
                request(host, 5432, "migrator", "eu-west-1"),
                None,
                1_700_000_000,
            ),
            (
                request(host, 5432, "migrator", "eu-west-1"),
                Some(SESSION),
                1_700_000_000,
            ),
            (
                request("db.example.internal", 3306, "db_user+1", "us-east-1"),
                None,
                1_724_709_600,
            ),
            (
                request("db.example.internal", 3306, "db_user+1", "us-east-1"),
                Some(SESSION),
                1_724_709_600,
            ),
            (
                request("MyDB.Example.COM", 5432, "über user*~", "eu-west-1"),
                Some(SESSION),
                1_735_689_599,
            ),
            (
                request(
                    "10.0.3.7",
                    443,
                    " !\"#$%&'()*+,/:;<=>?@[\\]^`{|}",
                    "us-east-1",
                ),
                None,
                1_735_689_600,
            ),
        ];
        for (req, session, epoch) in cases {
            let credentials = Credentials::new(
                "AKIAIOSFODNN7EXAMPLE",
                SECRET,
                session.map(str::to_owned),
                None,
                "test",
            );
            let ours = generate(&req, &credentials, at(epoch)).unwrap();
            let theirs = botocore(&req, "AKIAIOSFODNN7EXAMPLE", session, epoch);
            assert_eq!(
                ours,
                theirs,
                "{req:?} session={} epoch={epoch}",
                session.is_some()
            );
        }
    }

    #[test]
    fn secrets_stay_out_of_tokens_and_errors() {
        let credentials = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            SECRET,
            Some(SESSION.to_owned()),
            None,
            "test",
        );
        let good = request("db.example.com", 5432, "migrator", "eu-west-1");
        let token = generate(&good, &credentials, at(1_700_000_000)).unwrap();
        assert!(!token.contains(SECRET) && !token.contains(&encode(SECRET)));

        let signature = token.rsplit_once("X-Amz-Signature=").unwrap().1;
        let bad = [
            request("db.example.com/x", 5432, "migrator", "eu-west-1"),
            request("", 5432, "migrator", "eu-west-1"),
            request("db.example.com", 0, "migrator", "eu-west-1"),
            request("db.example.com", 5432, "migrator", "eu west 1"),
            request("db.example.com", 5432, "", "eu-west-1"),
        ];
        let mut errors: Vec<TokenError> = bad
            .iter()
            .map(|req| generate(req, &credentials, at(1_700_000_000)).unwrap_err())
            .collect();
        errors.push(TokenError::Signing("signer failed".to_owned()));
        for error in &errors {
            for text in [format!("{error}"), format!("{error:?}")] {
                for secret in [&token, signature, SECRET, SESSION, &encode(SESSION)] {
                    assert!(!text.contains(secret), "{text}");
                }
            }
        }
    }

    #[test]
    fn describe_masks_the_signature_and_session_token() {
        let credentials = Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            SECRET,
            Some(SESSION.to_owned()),
            None,
            "test",
        );
        let token = generate(
            &request("db.example.com", 5432, "migrator", "eu-west-1"),
            &credentials,
            at(1_700_000_000),
        )
        .unwrap();
        let described = describe(&token);
        assert_eq!(
            described,
            "db.example.com:5432/?Action=connect&DBUser=migrator&X-Amz-Algorithm=AWS4-HMAC-SHA256\
             &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20231114%2Feu-west-1%2Frds-db%2Faws4_request\
             &X-Amz-Date=20231114T221320Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
             &X-Amz-Security-Token=…&X-Amz-Signature=…"
        );
        assert_eq!(describe("no query"), "no query");
    }
}
