//! {{name}}: a bluegreen pre-deploy plugin. Blocks the deploy while the
//! setting `frozen` is `true`. Change the module (`pre_deploy`) to handle
//! another hook; see bluegreen's book, docs/src/plugins/index.md, for what each gets.

use bluegreen_plugin::pre_deploy::{Deploy, Guest, Outcome};

struct Plugin;

impl Guest for Plugin {
    fn handle(d: Deploy) -> Result<Outcome, String> {
        Ok(match d.setting("frozen") {
            Some("true") => Outcome::block("deploys are frozen"),
            _ => Outcome::proceed(),
        })
    }
}

bluegreen_plugin::pre_deploy::export!(Plugin);
