//! Runbook prompts, loaded from `prompts/*.md` at build time. Each file starts with a small
//! header (`name:`, `title:`, `description:`, and `arg: name | required|optional | default |
//! description` lines) closed by `---`; the rest is the prompt text with `{{arg}}` slots.

use std::sync::OnceLock;

use rmcp::ErrorData;
use rmcp::model::{GetPromptResult, JsonObject, Prompt, PromptArgument, PromptMessage, Role};

/// Every prompt file, embedded. A unit test checks this list matches `prompts/`.
const FILES: &[(&str, &str)] = &[
    (
        "daily_health_check.md",
        include_str!("../../prompts/daily_health_check.md"),
    ),
    (
        "emergency_restart.md",
        include_str!("../../prompts/emergency_restart.md"),
    ),
    (
        "incident_response.md",
        include_str!("../../prompts/incident_response.md"),
    ),
];

/// Longest argument value accepted into a prompt.
const MAX_ARG_LEN: usize = 500;

#[derive(Debug, Clone)]
pub struct PromptDef {
    pub name: String,
    pub title: String,
    pub description: String,
    pub args: Vec<ArgDef>,
    pub body: String,
}

#[derive(Debug, Clone)]
pub struct ArgDef {
    pub name: String,
    pub required: bool,
    pub default: String,
    pub description: String,
}

fn parse(file: &str, text: &str) -> Result<PromptDef, String> {
    let (header, body) = text
        .split_once("\n---\n")
        .ok_or_else(|| format!("{file}: missing `---` after the header"))?;
    let mut def = PromptDef {
        name: String::new(),
        title: String::new(),
        description: String::new(),
        args: Vec::new(),
        body: body.trim().to_string(),
    };
    for line in header.lines().filter(|l| !l.trim().is_empty()) {
        let (key, value) = line
            .split_once(':')
            .ok_or_else(|| format!("{file}: header line without `key:`: {line}"))?;
        let value = value.trim().to_string();
        match key.trim() {
            "name" => def.name = value,
            "title" => def.title = value,
            "description" => def.description = value,
            "arg" => {
                let parts: Vec<&str> = value.splitn(4, '|').map(str::trim).collect();
                let [name, req, default, description] = parts[..] else {
                    return Err(format!(
                        "{file}: `arg:` needs `name | required|optional | default | description`"
                    ));
                };
                def.args.push(ArgDef {
                    name: name.to_string(),
                    required: req == "required",
                    default: default.to_string(),
                    description: description.to_string(),
                });
            }
            other => return Err(format!("{file}: unknown header key `{other}`")),
        }
    }
    if def.name.is_empty() || def.description.is_empty() {
        return Err(format!("{file}: `name` and `description` are required"));
    }
    Ok(def)
}

pub fn catalog() -> &'static [PromptDef] {
    static CATALOG: OnceLock<Vec<PromptDef>> = OnceLock::new();
    CATALOG.get_or_init(|| {
        FILES
            .iter()
            .map(|(file, text)| parse(file, text).unwrap_or_else(|e| panic!("bad prompt {e}")))
            .collect()
    })
}

pub fn list() -> Vec<Prompt> {
    catalog()
        .iter()
        .map(|p| {
            let args = p
                .args
                .iter()
                .map(|a| {
                    PromptArgument::new(&a.name)
                        .with_description(if a.default.is_empty() {
                            a.description.clone()
                        } else {
                            format!("{} (default: {})", a.description, a.default)
                        })
                        .with_required(a.required)
                })
                .collect::<Vec<_>>();
            Prompt::new(&p.name, Some(&p.description), Some(args)).with_title(&p.title)
        })
        .collect()
}

pub fn get(name: &str, arguments: Option<&JsonObject>) -> Result<GetPromptResult, ErrorData> {
    let def = catalog().iter().find(|p| p.name == name).ok_or_else(|| {
        let known: Vec<&str> = catalog().iter().map(|p| p.name.as_str()).collect();
        ErrorData::invalid_params(
            format!("unknown prompt `{name}`; available: {}", known.join(", ")),
            None,
        )
    })?;
    let mut body = def.body.clone();
    if let Some(args) = arguments {
        for key in args.keys() {
            if !def.args.iter().any(|a| &a.name == key) {
                return Err(ErrorData::invalid_params(
                    format!(
                        "prompt `{name}` has no argument `{key}`; allowed: {}",
                        def.args
                            .iter()
                            .map(|a| a.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None,
                ));
            }
        }
    }
    for a in &def.args {
        let given = arguments
            .and_then(|m| m.get(&a.name))
            .and_then(|v| v.as_str())
            .map(str::trim)
            .filter(|v| !v.is_empty());
        let value = match given {
            Some(v) if v.len() > MAX_ARG_LEN => {
                return Err(ErrorData::invalid_params(
                    format!(
                        "prompt argument `{}` is longer than {MAX_ARG_LEN} characters",
                        a.name
                    ),
                    None,
                ));
            }
            Some(v) => v.replace(['\r', '\n'], " "),
            None if a.required => {
                return Err(ErrorData::invalid_params(
                    format!("prompt `{name}` requires argument `{}`", a.name),
                    None,
                ));
            }
            None => a.default.clone(),
        };
        body = body.replace(&format!("{{{{{}}}}}", a.name), &value);
    }
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, body)])
            .with_description(&def.description),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_prompt_file_is_embedded_and_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/prompts");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".md"))
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = FILES.iter().map(|(f, _)| f.to_string()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded, "prompts/ and FILES differ");
        assert!(catalog().iter().all(|p| !p.body.is_empty()));
    }

    #[test]
    fn arguments_fill_slots_and_defaults_apply() {
        let r = get("daily_health_check", None).unwrap();
        let text = format!("{:?}", r.messages);
        assert!(text.contains("24h"), "{text}");
        assert!(!text.contains("{{"), "unfilled slot: {text}");
        let mut args = JsonObject::new();
        args.insert("since".into(), "12h".into());
        let text = format!(
            "{:?}",
            get("daily_health_check", Some(&args)).unwrap().messages
        );
        assert!(text.contains("12h"));
    }

    #[test]
    fn unknown_prompt_and_argument_are_refused() {
        assert!(get("nope", None).is_err());
        let mut args = JsonObject::new();
        args.insert("bogus".into(), "x".into());
        let e = get("daily_health_check", Some(&args)).unwrap_err();
        assert!(e.message.contains("bogus"));
    }
}
