//! TLS in front of the local platform's API and router, so it can serve as
//! Cloud Foundry does: `https://` for the API and for every route, under a
//! CA of its own that a client trusts through `SSL_CERT_FILE`, the way a
//! team trusts a foundation with a self-signed certificate.
//!
//! The CA lives in the state directory (`ca.pem`, and `ca-key.pem` readable
//! by the user only) and is kept across starts, so a trust given once
//! holds. It is name-constrained to `localhost` and 127.0.0.1: a CA a user
//! was told to trust can vouch for nothing else, even if its key leaks.
//! Each start signs a fresh server certificate for `localhost`,
//! `*.apps.localhost` and 127.0.0.1.
//!
//! TLS is terminated here and the plain bytes passed to the API or router
//! port, as a load balancer in front of gorouter does; the router's own
//! limits (head, body, keep-alive, connection cap) then apply unchanged.

use crate::platform::PlatformError;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose,
    GeneralSubtree, IsCa, Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

/// The CA certificate's file name in the state directory.
pub const CA_FILE: &str = "ca.pem";
const CA_KEY_FILE: &str = "ca-key.pem";

/// A handshake must finish within this; then each read or write of a
/// connection (the router answers or closes well within it).
const HANDSHAKE: Duration = Duration::from_secs(5);
const IDLE: Duration = Duration::from_secs(90);

/// Connections the terminator holds at once; past it, new ones wait in the
/// kernel's accept queue.
const MAX_CONNECTIONS: usize = 4096;

fn io(path: &Path) -> impl Fn(std::io::Error) -> PlatformError + '_ {
    move |source| PlatformError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn tls_err(what: &str) -> impl Fn(rcgen::Error) -> PlatformError + '_ {
    move |e| PlatformError::Local(format!("{what}: {e}"))
}

/// The CA's parameters: the same every start, so a stored key rebuilds the
/// issuer of the stored certificate.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "bluegreen local platform CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.name_constraints = Some(NameConstraints {
        permitted_subtrees: vec![
            GeneralSubtree::DnsName("localhost".into()),
            GeneralSubtree::IpAddress(rcgen::CidrSubnet::V4([127, 0, 0, 1], [255, 255, 255, 255])),
        ],
        excluded_subtrees: vec![],
    });
    params
}

/// The CA in `dir`, made on first use.
fn ca(dir: &Path) -> Result<(PathBuf, Issuer<'static, KeyPair>), PlatformError> {
    let cert_path = dir.join(CA_FILE);
    let key_path = dir.join(CA_KEY_FILE);
    if let (Ok(_), Ok(key)) = (
        std::fs::read_to_string(&cert_path),
        std::fs::read_to_string(&key_path),
    ) && let Ok(key) = KeyPair::from_pem(&key)
    {
        return Ok((cert_path, Issuer::new(ca_params(), key)));
    }
    let key = KeyPair::generate().map_err(tls_err("generating the CA key"))?;
    let cert = ca_params()
        .self_signed(&key)
        .map_err(tls_err("signing the CA certificate"))?;
    super::daemon::write_private(&key_path, key.serialize_pem().as_bytes())?;
    let partial = dir.join("ca.pem.new");
    std::fs::write(&partial, cert.pem()).map_err(io(&partial))?;
    std::fs::rename(&partial, &cert_path).map_err(io(&cert_path))?;
    Ok((cert_path, Issuer::new(ca_params(), key)))
}

/// The CA's path and an acceptor with a server certificate signed by it.
pub fn acceptor(dir: &Path) -> Result<(PathBuf, TlsAcceptor), PlatformError> {
    let (ca_path, issuer) = ca(dir)?;
    // Not `*.localhost`: a wildcard over a single label is refused by
    // certificate checkers (as `*.com` would be).
    let names = ["localhost", "*.apps.localhost", "127.0.0.1"];
    let mut params = CertificateParams::new(names.map(String::from).to_vec())
        .map_err(tls_err("server certificate names"))?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let key = KeyPair::generate().map_err(tls_err("generating the server key"))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(tls_err("signing the server certificate"))?;
    let key_der = rustls_pki_types::PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| PlatformError::Local(format!("server key: {e}")))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(vec![cert.der().clone()], key_der)
        })
        .map_err(|e| PlatformError::Local(format!("TLS configuration: {e}")))?;
    Ok((ca_path, TlsAcceptor::from(Arc::new(config))))
}

/// Accepts TLS on `listener` and passes each connection's plain bytes to
/// `backend` (a port on 127.0.0.1) until `stop`.
pub async fn serve(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    backend: u16,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            _ = stop.changed() => return,
            a = listener.accept() => a,
        };
        let Ok((client, _)) = accepted else {
            // Out of descriptors, say: wait instead of spinning.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let Ok(Ok(tls)) = tokio::time::timeout(HANDSHAKE, acceptor.accept(client)).await else {
                return;
            };
            let Ok(Ok(app)) =
                tokio::time::timeout(HANDSHAKE, TcpStream::connect(("127.0.0.1", backend))).await
            else {
                return;
            };
            pipe(tls, app).await;
        });
    }
}

/// Copies both ways until the backend is done, each read and write bounded.
async fn pipe(client: tokio_rustls::server::TlsStream<TcpStream>, backend: TcpStream) {
    let (mut client_in, mut client_out) = tokio::io::split(client);
    let (mut backend_in, mut backend_out) = backend.into_split();
    let up = async {
        copy(&mut client_in, &mut backend_out).await;
        let _ = backend_out.shutdown().await;
    };
    let down = async {
        copy(&mut backend_in, &mut client_out).await;
        let _ = client_out.shutdown().await;
    };
    // The backend's answer ends the connection; the client's end only ends
    // what it sends (a half-closed client still gets its answer).
    tokio::pin!(down);
    tokio::select! {
        _ = &mut down => {}
        _ = async { up.await; std::future::pending::<()>().await } => {}
    }
}

async fn copy(from: &mut (impl AsyncReadExt + Unpin), to: &mut (impl AsyncWriteExt + Unpin)) {
    let mut buf = vec![0u8; 16 << 10];
    loop {
        let n = match tokio::time::timeout(IDLE, from.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return,
        };
        match tokio::time::timeout(IDLE, to.write_all(&buf[..n])).await {
            Ok(Ok(())) => {}
            _ => return,
        }
        if to.flush().await.is_err() {
            return;
        }
    }
}

tokio::task_local! {
    /// The origin the request being answered came to, when not the plain
    /// API's own: links in answers (pages, jobs, the root) name it, since a
    /// client sends its token only to the origin it was given.
    static BASE_URL: String;
}

/// `app`, answering with links under `base`.
pub fn with_base_url(app: axum::Router, base: String) -> axum::Router {
    app.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            BASE_URL.scope(base.clone(), next.run(req))
        },
    ))
}

/// The origin links in the current answer name: the TLS one for a request
/// that came through TLS, else `plain`.
pub fn base_url(plain: &str) -> String {
    BASE_URL
        .try_with(|b| b.clone())
        .unwrap_or_else(|_| plain.to_string())
}
