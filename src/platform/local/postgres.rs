//! PostgreSQL servers run by the local platform as services, from Debian's
//! `postgresql` package: `initdb` once, then `pg_ctl start`/`stop` with the
//! daemon. Each listens on 127.0.0.1 only (no Unix socket), with a generated
//! password and scram-sha-256 for every connection. A server counts as
//! started only once it is proven ours and alone on its port (`pg_check.rs`).
//!
//! PostgreSQL refuses to run as root. When the daemon is root (CI, a root
//! shell), the server runs in a user namespace where root is mapped to the
//! `postgres` user's id: inside, it is not root; outside, its files stay
//! root's and private under the platform home, which no other user can
//! reach. No chown, no ACLs, and no other user gets a path into the home.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The superuser of each service's cluster, and the user apps connect as.
pub const USER: &str = "bluegreen";

/// Where `initdb` and `pg_ctl` live: `pg_config --bindir`, else the newest
/// `/usr/lib/postgresql/*/bin`. Found once per daemon (each service check
/// needs it).
fn bindir() -> Result<PathBuf, String> {
    static FOUND: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    if let Some(dir) = FOUND.get() {
        return Ok(dir.clone());
    }
    let dir = find_bindir()?;
    Ok(FOUND.get_or_init(|| dir).clone())
}

fn find_bindir() -> Result<PathBuf, String> {
    let has_initdb = |d: &Path| d.join("initdb").is_file();
    let mut pg_config = Command::new("pg_config");
    pg_config.arg("--bindir");
    if let Ok(out) = super::reaper::output(&mut pg_config)
        && out.status.success()
    {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if has_initdb(&dir) {
            return Ok(dir);
        }
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_initdb(d))
        .collect();
    versions.sort();
    versions.pop().map(|(_, d)| d).ok_or_else(|| {
        "PostgreSQL is not installed: no initdb under `pg_config --bindir` or \
         /usr/lib/postgresql/*/bin (install it: `apt-get install postgresql`)"
            .to_string()
    })
}

/// The ids root is mapped to inside the namespace: `postgres`, else nobody.
fn unprivileged_ids() -> (u32, u32) {
    // SAFETY: getpwnam returns a pointer into static storage or null; we copy
    // the two ids out at once and this process does not call it concurrently
    // for another name in between.
    unsafe {
        let pw = libc::getpwnam(c"postgres".as_ptr());
        if pw.is_null() {
            (65534, 65534)
        } else {
            ((*pw).pw_uid, (*pw).pw_gid)
        }
    }
}

/// A PostgreSQL program with a plain environment, wrapped in a user namespace
/// when we are root.
fn program(name: &str) -> Result<Command, String> {
    let bin = bindir()?.join(name);
    // SAFETY: geteuid has no preconditions.
    let mut cmd = if unsafe { libc::geteuid() } == 0 {
        let (uid, gid) = unprivileged_ids();
        let mut c = Command::new("unshare");
        c.arg("--user")
            .arg(format!("--map-user={uid}"))
            .arg(format!("--map-group={gid}"))
            .arg("--")
            .arg(bin);
        c
    } else {
        Command::new(bin)
    };
    cmd.env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LC_ALL", "C")
        .stdin(std::process::Stdio::null());
    Ok(cmd)
}

/// The server binary a service's `postmaster.pid` must name.
pub fn server_binary() -> Result<PathBuf, String> {
    Ok(bindir()?.join("postgres"))
}

/// The major version of the system's libpq (`libpq.so.5.N` is libpq of
/// PostgreSQL N), the oldest if there are several; None if not found.
fn libpq_major() -> Option<u32> {
    let mut dirs = vec![PathBuf::from("/usr/lib"), PathBuf::from("/usr/lib64")];
    dirs.push(PathBuf::from("/usr/local/lib"));
    let multiarch = std::fs::read_dir("/usr/lib")
        .into_iter()
        .flatten()
        .flatten();
    dirs.extend(
        multiarch
            .map(|e| e.path())
            .filter(|p| p.to_string_lossy().ends_with("-linux-gnu")),
    );
    dirs.iter()
        .flat_map(|d| std::fs::read_dir(d).into_iter().flatten().flatten())
        .filter_map(|e| {
            let name = e.file_name();
            name.to_str()?.strip_prefix("libpq.so.5.")?.parse().ok()
        })
        .min()
}

/// What clients' connection URIs add so that they refuse any password
/// authentication but SCRAM (`require_auth`, libpq 16 and later): a server
/// that is not ours cannot then ask for the password in cleartext. Empty
/// where libpq is older, which rejects the option as unknown; there the
/// platform's check that the server is ours (`pg_check.rs`) is the guard.
pub fn client_options() -> &'static str {
    static OPTIONS: std::sync::OnceLock<&str> = std::sync::OnceLock::new();
    OPTIONS.get_or_init(|| match libpq_major() {
        Some(v) if v >= 16 => "?require_auth=scram-sha-256",
        _ => "",
    })
}

fn run(mut cmd: Command, what: &str) -> Result<(), String> {
    let out = super::reaper::output(&mut cmd).map_err(|e| format!("{what}: could not run: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    let tail: Vec<&str> = text.lines().rev().take(6).collect();
    Err(format!(
        "{what} exited with {}:\n{}",
        out.status,
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    ))
}

fn data(dir: &Path) -> PathBuf {
    dir.join("data")
}

/// Creates a cluster in `dir/data` whose superuser has `password`.
pub fn init(dir: &Path, password: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let pwfile = dir.join("initdb.pw");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&pwfile)
        .map_err(|e| format!("{}: {e}", pwfile.display()))?;
    std::io::Write::write_all(&mut f, password.as_bytes())
        .map_err(|e| format!("{}: {e}", pwfile.display()))?;
    drop(f);
    let mut cmd = program("initdb")?;
    cmd.arg("-D")
        .arg(data(dir))
        .args([
            "-U",
            USER,
            "-A",
            "scram-sha-256",
            "-E",
            "UTF8",
            "--no-locale",
        ])
        .arg(format!("--pwfile={}", pwfile.display()));
    let result = run(cmd, "initdb");
    let _ = std::fs::remove_file(&pwfile);
    result
}

/// The server's pid, if one runs on this cluster (a daemon killed without a
/// stop leaves it running: the next start adopts it).
pub fn running(dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data(dir).join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    // SAFETY: signal 0 only checks that the process exists.
    (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
}

/// What `start` says when another program holds the port.
pub const PORT_IN_USE: &str = "is in use by another program";

/// Starts the server on `port` (127.0.0.1 only) and waits until it accepts
/// connections.
pub fn start(dir: &Path, port: u16) -> Result<(), String> {
    // A server a killed daemon left running is adopted, if it is ours.
    if verify(dir, port).is_ok() {
        return Ok(());
    }
    if std::net::TcpListener::bind(("127.0.0.1", port)).is_err() {
        return Err(format!(
            "port {port} on 127.0.0.1 {PORT_IN_USE}; stop it, or delete and re-create the \
             service to get a new port"
        ));
    }
    let mut cmd = program("pg_ctl")?;
    cmd.arg("start")
        .arg("-D")
        .arg(data(dir))
        .arg("-l")
        .arg(dir.join("postgres.log"))
        .args(["-w", "-t", "60", "-o"])
        .arg(format!(
            "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''"
        ));
    run(cmd, "pg_ctl start").map_err(|e| {
        format!(
            "{e}\n(the server's log is {})",
            dir.join("postgres.log").display()
        )
    })?;
    // Started is not enough: someone may have taken the port in between.
    verify(dir, port).map(|_| ())
}

/// The pid of the service's server if it is up, ours, and alone on `port`
/// (see `pg_check.rs`); else why not.
pub fn verify(dir: &Path, port: u16) -> Result<u32, String> {
    super::pg_check::verify(&data(dir), port, &server_binary()?).map_err(|e| e.to_string())
}

/// Stops the server (fast shutdown: open transactions roll back).
pub fn stop(dir: &Path) -> Result<(), String> {
    if running(dir).is_none() {
        return Ok(());
    }
    let mut cmd = program("pg_ctl")?;
    cmd.arg("stop")
        .arg("-D")
        .arg(data(dir))
        .args(["-m", "fast", "-w", "-t", "60"]);
    run(cmd, "pg_ctl stop")?;
    // pg_ctl returns once the pid file is gone; the port follows at once.
    for _ in 0..50 {
        if running(dir).is_none() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Creates database `name` on the server at `port`.
pub fn create_database(port: u16, password: &str, name: &str) -> Result<(), String> {
    let mut cmd = Command::new(bindir()?.join("createdb"));
    cmd.env_clear().env("PGPASSWORD", password);
    if !client_options().is_empty() {
        cmd.env("PGREQUIREAUTH", "scram-sha-256");
    }
    cmd.args(["-h", "127.0.0.1", "-p", &port.to_string(), "-U", USER, name]);
    run(cmd, "createdb")
}
