//! Asking the operator: one question at a time, on a terminal or from scripted answers.

use std::io::{BufRead, IsTerminal as _, Write};

use anyhow::{Context as _, bail};
use serde_json::Value;

/// One question: its id (the key in an answers file), what to ask, a default, and the
/// choices with what each means (empty: free text).
pub struct Question<'a> {
    pub id: String,
    pub text: String,
    pub default: Option<String>,
    pub choices: &'a [(&'a str, &'a str)],
}

impl<'a> Question<'a> {
    pub fn new(id: impl Into<String>, text: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            text: text.into(),
            default: None,
            choices: &[],
        }
    }

    pub fn default(mut self, d: impl Into<String>) -> Self {
        self.default = Some(d.into());
        self
    }

    pub fn choices(mut self, c: &'a [(&'a str, &'a str)]) -> Self {
        self.choices = c;
        self
    }

    /// The answer as given, or the error that says why it is not one.
    pub(super) fn check(&self, raw: &str) -> Result<String, String> {
        let raw = raw.trim();
        let answer = if raw.is_empty() {
            self.default.clone().ok_or("an answer is needed")?
        } else {
            raw.to_string()
        };
        if self.choices.is_empty() {
            return Ok(answer);
        }
        if let Ok(n) = answer.parse::<usize>()
            && (1..=self.choices.len()).contains(&n)
        {
            return Ok(self.choices[n - 1].0.to_string());
        }
        self.choices
            .iter()
            .find(|(v, _)| *v == answer)
            .map(|(v, _)| v.to_string())
            .ok_or_else(|| {
                format!(
                    "`{answer}` is not one of {}",
                    self.choices
                        .iter()
                        .map(|(v, _)| *v)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
    }
}

/// Where answers come from.
pub trait Prompt {
    fn ask(&mut self, q: &Question<'_>) -> anyhow::Result<String>;
    fn say(&mut self, text: &str);
    /// A person answers (a problem can be fixed by asking again).
    fn interactive(&self) -> bool;
    /// `answer` stands in for one not given yet: a web form collects a whole step
    /// before any of its answers is checked (see [`super::form::Form`]).
    fn placeholder(&self, _answer: &str) -> bool {
        false
    }
    /// Some answer of the step is a placeholder, so checks across answers wait.
    fn incomplete(&self) -> bool {
        false
    }
}

/// A person at a terminal.
pub struct Terminal<R, W> {
    input: R,
    output: W,
}

impl Terminal<std::io::StdinLock<'static>, std::io::Stdout> {
    /// Standard input and output, when standard input is a terminal.
    pub fn stdio() -> anyhow::Result<Self> {
        if !std::io::stdin().is_terminal() {
            bail!(
                "standard input is not a terminal: answer the questions with --answers FILE (a JSON object of question id to answer; see docs/config.md)"
            );
        }
        Ok(Self {
            input: std::io::stdin().lock(),
            output: std::io::stdout(),
        })
    }
}

impl<R: BufRead, W: Write> Prompt for Terminal<R, W> {
    fn ask(&mut self, q: &Question<'_>) -> anyhow::Result<String> {
        loop {
            let _ = writeln!(self.output, "{}", q.text);
            for (i, (value, meaning)) in q.choices.iter().enumerate() {
                let _ = writeln!(self.output, "  {}) {value} — {meaning}", i + 1);
            }
            let _ = match &q.default {
                Some(d) => write!(self.output, "[{}] {d}> ", q.id),
                None => write!(self.output, "[{}]> ", q.id),
            };
            let _ = self.output.flush();
            let mut line = String::new();
            if self.input.read_line(&mut line)? == 0 {
                bail!("input ended before `{}` was answered", q.id);
            }
            match q.check(&line) {
                Ok(answer) => return Ok(answer),
                Err(e) => {
                    let _ = writeln!(self.output, "  {e}; again:");
                }
            }
        }
    }

    fn say(&mut self, text: &str) {
        let _ = writeln!(self.output, "{text}");
    }

    fn interactive(&self) -> bool {
        true
    }
}

/// Answers from a file: each question's id, or its default.
pub struct Answers {
    answers: serde_json::Map<String, Value>,
}

impl Answers {
    pub fn from_file(path: &str) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
        match serde_json::from_str(&text).with_context(|| format!("{path} is not JSON"))? {
            Value::Object(answers) => Ok(Self { answers }),
            _ => bail!("{path}: the answers are a JSON object of question id to answer"),
        }
    }
}

impl Prompt for Answers {
    fn ask(&mut self, q: &Question<'_>) -> anyhow::Result<String> {
        let raw = match self.answers.get(&q.id) {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(Value::Bool(b)) => if *b { "yes" } else { "no" }.to_string(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            Some(other) => other.to_string(),
        };
        q.check(&raw)
            .map_err(|e| anyhow::anyhow!("answer `{}` ({}): {e}", q.id, q.text))
    }

    fn say(&mut self, text: &str) {
        println!("{text}");
    }

    fn interactive(&self) -> bool {
        false
    }
}
