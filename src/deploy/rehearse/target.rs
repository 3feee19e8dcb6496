//! Which database a rehearsal copies, and how the rehearsal's migration task
//! is pointed at the copy instead.
//!
//! The app finds its database the way Cloud Foundry apps do: `DATABASE_URL`
//! (the deploy file's own `env`, which wins, else derived from the first
//! bound service) or `VCAP_SERVICES`. The rehearsal task gets both rewritten
//! to the scratch database, so an app reading either migrates the copy; the
//! sampler's session count proves afterwards that it did.

use serde_json::Value;

/// A PostgreSQL server and database, from a service binding or a URL.
#[derive(Clone, Debug, PartialEq)]
pub struct Database {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
    /// The shared database's name.
    pub name: String,
    /// The URL's query (`?require_auth=scram-sha-256`), kept on the
    /// scratch database's URL.
    pub query: String,
    /// The service instance it came from, for messages.
    pub source: String,
}

/// `bluegreen_rehearsal_<deploy id>`, lowercase, within PostgreSQL's 63
/// bytes: `recover` finds a leftover by the same name.
pub fn scratch_name(deploy_id: &str) -> String {
    let id: String = deploy_id
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9') => c,
            _ => '_',
        })
        .collect();
    let mut name = format!("bluegreen_rehearsal_{id}");
    name.truncate(63);
    name
}

/// The database the app migrates: the deploy file's `DATABASE_URL`, else
/// the first bound service with PostgreSQL credentials in the app's
/// environment (`GET /v3/apps/:guid/env`). Err says why there is none.
pub fn find(file_env_url: Option<&str>, app_env: &Value) -> Result<Database, String> {
    if let Some(url) = file_env_url {
        return from_url(url, "the deploy file's DATABASE_URL");
    }
    let services = &app_env["system_env_json"]["VCAP_SERVICES"];
    for entries in services.as_object().into_iter().flat_map(|o| o.values()) {
        for e in entries.as_array().into_iter().flatten() {
            let c = &e["credentials"];
            let name = e["name"].as_str().unwrap_or("?");
            let source = format!("service {name}");
            let uri = c["uri"].as_str().or_else(|| c["url"].as_str());
            if let Some(uri) = uri.filter(|u| u.starts_with("postgres")) {
                return from_url(uri, &source);
            }
        }
    }
    Err(
        "the app has no PostgreSQL database: no `DATABASE_URL` in the deploy file's env and \
         no bound service with a postgres URI (bind one with `services:`)"
            .into(),
    )
}

/// Parses `postgres://user:password@host:port/name?query`.
pub fn from_url(url: &str, source: &str) -> Result<Database, String> {
    let bad = |why: &str| format!("{source}: not a PostgreSQL URL I can read ({why})");
    let rest = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
        .ok_or_else(|| bad("it must start with postgres://"))?;
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => (r, format!("?{q}")),
        None => (rest, String::new()),
    };
    let (auth, rest) = rest.rsplit_once('@').ok_or_else(|| bad("no user"))?;
    let (user, password) = auth.split_once(':').unwrap_or((auth, ""));
    let (hostport, name) = rest
        .split_once('/')
        .ok_or_else(|| bad("no database name"))?;
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| bad("a bad port"))?),
        None => (hostport, 5432),
    };
    if name.is_empty() || host.is_empty() {
        return Err(bad("no host or database name"));
    }
    Ok(Database {
        host: host.into(),
        port,
        user: decode(user),
        password: decode(password),
        name: decode(name),
        query,
        source: source.into(),
    })
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Database {
    /// The URL of database `db` on this server, with these credentials.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://{}:{}@{}:{}/{}{}",
            encode(&self.user),
            encode(&self.password),
            self.host,
            self.port,
            encode(db),
            self.query
        )
    }

    /// A client configuration for database `db`.
    pub fn config(&self, db: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host(&self.host)
            .port(self.port)
            .user(&self.user)
            .password(&self.password)
            .dbname(db)
            .application_name("bluegreen-rehearsal")
            .connect_timeout(std::time::Duration::from_secs(5));
        c
    }

    /// libpq's environment for `pg_dump` and `psql` on database `db`.
    pub fn pg_env(&self, db: &str) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("PGHOST", self.host.clone()),
            ("PGPORT", self.port.to_string()),
            ("PGUSER", self.user.clone()),
            ("PGPASSWORD", self.password.clone()),
            ("PGDATABASE", db.to_string()),
            ("PGAPPNAME", "bluegreen-rehearsal".to_string()),
        ];
        if self.query.contains("require_auth=scram-sha-256") {
            env.push(("PGREQUIREAUTH", "scram-sha-256".into()));
        }
        env
    }
}

/// Shell lines that point the task at `scratch`: `DATABASE_URL`, and in
/// `VCAP_SERVICES` every binding to the shared database.
pub fn task_exports(db: &Database, scratch: &str, app_env: &Value) -> String {
    let url = db.url(scratch);
    let mut lines = format!("export DATABASE_URL={}\n", quote(&url));
    let mut services = app_env["system_env_json"]["VCAP_SERVICES"].clone();
    let mut changed = false;
    for entries in services
        .as_object_mut()
        .into_iter()
        .flat_map(|o| o.values_mut())
    {
        for e in entries.as_array_mut().into_iter().flatten() {
            let c = &mut e["credentials"];
            let same = c["uri"]
                .as_str()
                .and_then(|u| from_url(u, "").ok())
                .is_some_and(|d| d.host == db.host && d.port == db.port && d.name == db.name);
            if !same {
                continue;
            }
            c["uri"] = Value::from(url.clone());
            c["name"] = Value::from(scratch);
            if let Some(j) = c["jdbcUrl"].as_str() {
                let from = format!("/{}?", db.name);
                c["jdbcUrl"] = Value::from(j.replace(&from, &format!("/{scratch}?")));
            }
            changed = true;
        }
    }
    if changed {
        lines += &format!("export VCAP_SERVICES={}\n", quote(&services.to_string()));
    }
    lines
}

/// Single-quoted for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env() -> Value {
        json!({"system_env_json": {"VCAP_SERVICES": {"postgres": [{
            "name": "shop-db",
            "credentials": {
                "uri": "postgres://bluegreen:p%40ss@127.0.0.1:5999/shop_db?require_auth=scram-sha-256",
                "jdbcUrl": "jdbc:postgresql://127.0.0.1:5999/shop_db?user=bluegreen",
                "name": "shop_db"
            }
        }]}}})
    }

    #[test]
    fn names_the_scratch_database_from_the_deploy_id() {
        assert_eq!(
            scratch_name("20260101T1200-AbC1.x"),
            "bluegreen_rehearsal_20260101t1200_abc1_x"
        );
        assert_eq!(scratch_name(&"x".repeat(100)).len(), 63);
    }

    #[test]
    fn finds_the_bound_database_and_points_the_task_at_the_copy() {
        let db = find(None, &env()).unwrap();
        assert_eq!(
            (
                db.host.as_str(),
                db.port,
                db.password.as_str(),
                db.name.as_str()
            ),
            ("127.0.0.1", 5999, "p@ss", "shop_db")
        );
        assert_eq!(db.source, "service shop-db");
        let lines = task_exports(&db, "scratch_1", &env());
        let url = "postgres://bluegreen:p%40ss@127.0.0.1:5999/scratch_1?require_auth=scram-sha-256";
        assert!(
            lines.starts_with(&format!("export DATABASE_URL='{url}'\n")),
            "{lines}"
        );
        let out = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("{lines}printf %s \"$VCAP_SERVICES\""))
            .output()
            .unwrap();
        let vcap: Value = serde_json::from_slice(&out.stdout).unwrap();
        let c = &vcap["postgres"][0]["credentials"];
        assert_eq!(c["uri"], url);
        assert_eq!(c["name"], "scratch_1");
        assert_eq!(
            c["jdbcUrl"],
            "jdbc:postgresql://127.0.0.1:5999/scratch_1?user=bluegreen"
        );
        // The deploy file's own URL wins, as it does in the app's env.
        let own = find(Some("postgresql://u@db.example:6543/app"), &env()).unwrap();
        assert_eq!((own.host.as_str(), own.port), ("db.example", 6543));
        assert!(find(None, &json!({})).unwrap_err().contains("services:"));
    }
}
