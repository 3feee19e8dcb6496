//! Is a service's PostgreSQL up, and is it *ours*? An app or task bound to
//! a service gets its password in `DATABASE_URL`; whoever listens on the
//! service's port when the app connects may receive it (PostgreSQL up to
//! 15 has no client-side way to refuse cleartext password authentication).
//! So before any bound process starts, the server is checked to be the one
//! this platform started on the service's data directory, and the only
//! listener on its port. Any doubt fails closed: the app does not start.
//!
//! The evidence, all from the kernel or from files only our user can
//! write (the data directory is 0700 in the 0700 platform home):
//! `postmaster.pid` in the data directory names a live process whose
//! executable is the installed `postgres` and whose working directory is
//! that data directory (only our user can enter it, so only a server we
//! started can work there: a stale pid reused by anything else fails
//! this), on the port the service has; and every socket listening where
//! `127.0.0.1:port` reaches is one of that process's open files. (The
//! start time in the file is not compared: a clock stepped since would
//! refuse our own server.)

use super::procs;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum NotUp {
    #[error("PostgreSQL is not running on {data}: {pidfile} does not exist (see its log, {log})")]
    NotStarted {
        data: PathBuf,
        pidfile: PathBuf,
        log: PathBuf,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{pidfile} is not a PostgreSQL lock file ({why})")]
    Garbled { pidfile: PathBuf, why: &'static str },
    #[error(
        "{pidfile} names pid {pid}, which is not the PostgreSQL server started on {data}: {why}"
    )]
    NotOurs {
        pidfile: PathBuf,
        pid: u32,
        data: PathBuf,
        why: String,
    },
    #[error("port {port} on 127.0.0.1 is held by {holders}, {ours}")]
    PortTaken {
        port: u16,
        holders: String,
        /// What became of our server.
        ours: String,
    },
    #[error(
        "{path} line {line} lets clients in with `{method}`; every line must use scram-sha-256"
    )]
    WeakAuth {
        path: PathBuf,
        line: usize,
        method: String,
    },
}

/// A bound service as a process that is about to start needs it.
#[derive(Clone, Debug)]
pub struct Gate {
    pub service: String,
    /// The service's directory (its cluster is in `data/`).
    pub dir: PathBuf,
    pub port: u16,
}

impl Gate {
    /// Ok when the service's server is up and ours; else why `what` (an
    /// app or task) must not start, and what to do about it.
    pub fn check(&self, what: &str) -> Result<(), String> {
        let postgres = super::postgres::server_binary()?;
        let why = match verify(&self.dir.join("data"), self.port, &postgres) {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        let fix = match &why {
            NotUp::PortTaken { .. } => format!(
                "stop the program listening on port {}, then restart the platform \
                 (`bluegreen platform stop`, `bluegreen platform start`) so it starts the \
                 service; or delete and re-create the service to get another port",
                self.port
            ),
            NotUp::WeakAuth { .. } => {
                "put scram-sha-256 back on that line, then restart the platform".to_string()
            }
            _ => "restart the platform (`bluegreen platform stop`, `bluegreen platform start`) \
                  so it starts the service, and see the service's log if it fails again"
                .to_string(),
        };
        Err(format!(
            "service {} (PostgreSQL on 127.0.0.1:{}) is not up, so {what} was not started: \
             it would hand the service's password to whoever answers on that port. {why}. \
             Fix: {fix}",
            self.service, self.port
        ))
    }
}

/// Checks that the server of the cluster in `data` is up, ours, and alone
/// on `port`; returns its pid. `postgres` is the installed server binary.
pub fn verify(data: &Path, port: u16, postgres: &Path) -> Result<u32, NotUp> {
    check_hba(&data.join("pg_hba.conf"))?;
    match server(data, port, postgres) {
        // Our server is not up, and someone listens where it should: say
        // who, as that is what to fix first.
        Err(e @ (NotUp::NotStarted { .. } | NotUp::NotOurs { .. }))
            if !procs::listeners(port).is_empty() =>
        {
            Err(NotUp::PortTaken {
                port,
                holders: holders(&procs::listeners(port)),
                ours: format!("while the server this platform runs for it is down ({e})"),
            })
        }
        other => other,
    }
}

/// Names the processes holding the sockets `inodes`.
fn holders(inodes: &[u64]) -> String {
    let pids = procs::holders(inodes);
    if pids.is_empty() {
        return "a process of another user".to_string();
    }
    let named: Vec<String> = pids.iter().map(|p| format!("pid {p}")).collect();
    named.join(", ")
}

/// The checks of `verify` past `pg_hba.conf`.
fn server(data: &Path, port: u16, postgres: &Path) -> Result<u32, NotUp> {
    let pidfile = data.join("postmaster.pid");
    let text = match std::fs::read_to_string(&pidfile) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NotUp::NotStarted {
                data: data.into(),
                log: data.with_file_name("postgres.log"),
                pidfile,
            });
        }
        Err(source) => {
            return Err(NotUp::Io {
                path: pidfile,
                source,
            });
        }
    };
    let lines: Vec<&str> = text.lines().collect();
    let garbled = |why| NotUp::Garbled {
        pidfile: pidfile.clone(),
        why,
    };
    let pid: u32 = lines
        .first()
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| garbled("no pid on line 1"))?;
    let listed_port: u16 = lines
        .get(3)
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| garbled("no port on line 4"))?;
    let not_ours = |why: String| NotUp::NotOurs {
        pidfile: pidfile.clone(),
        pid,
        data: data.into(),
        why,
    };
    if procs::stat(pid).is_none_or(|p| p.zombie) {
        return Err(not_ours(
            "no such process is running (a stale lock file)".into(),
        ));
    }
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_default();
    // A server that runs on while its package is upgraded shows the old
    // binary as deleted; the path is still the installed one's.
    let exe = PathBuf::from(
        exe.to_string_lossy()
            .strip_suffix(" (deleted)")
            .map(String::from)
            .unwrap_or_else(|| exe.to_string_lossy().into_owned()),
    );
    if !same(&exe, postgres) {
        return Err(not_ours(format!(
            "it runs {}, not {}",
            exe.display(),
            postgres.display()
        )));
    }
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap_or_default();
    if !same(&cwd, data) {
        return Err(not_ours(format!("it works in {}", cwd.display())));
    }
    if listed_port != port {
        return Err(not_ours(format!(
            "it listens on port {listed_port}, the service's port is {port}"
        )));
    }
    let listening = procs::listeners(port);
    let own = procs::sockets(pid);
    if listening.is_empty() || listening.iter().any(|i| !own.contains(i)) {
        let others: Vec<u64> = listening.into_iter().filter(|i| !own.contains(i)).collect();
        let holders = if others.is_empty() {
            "nobody (the server is not listening yet)".to_string()
        } else {
            holders(&others)
        };
        return Err(NotUp::PortTaken {
            port,
            holders,
            ours: format!(
                "not by the PostgreSQL server (pid {pid}) this platform started on {}",
                data.display()
            ),
        });
    }
    Ok(pid)
}

/// Refuses a `pg_hba.conf` with any method but scram-sha-256 (or
/// `reject`): initdb writes it so, and nothing may loosen it unnoticed.
pub fn check_hba(path: &Path) -> Result<(), NotUp> {
    let text = std::fs::read_to_string(path).map_err(|source| NotUp::Io {
        path: path.into(),
        source,
    })?;
    for (n, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default();
        // The method is the last field that is not an `option=value`.
        let Some(method) = line.split_whitespace().rfind(|f| !f.contains('=')) else {
            continue;
        };
        if line.split_whitespace().count() < 4 {
            continue;
        }
        if method != "scram-sha-256" && method != "reject" {
            return Err(NotUp::WeakAuth {
                path: path.into(),
                line: n + 1,
                method: method.into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster(pidfile: &str, hba: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pg_hba.conf"), hba).unwrap();
        std::fs::write(dir.path().join("postmaster.pid"), pidfile).unwrap();
        dir
    }

    const HBA: &str = "# comment\nlocal all all scram-sha-256\n\
                       host all all 127.0.0.1/32 scram-sha-256\n";

    #[test]
    fn a_lock_file_naming_a_live_process_that_is_not_postgres_is_refused() {
        let me = std::process::id();
        let dir = cluster(&format!("{me}\n/x\n0\n5432\n"), HBA);
        let err = verify(dir.path(), 5432, Path::new("/usr/bin/postgres")).unwrap_err();
        assert!(
            matches!(err, NotUp::NotOurs { pid, .. } if pid == me),
            "{err}"
        );
        assert!(err.to_string().contains("postmaster.pid"), "{err}");
    }

    #[test]
    fn a_missing_lock_file_says_the_server_did_not_start_and_where_its_log_is() {
        let dir = cluster("", HBA);
        std::fs::remove_file(dir.path().join("postmaster.pid")).unwrap();
        let err = verify(dir.path(), 5432, Path::new("/usr/bin/postgres")).unwrap_err();
        assert!(err.to_string().contains("postgres.log"), "{err}");
    }

    #[test]
    fn an_hba_line_with_a_weaker_method_is_refused_with_its_line() {
        let dir = cluster("", &format!("{HBA}host all all 0.0.0.0/0 md5\n"));
        let err = check_hba(&dir.path().join("pg_hba.conf")).unwrap_err();
        assert!(
            matches!(&err, NotUp::WeakAuth { line: 4, method, .. } if method == "md5"),
            "{err}"
        );
        let ok = cluster("", "local all all scram-sha-256 clientcert=verify-ca\n");
        check_hba(&ok.path().join("pg_hba.conf")).unwrap();
    }
}
