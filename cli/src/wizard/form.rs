//! The wizard's questions answered by a web form (`s3imports console`'s New import):
//! the same steps, questions, checks and messages as `config new`, a step a page.
//!
//! Each request runs the whole wizard again over the answers the form carries. The
//! steps before the one being collected must be answered and pass their checks (the
//! first that does not is the page shown again, with its problem); the questions of the
//! step being collected are recorded, with their defaults, to be shown as the next
//! page. A question of that step with no answer and no default gets a placeholder, so
//! one page shows the whole step; nothing is fetched or saved while one is left.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Map, Value};

use super::prompt::{Prompt, Question};

/// Stands in for an answer not given yet (never typed: it starts with a control
/// character, which the form's values cannot hold).
const PLACEHOLDER: &str = "\u{1}unanswered";

/// The wizard was stopped on purpose: the page to show is known.
#[derive(Debug, thiserror::Error)]
#[error("the set-up waits for answers on step {0}")]
pub struct Stopped(pub u8);

/// One question as the page shows it.
#[derive(Debug, Clone)]
pub struct Asked {
    pub id: String,
    pub text: String,
    pub default: Option<String>,
    pub choices: Vec<(String, String)>,
    /// The answer so far (empty for none).
    pub value: String,
    /// Why the answer given is not one, in the wizard's words.
    pub problem: Option<String>,
    pub step: u8,
}

/// Answers from a form, and what the wizard asked and said on the way.
pub struct Form {
    answers: Map<String, Value>,
    /// The step whose questions are collected (4: none; the set-up is to finish).
    target: u8,
    /// The step the wizard is in (from its "Step N of 3" line).
    step: u8,
    seen: HashSet<String>,
    pub asked: Vec<Asked>,
    /// What the wizard said, with its step.
    pub said: Vec<(u8, String)>,
    /// Where it stopped, when it did.
    pub stopped: Option<u8>,
    /// A question of the collected step has no answer yet (shared with the services,
    /// which fetch nothing meanwhile).
    pub unanswered: Arc<AtomicBool>,
    /// Set by the services when they would not fetch: the pass ends at the next
    /// question (the step's page is shown as it is).
    pub halt: Arc<AtomicBool>,
}

impl Form {
    pub fn new(answers: Map<String, Value>, target: u8) -> Self {
        Self {
            answers,
            target,
            step: 1,
            seen: HashSet::new(),
            asked: Vec::new(),
            said: Vec::new(),
            stopped: None,
            unanswered: Arc::new(AtomicBool::new(false)),
            halt: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The step the wizard was in when it ended or stopped.
    pub fn step(&self) -> u8 {
        self.stopped.unwrap_or(self.step)
    }

    /// A value as the form shows it: a placeholder is no answer.
    pub fn shown(value: &str) -> &str {
        if value.contains(PLACEHOLDER) {
            ""
        } else {
            value
        }
    }

    fn raw(&self, id: &str) -> Option<String> {
        match self.answers.get(id)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            Value::Bool(b) => Some(if *b { "yes" } else { "no" }.to_string()),
            other => Some(other.to_string()),
        }
    }

    fn stop(&mut self, step: u8) -> anyhow::Error {
        self.stopped = Some(step);
        Stopped(step).into()
    }
}

impl Prompt for Form {
    fn ask(&mut self, q: &Question<'_>) -> anyhow::Result<String> {
        if let Some(step) = self.stopped {
            return Err(Stopped(step).into());
        }
        if self.halt.load(Ordering::Relaxed) {
            return Err(self.stop(self.step));
        }
        if self.step > self.target {
            return Err(self.stop(self.target));
        }
        // Asked again in one pass: the wizard wants a new answer (after a problem it
        // said), so the page of this step is shown with it.
        if !self.seen.insert(q.id.clone()) {
            return Err(self.stop(self.step));
        }
        let raw = self.raw(&q.id).filter(|r| !r.trim().is_empty());
        let mut asked = Asked {
            id: q.id.clone(),
            text: q.text.clone(),
            default: q.default.clone(),
            choices: q
                .choices
                .iter()
                .map(|(v, m)| (v.to_string(), m.to_string()))
                .collect(),
            value: String::new(),
            problem: None,
            step: self.step,
        };
        let checked = raw.as_deref().map(|r| q.check(r));
        let answer = match checked {
            Some(Ok(answer)) => Ok(answer),
            Some(Err(problem)) => Err(Some(problem)),
            None => match (&q.default, q.choices.first()) {
                (Some(d), _) => Ok(d.clone()),
                (None, Some((first, _))) if self.step == self.target => Ok(first.to_string()),
                _ => Err(None),
            },
        };
        match answer {
            Ok(a) => {
                asked.value = a.clone();
                self.asked.push(asked);
                Ok(a)
            }
            Err(problem) if self.step == self.target => {
                // The step being collected: shown whole, its gaps marked.
                asked.value = raw.unwrap_or_default();
                asked.problem = problem;
                self.unanswered.store(true, Ordering::Relaxed);
                self.asked.push(asked);
                Ok(q.default
                    .clone()
                    .or_else(|| q.choices.first().map(|(v, _)| v.to_string()))
                    .unwrap_or_else(|| PLACEHOLDER.to_string()))
            }
            Err(problem) => {
                asked.value = raw.unwrap_or_default();
                asked.problem = Some(problem.unwrap_or_else(|| "an answer is needed".into()));
                self.asked.push(asked);
                Err(self.stop(self.step))
            }
        }
    }

    fn say(&mut self, text: &str) {
        if let Some(n) = text
            .strip_prefix("Step ")
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
        {
            self.step = n;
            return;
        }
        // "  <why>; again:" follows the answer it is about.
        if text.starts_with("  ")
            && text.ends_with("again:")
            && let Some(last) = self.asked.last_mut()
            && last.problem.is_none()
        {
            last.problem = Some(
                text.trim()
                    .trim_end_matches("again:")
                    .trim_end_matches("; ")
                    .trim()
                    .to_string(),
            );
            return;
        }
        self.said.push((self.step, text.to_string()));
    }

    /// Interactive: a problem is said and the question asked again, which ends the
    /// pass on that step's page.
    fn interactive(&self) -> bool {
        true
    }

    fn placeholder(&self, answer: &str) -> bool {
        answer.contains(PLACEHOLDER)
    }

    fn incomplete(&self) -> bool {
        self.unanswered.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(answers: Value, target: u8) -> Form {
        Form::new(answers.as_object().cloned().unwrap_or_default(), target)
    }

    #[test]
    fn the_collected_step_is_shown_whole_with_its_gaps() {
        let mut f = form(json!({}), 1);
        f.say("Step 1 of 3: source and format");
        let id = f.ask(&Question::new("id", "Import id")).unwrap_or_default();
        assert!(f.placeholder(&id) && f.incomplete());
        let name = f
            .ask(&Question::new("name", "Name").default("x"))
            .unwrap_or_default();
        assert_eq!(name, "x");
        assert_eq!(f.asked.len(), 2);
        assert_eq!(Form::shown(&id), "");
    }

    #[test]
    fn an_earlier_step_without_an_answer_stops_on_its_page() {
        let mut f = form(json!({"name": "n"}), 2);
        f.say("Step 1 of 3: source and format");
        assert!(f.ask(&Question::new("id", "Import id")).is_err());
        assert_eq!(f.step(), 1);
        assert_eq!(f.asked[0].problem.as_deref(), Some("an answer is needed"));
    }

    #[test]
    fn a_question_asked_twice_ends_the_pass_on_its_step() {
        let mut f = form(json!({"id": "a b"}), 2);
        f.say("Step 1 of 3: source and format");
        assert_eq!(
            f.ask(&Question::new("id", "Import id")).unwrap_or_default(),
            "a b"
        );
        f.say("  1 to 64 lowercase letters; again:");
        assert!(f.ask(&Question::new("id", "Import id")).is_err());
        assert_eq!(f.step(), 1);
        assert_eq!(
            f.asked[0].problem.as_deref(),
            Some("1 to 64 lowercase letters")
        );
    }

    #[test]
    fn reaching_the_step_after_the_collected_one_stops_there() {
        let mut f = form(json!({"id": "a"}), 1);
        f.say("Step 1 of 3: source and format");
        assert_eq!(
            f.ask(&Question::new("id", "Import id")).unwrap_or_default(),
            "a"
        );
        f.say("Step 2 of 3: mapping");
        assert!(
            f.ask(&Question::new("mapping_file", "?").default(""))
                .is_err()
        );
        assert_eq!(f.step(), 1);
        assert!(!f.incomplete());
    }
}
