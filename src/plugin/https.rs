//! A plugin's https requests, sent by the host's own client. wasi-http's
//! sender trusts only the public roots and the system resolver; the host's
//! client trusts what the platform client does (`BLUEGREEN_CA_FILE`,
//! `SSL_CERT_FILE`) and connects where `BLUEGREEN_CONNECT_TO` says (see
//! `platform::trust`). So a probe plugin reaches a candidate on a
//! foundation with its own CA (or the local platform serving as Cloud
//! Foundry) exactly as the host's own health probe does. The origin was
//! checked against the grant before this is called.

use http_body_util::BodyExt;
use std::time::Duration;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// The largest request body a plugin sends over https (it is buffered).
const MAX_BODY: usize = 16 << 20;
/// wasi-http's own default for each wait a plugin does not bound.
const DEFAULT_WAIT: Duration = Duration::from_secs(600);

pub type Sent = (
    http::Response<WasiBody>,
    Box<dyn Future<Output = wasmtime_wasi_http::Result<()>> + Send>,
);

pub async fn send(
    request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
) -> wasmtime_wasi_http::Result<Sent> {
    let (parts, body) = request.into_parts();
    let body = http_body_util::Limited::new(body, MAX_BODY)
        .collect()
        .await
        .map_err(|_| Error::HttpRequestBodySize(None))?
        .to_bytes();
    let wait = |w: Option<Duration>| w.unwrap_or(DEFAULT_WAIT);
    let options = options.unwrap_or_default();
    let client = crate::platform::trust::client_builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(wait(options.connect_timeout))
        .read_timeout(wait(options.between_bytes_timeout))
        .build()
        .map_err(|e| Error::InternalError(Some(e.to_string())))?;
    let send = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send();
    let resp = tokio::time::timeout(wait(options.first_byte_timeout), send)
        .await
        .map_err(|_| Error::ConnectionReadTimeout)?
        .map_err(failure)?;
    let mut answer = http::Response::builder().status(resp.status());
    if let Some(headers) = answer.headers_mut() {
        *headers = resp.headers().clone();
    }
    let body = reqwest::Body::from(resp).map_err(failure).boxed_unsync();
    let answer = answer
        .body(body)
        .map_err(|e| Error::InternalError(Some(e.to_string())))?;
    Ok((answer, Box::new(async { Ok(()) })))
}

/// The plugin sees what kind of failure it was; the text never holds the
/// URL (its query may carry a secret).
fn failure(e: reqwest::Error) -> Error {
    let timeout = e.is_timeout();
    let text = crate::platform::trust::describe(e);
    if timeout {
        Error::ConnectionReadTimeout
    } else if text.contains("certificate") {
        Error::TlsCertificateError
    } else {
        Error::InternalError(Some(text))
    }
}
