wit_bindgen::generate!({ world: "pre-deploy-plugin", path: "../../../wit" });
use bluegreen::hooks::types::{Deploy, Outcome, Verdict::*};
struct Freeze;
impl exports::bluegreen::hooks::pre_deploy::Guest for Freeze {
    fn handle(d: Deploy) -> Result<Outcome, String> {
        let frozen = d.settings.contains(&("frozen".into(), "true".into()));
        let verdict = frozen.then(|| Block("deploys are frozen".into())).unwrap_or(Proceed);
        Ok(Outcome { verdict, findings: vec![] })
    }
}
export!(Freeze);
