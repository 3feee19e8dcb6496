//! `POST /v3/packages/:guid/upload`: the `bits` field streams to disk chunk
//! by chunk, so an upload costs the daemon a few buffers whatever its size.
//! Chunks come off the request on the async side and go through a short
//! channel to one writer on the blocking pool: file writes never hold an
//! async worker, and a slow disk slows the sender (the channel is full)
//! instead of filling memory. The zip appears only when complete.

use super::super::api::blocking;
use super::super::records::{PACKAGE, PackageRec};
use super::super::state::{ApiErr, ApiResult, Platform, partial_upload};
use crate::platform::v3;
use axum::extract::Multipart;
use axum::extract::multipart::{Field, MultipartError};
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use tokio::sync::mpsc;

/// Chunks on their way to the writer: enough to keep it busy.
const QUEUED: usize = 8;

pub(super) async fn receive(
    p: Arc<Platform>,
    guid: String,
    headers: HeaderMap,
    mut form: Multipart,
) -> ApiResult<v3::Package> {
    let zip = {
        let guid = guid.clone();
        blocking(&p, move |p| p.get::<PackageRec>(PACKAGE, &guid))
            .await?
            .zip
    };
    let max = p.max_upload;
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        linger(&mut form).await;
        return Err(too_large(max));
    }
    while let Some(field) = form.next_field().await.map_err(|e| bad(e, max))? {
        if field.name() != Some("bits") {
            continue;
        }
        let partial = partial_upload(&zip);
        if let Err(e) = stream(field, &partial, max).await {
            let _ = tokio::fs::remove_file(&partial).await;
            linger(&mut form).await;
            return Err(e);
        }
        return blocking(&p, move |p| p.package_uploaded(&guid)).await;
    }
    Err(ApiErr::unprocessable(
        "the upload needs a multipart field named `bits`".into(),
    ))
}

/// Writes the field to `partial`; at most `max` bytes.
async fn stream(mut field: Field<'_>, partial: &Path, max: u64) -> ApiResult<()> {
    let (tx, rx) = mpsc::channel::<Bytes>(QUEUED);
    let writer = tokio::task::spawn_blocking({
        let partial = partial.to_path_buf();
        move || write(&partial, rx)
    });
    let sent = async {
        let mut written = 0u64;
        while let Some(chunk) = field.chunk().await.map_err(|e| bad(e, max))? {
            written += chunk.len() as u64;
            if written > max {
                return Err(too_large(max));
            }
            if tx.send(chunk).await.is_err() {
                // The writer stopped: its error says why.
                break;
            }
        }
        Ok(())
    }
    .await;
    // The writer ends once the channel closes; waiting for it means the
    // file is closed before anyone renames or removes it.
    drop(tx);
    let wrote = writer.await.map_err(ApiErr::internal)?;
    sent.and(wrote)
}

/// A refusal sent before the body is read can be lost: the sender is still
/// writing when the connection closes, and the reset discards the answer
/// in its receive buffer, so the user sees "error sending request" instead
/// of how to raise the limit. Like nginx's lingering close, the rest of the
/// body is read and dropped first, within a bound of bytes and time.
const LINGER_BYTES: u64 = 1 << 30;
const LINGER_TIME: std::time::Duration = std::time::Duration::from_secs(30);

async fn linger(form: &mut Multipart) {
    let _ = tokio::time::timeout(LINGER_TIME, async {
        let mut read = 0u64;
        // Moving to the next field skips what is left of the current one.
        while let Ok(Some(mut field)) = form.next_field().await {
            while let Ok(Some(chunk)) = field.chunk().await {
                read += chunk.len() as u64;
                if read > LINGER_BYTES {
                    return;
                }
            }
        }
    })
    .await;
}

fn write(path: &Path, mut chunks: mpsc::Receiver<Bytes>) -> ApiResult<()> {
    let io = |e: std::io::Error| ApiErr::internal(format!("{}: {e}", path.display()));
    let file = std::fs::File::create(path).map_err(io)?;
    let mut out = std::io::BufWriter::with_capacity(1 << 16, file);
    while let Some(chunk) = chunks.blocking_recv() {
        out.write_all(&chunk).map_err(io)?;
    }
    out.flush().map_err(io)
}

fn bad(e: MultipartError, max: u64) -> ApiErr {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large(max)
    } else {
        ApiErr::unprocessable(format!("bad upload: {}", e.body_text()))
    }
}

fn too_large(limit: u64) -> ApiErr {
    ApiErr(
        413,
        10000,
        "CF-PayloadTooLarge",
        format!(
            "the package is larger than the local platform's upload limit of {}; raise it with \
             `bluegreen platform stop` then `bluegreen platform start --max-upload SIZE` \
             (or BLUEGREEN_MAX_UPLOAD=SIZE)",
            crate::units::format_size(limit)
        ),
    )
}
