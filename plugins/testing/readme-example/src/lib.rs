use bluegreen_plugin::pre_deploy::{Deploy, Guest, Outcome};
struct Freeze;
impl Guest for Freeze {
    fn handle(d: Deploy) -> Result<Outcome, String> {
        Ok(match d.setting("frozen") {
            Some("true") => Outcome::block("deploys are frozen"),
            _ => Outcome::proceed(),
        })
    }
}
bluegreen_plugin::pre_deploy::export!(Freeze);
