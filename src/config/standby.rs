//! `scale_down_delay`: which deploy files can keep a warm standby. It needs
//! two colors switched whole: Cloud Foundry's own deployments have one app
//! and no second color to keep, a canary moves the route in steps, and a
//! contract migration would drop what the standby's release still reads.

use super::DeployFile;
use super::analysis::Strategy;

/// The longest standby: past a week it is a second production, not a
/// rollback target.
const MAX: std::time::Duration = std::time::Duration::from_secs(7 * 24 * 3600);

impl DeployFile {
    /// `Err((field, message))` for a `scale_down_delay` that cannot work.
    pub(super) fn validate_standby(&self) -> Result<(), (&'static str, String)> {
        let Some(d) = self.scale_down_delay else {
            return Ok(());
        };
        let field = "scale_down_delay";
        if d.is_zero() {
            return Err((
                field,
                "0 keeps no standby; give how long the old color stays up off the route \
                 (`30m`), or remove the field to deploy both colors"
                    .into(),
            ));
        }
        if d > MAX {
            return Err((
                field,
                format!(
                    "{} is longer than 7 days; a standby is for rolling back, not a second \
                     production: give at most `7d`",
                    crate::units::human_duration(d)
                ),
            ));
        }
        match self.strategy {
            Strategy::BlueGreen => {}
            s if s.native() => {
                return Err((
                    field,
                    format!(
                        "`strategy: {}` deploys one app through Cloud Foundry's deployments, \
                         so there is no second color to keep as a standby: remove \
                         `scale_down_delay`, or use `strategy: blue-green`",
                        s.name()
                    ),
                ));
            }
            s => {
                return Err((
                    field,
                    format!(
                        "`strategy: {}` moves the route in steps and then deploys the second \
                         color too; a standby needs the route switched whole from one color \
                         to the other: remove `scale_down_delay`, or use `strategy: blue-green`",
                        s.name()
                    ),
                ));
            }
        }
        if self
            .migrate
            .as_ref()
            .is_some_and(|m| !m.post_dirs.is_empty())
        {
            return Err((
                field,
                "`migrate.post_dirs` runs contract migrations once the new release serves, \
                 dropping what the standby's release still reads, so a rollback to it would \
                 break: remove `scale_down_delay`, or move the contract migrations to a later \
                 release"
                    .into(),
            ));
        }
        Ok(())
    }
}
