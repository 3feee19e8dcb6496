//! `plugin new NAME --lang rust|js|python|c`: a plugin project that builds
//! and passes `plugin check` as written. Every template implements the same
//! small `pre-deploy` plugin (block while the setting `frozen` is `true`) and
//! carries its own copy of the WIT (and, for Rust, of the `bluegreen-plugin`
//! crate), so the project builds anywhere, outside this repository too.

use super::BadInput;
use super::output::{outln, sayln};
use crate::cli::Exit;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Js,
    Python,
    C,
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and dashes.
    name: String,
    #[arg(long, value_enum)]
    lang: Lang,
    /// Where to create the project directory (default: here).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print one JSON object: `{"name", "lang", "dir", "files"}`.
    #[arg(long)]
    json: bool,
}

const WIT: &str = include_str!("../../wit/hooks.wit");
const SDK: &str = include_str!("../../plugins/bluegreen-plugin/src/lib.rs");

/// (path in the project, contents, executable) for a language.
fn files(lang: Lang) -> Vec<(&'static str, &'static str, bool)> {
    macro_rules! t {
        ($path:literal) => {
            include_str!(concat!("../../templates/plugin/", $path))
        };
    }
    match lang {
        Lang::Rust => vec![
            ("Cargo.toml", t!("rust/Cargo.toml"), false),
            ("src/lib.rs", t!("rust/lib.rs"), false),
            ("build", t!("rust/build"), true),
            (
                "bluegreen-plugin/Cargo.toml",
                t!("rust/sdk-Cargo.toml"),
                false,
            ),
            ("bluegreen-plugin/src/lib.rs", SDK, false),
            ("bluegreen-plugin/wit/hooks.wit", WIT, false),
        ],
        Lang::Js => vec![
            ("package.json", t!("js/package.json"), false),
            ("hook.js", t!("js/hook.js"), false),
            ("build", t!("js/build"), true),
            ("wit/hooks.wit", WIT, false),
        ],
        Lang::Python => vec![
            ("app.py", t!("python/app.py"), false),
            ("requirements.txt", t!("python/requirements.txt"), false),
            ("build", t!("python/build"), true),
            ("wit/hooks.wit", WIT, false),
        ],
        Lang::C => vec![
            ("hook.c", t!("c/hook.c"), false),
            ("build", t!("c/build"), true),
            ("wit/hooks.wit", WIT, false),
        ],
    }
}

fn write(path: &Path, text: &str, executable: bool) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::write(path, text)?;
    if executable {
        use std::os::unix::fs::PermissionsExt;
        fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok(())
}

pub fn run(args: NewArgs) -> anyhow::Result<Exit> {
    let name = &args.name;
    let valid = !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(BadInput(format!(
            "plugin name `{name}`: use lowercase letters, digits and dashes, starting with a letter"
        ))
        .into());
    }
    let root = args.dir.join(name);
    if root.exists() {
        return Err(BadInput(format!(
            "{} already exists: pick another name or --dir",
            root.display()
        ))
        .into());
    }
    let mut written = Vec::new();
    for (path, text, executable) in files(args.lang) {
        let text = text
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"));
        write(&root.join(path), &text, executable)?;
        written.push(path);
    }
    if args.json {
        let lang = format!("{:?}", args.lang).to_lowercase();
        outln!(
            "{}",
            serde_json::json!({"name": name, "lang": lang, "dir": root, "files": written})
        );
        return Ok(super::Exit::Ok);
    }
    outln!(
        "Created {} ({:?} plugin for the pre-deploy hook)",
        root.display(),
        args.lang
    );
    sayln!("  cd {} && ./build", root.display());
    sayln!("  bluegreen plugin check {name}.wasm");
    sayln!(
        "  bluegreen plugin run {name}.wasm --hook pre-deploy --setting frozen=true   # exit 3: blocked"
    );
    Ok(super::Exit::Ok)
}
