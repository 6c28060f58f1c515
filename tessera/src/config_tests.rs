//! Tests of the configuration: precedence of flags, environment and file, validation, and
//! that no secret shows in Debug output.

use super::*;

#[test]
fn credentials() {
    let dev = Credentials::from_env_values(None, None).unwrap();
    assert_eq!(dev.source, CredentialSource::Development);
    let env =
        Credentials::from_env_values(Some("admin".into()), Some("secret-key".into())).unwrap();
    assert_eq!(env.source, CredentialSource::Environment);
    assert!(Credentials::from_env_values(Some("admin".into()), None).is_err());
    assert!(Credentials::from_env_values(Some("admin".into()), Some("short".into())).is_err());
}

fn exposed(secret: &Option<SecretString>) -> Option<&str> {
    secret.as_ref().map(|s| s.expose_secret())
}

fn args(flags: &[&str]) -> ServeArgs {
    use clap::{FromArgMatches, Parser};
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }
    let m = <Cli as clap::CommandFactory>::command()
        .try_get_matches_from(std::iter::once("tessera").chain(flags.iter().copied()))
        .unwrap();
    Cli::from_arg_matches(&m).unwrap().serve
}

#[test]
fn flags_override_the_file_which_overrides_defaults() {
    let file = FileConfig::parse(
        r#"
        address = "127.0.0.1:9100"
        disks = ["/d{1...4}"]
        region = "eu-file-1"
        gc_grace_secs = 42
        scan_interval_secs = 0
        metrics_token = "from-file"
        log_format = "json"
        "#,
    )
    .unwrap();
    let cfg = args(&["--region", "eu-flag-1", "--scan-bandwidth-mib", "0"])
        .resolve(file, EnvSettings::default())
        .unwrap();
    assert_eq!(cfg.region, "eu-flag-1");
    assert_eq!(cfg.address.to_string(), "127.0.0.1:9100");
    assert_eq!(cfg.disks.len(), 4);
    assert_eq!(cfg.gc_grace, Duration::from_secs(42));
    assert_eq!(cfg.scan.interval, None);
    assert_eq!(cfg.scan.bytes_per_sec, 0);
    assert_eq!(exposed(&cfg.metrics_token), Some("from-file"));
    assert_eq!(cfg.log_format, LogFormat::Json);
    assert_eq!(cfg.disk_check_interval, Duration::from_secs(5));
    assert_eq!(cfg.shutdown_timeout, Duration::from_secs(30));

    // DIR arguments replace the file's disks; the global flag's log format wins.
    let file = FileConfig::parse("disks = [\"/a\", \"/b\"]\nlog_format = \"json\"").unwrap();
    let env = EnvSettings {
        log_format: Some(LogFormat::Text),
        ..EnvSettings::default()
    };
    let cfg = args(&["/x"]).resolve(file, env).unwrap();
    assert_eq!(cfg.disks, [PathBuf::from("/x")]);
    assert_eq!(cfg.log_format, LogFormat::Text);
    assert_eq!(cfg.address.to_string(), "0.0.0.0:9000");
    assert_eq!(cfg.region, "us-east-1");
}

#[test]
fn credentials_come_whole_from_one_place() {
    let file = || {
        FileConfig::parse("root_user = \"fileuser\"\nroot_password = \"file-password\"").unwrap()
    };
    let cfg = args(&["/d"])
        .resolve(file(), EnvSettings::default())
        .unwrap();
    assert_eq!(cfg.credentials.access_key, "fileuser");
    let env = EnvSettings {
        root_user: Some("envuser".into()),
        root_password: Some("env-password".into()),
        ..EnvSettings::default()
    };
    let cfg = args(&["/d"]).resolve(file(), env).unwrap();
    assert_eq!(cfg.credentials.access_key, "envuser");
    assert_eq!(cfg.credentials.secret_key.expose_secret(), "env-password");
    // An empty variable does not replace the file's token.
    let token_file = FileConfig::parse("disks = [\"/d\"]\nmetrics_token = \"file-token\"").unwrap();
    let mut empty = args(&[]);
    empty.metrics_token = Some(SecretString::from(""));
    empty.region = Some(" ".into());
    let cfg = empty.resolve(token_file, EnvSettings::default()).unwrap();
    assert_eq!(exposed(&cfg.metrics_token), Some("file-token"));
    assert_eq!(cfg.region, "us-east-1");
    let half = EnvSettings {
        root_user: Some("envuser".into()),
        ..EnvSettings::default()
    };
    assert!(args(&["/d"]).resolve(file(), half).is_err());
}

#[test]
fn nodes_need_a_secret_and_a_metadata_home() {
    let env = || EnvSettings {
        cluster_secret: Some("sixteen-chars-secret".into()),
        ..EnvSettings::default()
    };
    let cfg = args(&["--node", "http://127.0.0.{1...3}:9100/", "--meta-dir", "/m"])
        .resolve(FileConfig::default(), env())
        .unwrap();
    assert_eq!(
        cfg.nodes,
        [
            "http://127.0.0.1:9100",
            "http://127.0.0.2:9100",
            "http://127.0.0.3:9100"
        ]
    );
    assert!(cfg.disks.is_empty());
    let err = |flags: &[&str], env: EnvSettings| {
        args(flags).resolve(FileConfig::default(), env).unwrap_err()
    };
    assert!(err(&["--node", "http://a:1"], env()).contains("--meta-dir"));
    assert!(
        err(
            &["--node", "http://a:1", "--meta-dir", "/m"],
            EnvSettings::default()
        )
        .contains("TESSERA_CLUSTER_SECRET")
    );
    assert!(err(&["--node", "a:1", "--meta-dir", "/m"], env()).contains("http://"));
    assert!(err(&["--meta-dir", "/m", "/d"], env()).contains("local disks"));
    // Local disks and nodes combine; the file may list the nodes.
    let file = FileConfig::parse("nodes = [\"http://n{1...2}:9100\"]").unwrap();
    let cfg = args(&["/d"]).resolve(file, env()).unwrap();
    assert_eq!(cfg.nodes.len(), 2);
}

#[test]
fn file_errors_name_the_key() {
    let e = FileConfig::parse("adress = \"127.0.0.1:9000\"").unwrap_err();
    assert!(e.contains("adress"), "{e}");
    let e = FileConfig::parse("parity = \"two\"").unwrap_err();
    assert!(e.contains("parity"), "{e}");
    let e = FileConfig::parse("log_format = \"xml\"").unwrap_err();
    assert!(e.contains("log_format"), "{e}");
    assert!(
        args(&[])
            .resolve(FileConfig::default(), EnvSettings::default())
            .is_err()
    );
    assert!(
        args(&["/d", "/d"])
            .resolve(FileConfig::default(), EnvSettings::default())
            .is_err()
    );
}

#[test]
fn trusted_proxies_from_flags_or_file() {
    let file =
        || FileConfig::parse("disks = [\"/d\"]\ntrusted_proxies = [\"10.0.0.0/8\"]").unwrap();
    let cfg = args(&[]).resolve(file(), EnvSettings::default()).unwrap();
    assert_eq!(cfg.trusted_proxies.to_string(), "10.0.0.0/8");
    let cfg = args(&[
        "--trusted-proxy",
        "192.168.0.0/16",
        "--trusted-proxy",
        "::1",
    ])
    .resolve(file(), EnvSettings::default())
    .unwrap();
    assert_eq!(cfg.trusted_proxies.to_string(), "192.168.0.0/16, ::1/128");
    let e = args(&["--trusted-proxy", "lb.local", "/d"])
        .resolve(FileConfig::default(), EnvSettings::default())
        .unwrap_err();
    assert!(e.contains("lb.local"), "{e}");
    let cfg = args(&["/d"])
        .resolve(FileConfig::default(), EnvSettings::default())
        .unwrap();
    assert!(cfg.trusted_proxies.is_empty());
}

#[test]
fn the_console_from_flags_or_file() {
    let cfg = args(&["/d"])
        .resolve(FileConfig::default(), EnvSettings::default())
        .unwrap();
    assert!(cfg.console);
    assert_eq!(cfg.console_address, None);
    let file = || {
        FileConfig::parse(
            "disks = [\"/d\"]\nconsole = \"off\"\nconsole_address = \"127.0.0.1:9001\"",
        )
        .unwrap()
    };
    // Off in the file with a console port: refused, rather than a port that serves nothing.
    let e = args(&[])
        .resolve(file(), EnvSettings::default())
        .unwrap_err();
    assert!(e.contains("--console-address"), "{e}");
    let cfg = args(&["--console", "on"])
        .resolve(file(), EnvSettings::default())
        .unwrap();
    assert!(cfg.console);
    assert_eq!(cfg.console_address.unwrap().to_string(), "127.0.0.1:9001");
    let cfg = args(&["--console", "off", "/d"])
        .resolve(FileConfig::default(), EnvSettings::default())
        .unwrap();
    assert!(!cfg.console);
}

#[test]
fn debug_output_holds_no_secret() {
    let file = FileConfig::parse(
        r#"
        disks = ["/d"]
        root_user = "fileuser"
        root_password = "file-root-password-1"
        cluster_secret = "file-cluster-secret-2"
        metrics_token = "file-metrics-token-3"
        nodes = ["http://n1:9100"]
        "#,
    )
    .unwrap();
    let file_debug = format!("{file:?}");
    let cli = args(&["--metrics-token", "flag-metrics-token-4"]);
    let cli_debug = format!("{cli:?}");
    let env = EnvSettings {
        cluster_secret: Some("env-cluster-secret-5".into()),
        previous_root_password: Some("env-previous-password-6".into()),
        ..EnvSettings::default()
    };
    let env_debug = format!("{env:?}");
    let cfg = cli.resolve(file, env).unwrap();
    // The values are all there (so the search below is not vacuous) ...
    assert_eq!(exposed(&cfg.metrics_token), Some("flag-metrics-token-4"));
    assert_eq!(exposed(&cfg.cluster_secret), Some("env-cluster-secret-5"));
    assert_eq!(
        exposed(&cfg.previous_root_password),
        Some("env-previous-password-6")
    );
    assert_eq!(
        cfg.credentials.secret_key.expose_secret(),
        "file-root-password-1"
    );
    // ... and no Debug output shows any of them.
    let all = format!(
        "{cfg:?}\n{:#?}\n{file_debug}\n{cli_debug}\n{env_debug}",
        cfg
    );
    for secret in [
        "file-root-password",
        "file-cluster-secret",
        "file-metrics-token",
        "flag-metrics-token",
        "env-cluster-secret",
        "env-previous-password",
    ] {
        assert!(!all.contains(secret), "{secret} in {all}");
    }
    assert!(all.contains("fileuser"), "{all}");
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// Any config file text: parsed or refused with a message, never a panic.
    #[test]
    fn config_files_never_panic(text in "[ -~\n]{0,120}") {
        if let Err(e) = FileConfig::parse(&text) {
            proptest::prop_assert!(!e.is_empty());
        }
    }

    #[test]
    fn config_keys_with_any_values(key in proptest::sample::select(vec![
        "address", "disks", "parity", "region", "domains", "metrics_token", "root_user",
        "root_password", "nodes", "etcd", "trusted_proxies", "certs_dir",
        "allow_insecure_sse_c", "auth_failure_limit", "log_format", "scan_interval_secs",
        "console", "console_address",
    ]), value in "[ -~]{0,30}") {
        for text in [format!("{key} = {value}"), format!("{key} = \"{value}\""), format!("{key} = [\"{value}\"]")] {
            if let Ok(file) = FileConfig::parse(&text) {
                let _ = args(&["/d"]).resolve(file, EnvSettings::default());
            }
        }
    }
}
