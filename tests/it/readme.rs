//! README.md stays true: every TOML example in it passes `secops-mcp config check` (with
//! dummy secrets in the variables it names, and the files it names created in a scratch
//! directory), so a newcomer who copies one gets a working configuration.

use crate::common::*;

/// The ```toml blocks of README.md, with the line each starts on.
fn toml_blocks(readme: &str) -> Vec<(usize, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in readme.lines().enumerate() {
        let t = line.trim_start();
        match current.as_mut() {
            None if t.starts_with("```toml") => current = Some((i + 1, String::new())),
            Some(_) if t.starts_with("```") => blocks.push(current.take().unwrap()),
            Some((_, text)) => {
                // Blocks inside list items are indented.
                let indent = line.len() - t.len();
                text.push_str(if indent >= 3 { &line[3..] } else { line });
                text.push('\n');
            }
            None => {}
        }
    }
    blocks
}

/// Every quoted absolute path under /etc/secops-mcp or /var/log/secops-mcp, moved into
/// `root` (files created with a dummy secret, directories for the rest).
fn relocate(block: &str, root: &std::path::Path) -> String {
    let mut out = block.to_string();
    for prefix in ["/etc/secops-mcp/", "/var/log/secops-mcp/", "/run/secrets/"] {
        let local = root.join(prefix.trim_matches('/').replace('/', "_"));
        std::fs::create_dir_all(&local).unwrap();
        let mut rest = out.as_str();
        let mut files = Vec::new();
        while let Some(pos) = rest.find(prefix) {
            let tail = &rest[pos + prefix.len()..];
            let end = tail.find('"').unwrap_or(tail.len());
            files.push(tail[..end].to_string());
            rest = &tail[end..];
        }
        for f in files {
            let path = local.join(&f);
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).unwrap();
            }
            let content = if f.ends_with(".url") {
                "https://hooks.example.test/services/dummy-0123\n"
            } else {
                "dummyFileSecret0123456789abcdef\n"
            };
            if !f.ends_with(".jsonl") && !path.exists() {
                std::fs::write(&path, content).unwrap();
            }
        }
        out = out.replace(prefix, &format!("{}/", local.display()));
    }
    out
}

#[test]
fn every_toml_example_in_the_readme_passes_config_check() {
    let readme = std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR")))
        .expect("README.md");
    let blocks = toml_blocks(&readme);
    assert!(blocks.len() >= 3, "README has its TOML examples");
    for (line, block) in blocks {
        let scratch = Scratch::new();
        let text = relocate(&block, scratch.path());
        let cfg = scratch.write("secops.toml", &text);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_secops-mcp"));
        cmd.args(["--config", cfg.to_str().unwrap(), "config", "check"])
            .env_clear()
            .env("HOME", scratch.path())
            .env("SECOPS_STATE_DIR", scratch.state_dir())
            .stdin(std::process::Stdio::null());
        if let Ok(path) = std::env::var("PATH") {
            cmd.env("PATH", path);
        }
        // Every SECOPS_* variable the block names gets a dummy value.
        for word in text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            if word.starts_with("SECOPS_") && word.len() > 7 {
                let value = if word.contains("URL") {
                    "https://hooks.example.test/services/dummy-0123"
                } else {
                    "dummySecretValue0123456789abcdef"
                };
                cmd.env(word, value);
            }
        }
        let out = cmd.output().expect("run secops-mcp");
        assert_eq!(
            out.status.code(),
            Some(0),
            "README.md line {line}: {}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_block_reader_finds_indented_blocks() {
    let md = "a\n```toml\nx = 1\n```\n1. item\n   ```toml\n   y = 2\n   ```\n```sh\nz\n```\n";
    let b = toml_blocks(md);
    assert_eq!(b, vec![(2, "x = 1\n".into()), (6, "y = 2\n".into())]);
}
