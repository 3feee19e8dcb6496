//! Where the shared route lives: `route` is a host (`shop`) or a host and
//! its domain (`shop.example.com`), `domain` names the domain alone, and a
//! manifest's `routes:` say it when the deploy file does not. On the local
//! platform only the host counts (its one domain is `apps.localhost`).

use super::DeployFile;

impl DeployFile {
    /// The route's domain, when the file names one (`domain`, or the part
    /// of `route` after its host), else the manifest's route's.
    pub fn route_domain(&self) -> Option<String> {
        self.named_domain().or_else(|| self.manifest_domain())
    }

    /// The domain the deploy file itself names: it must exist.
    pub fn named_domain(&self) -> Option<String> {
        if let Some(d) = &self.domain {
            return Some(d.clone());
        }
        let (_, d) = self.route.as_deref()?.split_once('.')?;
        Some(d.to_string())
    }

    /// The domain of the manifest's route for this app: used where the
    /// foundation has it (a manifest often names another foundation's).
    pub fn manifest_domain(&self) -> Option<String> {
        let m = self.cf_manifest.as_ref()?;
        let host = self.route_host();
        m.routes.iter().find_map(|r| {
            let (h, d) = r.split('/').next()?.split_once('.')?;
            (h == host || m.routes.len() == 1).then(|| d.to_string())
        })
    }

    /// The route's host name (`route` up to its first dot, else the app).
    pub fn route_host(&self) -> &str {
        match self.route.as_deref() {
            Some(r) => r.split_once('.').map_or(r, |(host, _)| host),
            None => &self.app,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn file(yaml: &str) -> DeployFile {
        DeployFile::parse(Path::new("bluegreen.yaml"), yaml).unwrap()
    }

    #[test]
    fn a_route_names_a_host_or_a_host_and_its_domain() {
        let f = file("app: shop\n");
        assert_eq!((f.route_host(), f.route_domain()), ("shop", None));
        let f = file("app: shop\nroute: store\n");
        assert_eq!((f.route_host(), f.route_domain()), ("store", None));
        let f = file("app: shop\nroute: store.example.com\n");
        assert_eq!(
            (f.route_host(), f.route_domain().as_deref()),
            ("store", Some("example.com"))
        );
        // `domain` wins over the one in `route`.
        let f = file("app: shop\nroute: store.example.com\ndomain: apps.internal\n");
        assert_eq!(f.route_domain().as_deref(), Some("apps.internal"));
        // The input that would pass a host check on the whole string.
        let err = DeployFile::parse(Path::new("b.yaml"), "app: shop\nroute: Sto_re.x.com\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("`route`"), "{err}");
    }
}
