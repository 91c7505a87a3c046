//! The built-in Wazuh simulator wired to a secops-mcp server: [`SimEnv::start`] runs the
//! simulator, writes its CA into a scratch directory, and gives the `SECOPS_*` variables that
//! point a server (child process, in-process HTTP harness, or a `Config`) at it. The one
//! place the tests and benches spell this wiring.

use std::collections::BTreeMap;
use std::path::PathBuf;

use secops_mcp::config::Config;
use wazuh_sim::{SimConfig, Simulator};

use super::{HttpHarness, Scratch};

/// A running simulator, a scratch directory holding its CA, and the variables to reach it.
pub struct SimEnv {
    pub sim: Simulator,
    pub scratch: Scratch,
    /// The simulator's CA certificate (PEM), trusted through `SECOPS_*_CA_FILE`.
    pub ca: PathBuf,
}

impl SimEnv {
    pub async fn start(cfg: SimConfig) -> Self {
        let sim = Simulator::start(cfg).await.expect("simulator");
        let scratch = Scratch::new();
        let ca = scratch.path().join("sim-ca.pem");
        sim.write_ca(&ca).expect("write the simulator CA");
        Self { sim, scratch, ca }
    }

    fn ca_str(&self) -> String {
        self.ca.to_string_lossy().to_string()
    }

    /// `SECOPS_WAZUH_*`: the manager API as the simulator's admin user.
    pub fn manager_vars(&self) -> Vec<(String, String)> {
        let c = self.sim.config();
        vec![
            ("SECOPS_WAZUH_URL".into(), self.sim.manager_url()),
            ("SECOPS_WAZUH_USER".into(), c.api_user.clone()),
            ("SECOPS_WAZUH_PASSWORD".into(), c.api_password.clone()),
            ("SECOPS_WAZUH_CA_FILE".into(), self.ca_str()),
        ]
    }

    /// `SECOPS_INDEXER_*`: the indexer as the simulator's indexer user.
    pub fn indexer_vars(&self) -> Vec<(String, String)> {
        let c = self.sim.config();
        vec![
            ("SECOPS_INDEXER_URL".into(), self.sim.indexer_url()),
            ("SECOPS_INDEXER_USER".into(), c.indexer_user.clone()),
            ("SECOPS_INDEXER_PASSWORD".into(), c.indexer_password.clone()),
            ("SECOPS_INDEXER_CA_FILE".into(), self.ca_str()),
        ]
    }

    /// Manager and indexer.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut v = self.manager_vars();
        v.extend(self.indexer_vars());
        v
    }

    /// The environment of a child-process server: the scratch state directory plus `vars`
    /// and `extra`.
    pub fn child_env(
        &self,
        vars: &[(String, String)],
        extra: &[(&str, &str)],
    ) -> BTreeMap<String, String> {
        let mut env = self.scratch.env();
        env.extend(vars.iter().cloned());
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// The configuration a server gets from `toml` and `vars` (parsed exactly as `serve`
    /// parses it), for tests that build Wazuh clients directly.
    pub fn config(&self, toml: &str, vars: &[(String, String)]) -> Config {
        Config::from_toml_str(toml, &self.child_env(vars, &[])).expect("config")
    }

    /// An in-process HTTP server on the scratch state directory with `toml`, `vars` and
    /// `extra` (later entries win).
    pub async fn http(
        &self,
        toml: &str,
        vars: &[(String, String)],
        extra: &[(&str, &str)],
    ) -> HttpHarness {
        let mut env: Vec<(&str, &str)> =
            vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        env.extend_from_slice(extra);
        HttpHarness::start(&self.scratch, toml, &env).await
    }
}
