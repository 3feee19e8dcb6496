//! Packaging an app directory for upload: a zip of its files, honouring
//! `.cfignore` (gitignore syntax) and the cf CLI's default ignores.

use crate::platform::PlatformError;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use sha2::{Digest, Sha256};
use std::path::Path;

/// What the cf CLI never uploads, plus build output nobody deploys.
const DEFAULT_IGNORES: &[&str] = &[
    ".cfignore",
    "_darcs",
    ".DS_Store",
    ".git/",
    ".gitignore",
    ".hg/",
    "manifest.yml",
    ".svn/",
    "bluegreen.yaml",
];

fn io(path: &Path) -> impl Fn(std::io::Error) -> PlatformError + '_ {
    move |source| PlatformError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn ignores(dir: &Path) -> Result<Gitignore, PlatformError> {
    let mut b = GitignoreBuilder::new(dir);
    for pattern in DEFAULT_IGNORES {
        b.add_line(None, pattern).expect("valid default ignore");
    }
    let cfignore = dir.join(".cfignore");
    if cfignore.exists()
        && let Some(e) = b.add(&cfignore)
    {
        return Err(PlatformError::Failed {
            what: format!("reading {}", cfignore.display()),
            detail: e.to_string(),
        });
    }
    b.build().map_err(|e| PlatformError::Failed {
        what: "ignore patterns".into(),
        detail: e.to_string(),
    })
}

/// An app's bits, zipped into a temporary file (removed when dropped), so an
/// app of any size is never held in memory.
#[derive(Debug)]
pub struct Zipped {
    file: tempfile::NamedTempFile,
    /// Hex sha256 of the zip: names a release that is not a git commit.
    pub sha256: String,
    pub size: u64,
}

impl Zipped {
    pub fn path(&self) -> &Path {
        self.file.path()
    }

    /// Bits that are zipped already (or, in tests, that are not a zip).
    pub fn from_bytes(bytes: &[u8]) -> Result<Zipped, PlatformError> {
        let mut file = temp_zip()?;
        std::io::Write::write_all(&mut file, bytes).map_err(io(file.path()))?;
        Ok(Zipped {
            file,
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
        })
    }
}

fn temp_zip() -> Result<tempfile::NamedTempFile, PlatformError> {
    let dir = std::env::temp_dir();
    tempfile::Builder::new()
        .prefix("bluegreen-bits-")
        .suffix(".zip")
        .tempfile_in(&dir)
        .map_err(io(&dir))
}

fn zip_err(e: impl std::fmt::Display) -> PlatformError {
    PlatformError::Failed {
        what: "zip".into(),
        detail: e.to_string(),
    }
}

/// Whether deflating a file is worth it. Large files whose first 64 KiB do
/// not shrink by a tenth (images, archives, bundles) are stored: deflating
/// them saves nothing and costs seconds per hundred MB.
fn worth_deflating(path: &Path, len: u64) -> Result<bool, PlatformError> {
    use std::io::{Read, Write};
    if len < 1 << 20 {
        return Ok(true);
    }
    let mut sample = Vec::with_capacity(64 << 10);
    std::fs::File::open(path)
        .and_then(|f| f.take(64 << 10).read_to_end(&mut sample))
        .map_err(io(path))?;
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&sample).map_err(io(path))?;
    let packed = enc.finish().map_err(io(path))?;
    Ok(packed.len() * 10 < sample.len() * 9)
}

/// Zips `dir` into a temporary file (files keep their modes; symlinks are
/// skipped).
pub fn zip_dir(dir: &Path) -> Result<Zipped, PlatformError> {
    let ignore = ignores(dir)?;
    let mut stack = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            let path = entry.path();
            let kind = entry.file_type().map_err(io(&path))?;
            if ignore.matched(&path, kind.is_dir()).is_ignore() {
                continue;
            }
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                files.push(path);
            }
        }
    }
    files.sort();
    let file = temp_zip()?;
    let mut zip = zip::ZipWriter::new(file.reopen().map_err(io(file.path()))?);
    for path in files {
        let name = path
            .strip_prefix(dir)
            .expect("under dir")
            .to_string_lossy()
            .replace('\\', "/");
        let meta = std::fs::metadata(&path).map_err(io(&path))?;
        let mode = std::os::unix::fs::PermissionsExt::mode(&meta.permissions());
        let method = if worth_deflating(&path, meta.len())? {
            zip::CompressionMethod::Deflated
        } else {
            zip::CompressionMethod::Stored
        };
        // A fixed timestamp makes the zip a function of the files alone, so its
        // hash can name a release. Files over 4 GiB need zip64.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .unix_permissions(mode & 0o777)
            .last_modified_time(zip::DateTime::default())
            .large_file(meta.len() >= u32::MAX as u64);
        zip.start_file(name, options).map_err(zip_err)?;
        let mut src = std::fs::File::open(&path).map_err(io(&path))?;
        std::io::copy(&mut src, &mut zip).map_err(io(&path))?;
    }
    zip.finish().map_err(zip_err)?;
    let mut hasher = Sha256::new();
    let mut written = std::fs::File::open(file.path()).map_err(io(file.path()))?;
    let size = std::io::copy(&mut written, &mut hasher).map_err(io(file.path()))?;
    Ok(Zipped {
        file,
        sha256: hex::encode(hasher.finalize()),
        size,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zips_honour_cfignore_and_default_ignores() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        for f in [
            "app.py",
            "lib/util.py",
            "logs/today.log",
            ".git/HEAD",
            "secret.env",
            "Procfile",
        ] {
            std::fs::create_dir_all(d.join(f).parent().unwrap()).unwrap();
            std::fs::write(d.join(f), f).unwrap();
        }
        std::fs::write(d.join(".cfignore"), "logs/\n*.env\n").unwrap();
        // 2 MiB of text deflates; 2 MiB of noise is stored as it is.
        std::fs::write(d.join("lib/big.txt"), "hello bluegreen\n".repeat(1 << 17)).unwrap();
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..2u32 << 20)
            .map(|_| {
                // xorshift64: noise that deflate cannot shrink
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        std::fs::write(d.join("lib/noise.bin"), &noise).unwrap();
        let zipped = zip_dir(d).unwrap();
        let mut archive =
            zip::ZipArchive::new(std::fs::File::open(zipped.path()).unwrap()).unwrap();
        let mut names: Vec<&str> = archive.file_names().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "Procfile",
                "app.py",
                "lib/big.txt",
                "lib/noise.bin",
                "lib/util.py"
            ]
        );
        let method =
            |a: &mut zip::ZipArchive<std::fs::File>, n: &str| a.by_name(n).unwrap().compression();
        assert_eq!(
            method(&mut archive, "lib/big.txt"),
            zip::CompressionMethod::Deflated
        );
        assert_eq!(
            method(&mut archive, "lib/noise.bin"),
            zip::CompressionMethod::Stored
        );
        // Same files, same bits: the hash names a release.
        assert_eq!(zip_dir(d).unwrap().sha256, zipped.sha256);
    }
}
