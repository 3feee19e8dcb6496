//! `bluegreen init [-C DIR]`: a first deploy file, written from what the app
//! directory holds (manifest.yml, Procfile, config.ru, a Rails app, its
//! migrations and database, a plugins directory), each field commented with
//! what it does and where its value came from. It never overwrites a file:
//! a deploy file someone edited is worth more than a generated one.
//!
//! Editors: the file's first line points the YAML language server at
//! `.bluegreen.schema.json` beside it (a relative path, which the server
//! resolves from the YAML file; there is no URL to use offline), which init
//! writes too, from `bluegreen schema`, unless one is there already.

mod fields;
mod render;
mod scan;

use super::output::{Printer, outln, printable, sayln};
use super::{BadInput, Exit};
use scan::Found;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The app directory to look at and write bluegreen.yaml into.
    #[arg(short = 'C', value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// The app's name (default: the manifest's app, the Rails application's
    /// module, else the directory's name).
    #[arg(long)]
    app: Option<String>,
    /// Print one JSON object: `{"file", "app", "fields": [{"field", "value", "from"}], "warnings"}`.
    #[arg(long)]
    json: bool,
}

pub const FILE: &str = "bluegreen.yaml";

/// The deploy file's JSON Schema, beside it, for editors.
pub const SCHEMA_FILE: &str = ".bluegreen.schema.json";

pub fn run(args: &InitArgs) -> anyhow::Result<Exit> {
    if !args.dir.is_dir() {
        return Err(BadInput(format!("-C {}: not a directory", args.dir.display())).into());
    }
    let path = args.dir.join(FILE);
    if path.exists() {
        return Err(exists(&path).into());
    }
    let found = scan::scan(&args.dir).map_err(BadInput)?;
    let (app, app_from) = app_name(args, &found)?;
    let (doc, warnings) = fields::build(&found, &app, &app_from);
    // The text must say what init meant: parse it back before writing.
    let back: serde_yaml::Mapping = serde_yaml::from_str(&doc.text)
        .map_err(|e| anyhow::anyhow!("init wrote YAML it cannot read back (a bug): {e}"))?;
    anyhow::ensure!(
        back == doc.expect,
        "init wrote YAML that reads back differently (a bug):\n{}",
        doc.text
    );
    // `create_new`: a file that appeared since the check is not replaced.
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(exists(&path).into());
        }
        Err(e) => return Err(anyhow::anyhow!("creating {}: {e}", path.display())),
    };
    let modeline = format!("# yaml-language-server: $schema={SCHEMA_FILE}\n");
    file.write_all(modeline.as_bytes())
        .and_then(|()| file.write_all(doc.text.as_bytes()))
        .and_then(|()| file.sync_all())
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    let schema = write_schema(&args.dir.join(SCHEMA_FILE))?;
    let fields: Vec<_> = doc
        .fields
        .iter()
        .map(|f| json!({"field": f.field, "value": f.value, "from": f.from}))
        .collect();
    Printer::new(args.json).emit(
        json!({"file": path, "app": app, "fields": fields, "warnings": warnings,
               "schema": schema}),
        || {
            summary(args, &path, &app, &doc.fields, &warnings);
            sayln!(
                "Editors read its schema from {} (`bluegreen schema` prints it).",
                printable(&args.dir.join(SCHEMA_FILE).display().to_string())
            );
        },
    );
    Ok(Exit::Ok)
}

/// Writes the schema at `path` unless a file is there (it may be an older
/// one someone keeps on purpose); says whether it wrote it.
fn write_schema(path: &Path) -> anyhow::Result<bool> {
    use crate::config::schema;
    let text = schema::text(&schema::deploy_file());
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(mut f) => f
            .write_all(text.as_bytes())
            .map(|()| true)
            .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(anyhow::anyhow!("creating {}: {e}", path.display())),
    }
}

/// What init wrote, for people.
fn summary(args: &InitArgs, path: &Path, app: &str, fields: &[render::Field], warnings: &[String]) {
    outln!("Wrote {} for app {app}", path.display());
    for f in fields {
        let value = match &f.value {
            serde_json::Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        // Values and sources quote the app's files: shown escaped.
        sayln!(
            "  {:<21} {}  (from {})",
            f.field,
            printable(&value),
            printable(&f.from)
        );
    }
    for w in warnings {
        outln!("warning: {}", printable(w));
    }
    let shown = if args.dir == Path::new(".") {
        String::new()
    } else {
        format!(" -f {}", path.display())
    };
    sayln!("Check it with `bluegreen plan{shown}`, then `bluegreen deploy{shown}`.");
}

fn exists(path: &Path) -> BadInput {
    BadInput(format!(
        "{} already exists; `bluegreen init` never overwrites a deploy file \
         (move it aside to write a new one, or edit it)",
        path.display()
    ))
}

/// A name the deploy file accepts: lowercase letters, digits and dashes.
fn valid_name(raw: &str) -> String {
    let mut out = String::new();
    let mut prev_lower = false;
    for c in raw.chars() {
        if c.is_ascii_uppercase() && prev_lower {
            out.push('-');
        }
        prev_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

fn app_name(args: &InitArgs, f: &Found) -> anyhow::Result<(String, String)> {
    if let Some(name) = &args.app {
        if valid_name(name) != *name {
            return Err(BadInput(format!(
                "--app `{name}`: use lowercase letters, digits and dashes (e.g. `{}`)",
                valid_name(name)
            ))
            .into());
        }
        return Ok((name.clone(), "the --app flag".into()));
    }
    let dir = std::path::absolute(&args.dir)?;
    let dir_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let candidates = [
        f.manifest.as_ref().map(|m| {
            (
                m.app().name.clone(),
                format!("{} (app `{}`)", m.file, m.app().name),
            )
        }),
        f.rails_module
            .as_ref()
            .map(|m| (m.value.clone(), m.from.clone())),
        Some((
            dir_name.clone(),
            format!("the directory's name (`{dir_name}`)"),
        )),
    ];
    for (raw, from) in candidates.into_iter().flatten() {
        let name = valid_name(&raw);
        if !name.is_empty() {
            return Ok((name, from));
        }
    }
    Err(BadInput(format!(
        "{}: found no name for the app; give one with --app NAME",
        dir.display()
    ))
    .into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_become_valid_app_names() {
        assert_eq!(super::valid_name("RailsApp"), "rails-app");
        assert_eq!(super::valid_name("my_shop.v2"), "my-shop-v2");
        assert_eq!(super::valid_name(".tmpAbC12"), "tmp-ab-c12");
        assert_eq!(super::valid_name("__"), "");
    }
}
