//! What the command line prints for a person: the start-up banner, a created token, the demo's
//! events, a fatal error. Plain lines by default; with `--log-format json` each is one JSON
//! object shaped like the log's own lines (`timestamp`, `level`, `fields.message` and the
//! values beside it, `target`), so every line dirgate writes to stdout and stderr parses as
//! JSON and a log shipper takes them all.

use crate::config::LogFormat;
use serde_json::{Map, Value, json};
use std::fmt::Display;

/// Where and how the command line prints.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    json: bool,
}

impl Output {
    pub fn new(format: LogFormat) -> Self {
        Self {
            json: format == LogFormat::Json,
        }
    }

    /// One line on stdout: `text` as it is, or as JSON `message` with `fields` (an object).
    pub fn line(&self, text: impl Display, message: &str, fields: Value) {
        if self.json {
            println!("{}", self.object("INFO", message, fields));
        } else {
            println!("{text}");
        }
    }

    /// A fatal error on stderr: `error: ...`, or as JSON at level `ERROR`.
    pub fn error(&self, err: impl Display) {
        if self.json {
            eprintln!(
                "{}",
                self.object("ERROR", &err.to_string(), Value::Object(Map::new()))
            );
        } else {
            eprintln!("error: {err}");
        }
    }

    /// Whether lines are JSON.
    pub fn is_json(&self) -> bool {
        self.json
    }

    fn object(&self, level: &str, message: &str, fields: Value) -> Value {
        let mut all = Map::new();
        all.insert("message".into(), message.into());
        if let Value::Object(more) = fields {
            all.extend(more);
        }
        json!({
            "timestamp": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "level": level,
            "fields": all,
            "target": "dirgate",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_is_a_log_line_with_the_message_and_its_fields() {
        let out = Output::new(LogFormat::Json);
        let line = out.object("INFO", "dirgate is listening", json!({ "url": "http://x" }));
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["fields"]["message"], "dirgate is listening");
        assert_eq!(line["fields"]["url"], "http://x");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(!Output::new(LogFormat::Text).is_json());
    }
}
