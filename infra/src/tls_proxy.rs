//! The lab's TLS terminator: Lambda's first call to DynamoDB, S3 or SES starts with a TLS
//! handshake, DynamoDB Local and moto speak plain HTTP. This proxy accepts TLS on 127.0.0.1 with a
//! certificate made for the run (signed by a CA made for the run, which callers trust through
//! `AWS_CA_BUNDLE`) and forwards the bytes to the plain upstream.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;

#[derive(Debug, thiserror::Error)]
#[error("tls proxy: {0}")]
pub struct ProxyError(String);

fn err(e: impl std::fmt::Display) -> ProxyError {
    ProxyError(e.to_string())
}

/// A CA and a certificate it signed for `localhost` and `127.0.0.1`.
pub struct Certificates {
    /// The CA's certificate, PEM: what a client trusts (`AWS_CA_BUNDLE`).
    pub ca_pem: String,
    server: rustls::ServerConfig,
}

impl Certificates {
    pub fn generate() -> Result<Self, ProxyError> {
        use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
        let ca_key = KeyPair::generate().map_err(err)?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        ca.distinguished_name.push(DnType::CommonName, "inspection-portal lab CA");
        let ca_cert = ca.self_signed(&ca_key).map_err(err)?;
        let leaf_key = KeyPair::generate().map_err(err)?;
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).map_err(err)?;
        leaf.distinguished_name.push(DnType::CommonName, "localhost");
        let leaf_cert = leaf.signed_by(&leaf_key, &ca_cert, &ca_key).map_err(err)?;
        let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).map_err(err)?;
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(err)?
            .with_no_client_auth()
            .with_single_cert(vec![leaf_cert.der().clone(), ca_cert.der().clone()], key)
            .map_err(err)?;
        Ok(Certificates { ca_pem: ca_cert.pem(), server })
    }
}

/// Serves TLS on a free 127.0.0.1 port, forwarding each connection to `upstream` (plain TCP).
/// Returns its address; the task runs until aborted.
pub async fn serve(
    certificates: &Certificates,
    upstream: SocketAddr,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ProxyError> {
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(err)?;
    let addr = listener.local_addr().map_err(err)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(certificates.server.clone()));
    let task = tokio::spawn(async move {
        loop {
            let Ok((client, _)) = listener.accept().await else { continue };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let _ = client.set_nodelay(true);
                let Ok(mut tls) = acceptor.accept(client).await else { return };
                let Ok(mut plain) = TcpStream::connect(upstream).await else { return };
                let _ = plain.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    Ok((addr, task))
}

/// The port of an `http://127.0.0.1:<port>` endpoint URL.
pub fn upstream_of(url: &str) -> Option<SocketAddr> {
    url.strip_prefix("http://")?.trim_end_matches('/').parse().ok()
}
