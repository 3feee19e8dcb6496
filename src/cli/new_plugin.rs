//! `plugin new NAME --lang rust|js|python|c [--hook pre-deploy|analyze]`: a
//! plugin project that builds and passes `plugin check` as written. The
//! default template in every language is the same small `pre-deploy` plugin
//! (block while the setting `frozen` is `true`); `--hook analyze` (Rust)
//! judges a window of live traffic and comes with a sample window to run it
//! on. Each carries its own copy of the WIT (and, for Rust, of the
//! `bluegreen-plugin` crate), so the project builds anywhere, outside this
//! repository too.

use super::BadInput;
use super::output::{Printer, outln, sayln};
use crate::cli::Exit;
use std::path::{Path, PathBuf};

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum Lang {
    Rust,
    Js,
    Python,
    C,
}

/// The hooks with a template: the plugin guide's example, and `analyze`, whose
/// inputs (a traffic window) are the least obvious to start from.
#[derive(Clone, Copy, Debug, PartialEq, clap::ValueEnum)]
pub enum TemplateHook {
    PreDeploy,
    Analyze,
}

impl TemplateHook {
    fn hook(self) -> crate::plugin::Hook {
        match self {
            TemplateHook::PreDeploy => crate::plugin::Hook::PreDeploy,
            TemplateHook::Analyze => crate::plugin::Hook::Analyze,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The plugin's name: lowercase letters, digits and dashes.
    name: String,
    #[arg(long, value_enum)]
    lang: Lang,
    /// The hook the plugin handles (`analyze`: Rust only).
    #[arg(long, value_enum, default_value = "pre-deploy")]
    hook: TemplateHook,
    /// Where to create the project directory (default: here).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print one JSON object: `{"name", "lang", "hook", "dir", "files"}`.
    #[arg(long)]
    json: bool,
}

const WIT: &str = include_str!("../../wit/hooks.wit");
const SDK: &str = include_str!("../../plugins/bluegreen-plugin/src/lib.rs");

/// (path in the project, contents, executable) for a language and hook;
/// `None` when there is no such template.
fn files(lang: Lang, hook: TemplateHook) -> Option<Vec<(&'static str, &'static str, bool)>> {
    macro_rules! t {
        ($path:literal) => {
            include_str!(concat!("../../templates/plugin/", $path))
        };
    }
    if hook == TemplateHook::Analyze {
        let Lang::Rust = lang else { return None };
        let mut rust = files(lang, TemplateHook::PreDeploy)?;
        for file in &mut rust {
            if file.0 == "src/lib.rs" {
                file.1 = t!("rust/analyze.rs");
            }
        }
        rust.push(("window.yaml", t!("analyze-window.yaml"), false));
        return Some(rust);
    }
    Some(match lang {
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
            ("package-lock.json", t!("js/package-lock.json"), false),
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
    })
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
    let lang = format!("{:?}", args.lang).to_lowercase();
    let hook = args.hook.hook();
    let Some(files) = files(args.lang, args.hook) else {
        return Err(BadInput(format!(
            "there is no {hook} template for --lang {lang} yet: use --lang rust, or start from the pre-deploy template and implement the `{hook}` interface of wit/hooks.wit"
        ))
        .into());
    };
    let mut written = Vec::new();
    for (path, text, executable) in files {
        let text = text
            .replace("{{name}}", name)
            .replace("{{crate}}", &name.replace('-', "_"));
        write(&root.join(path), &text, executable)?;
        written.push(path);
    }
    let json = serde_json::json!({"name": name, "lang": lang, "hook": hook.name(), "dir": root, "files": written});
    Printer::new(args.json).emit(json, || {
        outln!(
            "Created {} ({:?} plugin for the {hook} hook)",
            root.display(),
            args.lang
        );
        sayln!("  cd {} && ./build", root.display());
        sayln!("  bluegreen plugin check {name}.wasm");
        match args.hook {
            TemplateHook::PreDeploy => sayln!(
                "  bluegreen plugin run {name}.wasm --hook pre-deploy --setting frozen=true   # exit 3: blocked"
            ),
            TemplateHook::Analyze => sayln!(
                "  bluegreen plugin run {name}.wasm --hook analyze --context window.yaml   # exit 3: blocked"
            ),
        }
    });
    Ok(super::Exit::Ok)
}
