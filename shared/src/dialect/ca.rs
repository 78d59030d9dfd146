//! CA bundles: one rule for every trust-anchor file the migrator reads — a URL's `sslrootcert`
//! (`sslcert` on MySQL), the function's `DB_CA_BUNDLE` and the embedded RDS bundle. A bundle must
//! hold at least one PEM certificate and every certificate must be a usable trust anchor, so a
//! wrong file is reported naming the file instead of as a TLS handshake failure later.

use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// Why a CA bundle cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// The bundle file could not be read.
    #[error("cannot read the CA bundle `{}`: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The bundle holds no `-----BEGIN CERTIFICATE-----` section.
    #[error("no PEM certificate (`-----BEGIN CERTIFICATE-----`) found")]
    NoCertificates,
    /// A PEM section is malformed (no END line, bad base64…).
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// Certificate number `index` (1-based, in file order) is not a usable X.509 certificate.
    #[error("certificate #{index} is not a valid X.509 certificate: {reason}")]
    Certificate { index: usize, reason: String },
    /// An error in the bundle file at `path`.
    #[error("CA bundle `{}`: {source}", path.display())]
    InFile { path: PathBuf, source: Box<CaError> },
}

/// Counts the certificates in a PEM bundle; errors if it holds none or one does not parse as X.509.
///
/// Sections of other kinds (keys, CRLs) are ignored; each certificate must be accepted as a trust
/// anchor by webpki, the parser rustls uses for its root store.
pub fn count_certificates(pem: &[u8]) -> Result<usize, CaError> {
    let mut count = 0;
    for section in CertificateDer::pem_slice_iter(pem) {
        let cert = section.map_err(|e| CaError::Pem(e.to_string()))?;
        count += 1;
        webpki::anchor_from_trusted_cert(&cert).map_err(|e| CaError::Certificate {
            index: count,
            reason: format!("{e:?}"),
        })?;
    }
    if count == 0 {
        return Err(CaError::NoCertificates);
    }
    Ok(count)
}

/// Reads a CA bundle file and checks it with [`count_certificates`]; errors name the file.
pub fn read_ca_file(path: &Path) -> Result<Vec<u8>, CaError> {
    let pem = std::fs::read(path).map_err(|source| CaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    count_certificates(&pem).map_err(|e| CaError::InFile {
        path: path.to_path_buf(),
        source: Box::new(e),
    })?;
    Ok(pem)
}
