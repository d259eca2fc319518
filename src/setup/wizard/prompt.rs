//! The terminal prompts (dialoguer): text, comma-separated lists, confirmations, choices and
//! hidden input. Each flushes what was written before it, so the question follows its context.

use super::presets;
use anyhow::Result;
use dialoguer::theme::ColorfulTheme;
use dialoguer::{Confirm, Input, MultiSelect, Password, Select};
use std::io::Write;

pub(super) struct Ui {
    pub(super) theme: ColorfulTheme,
}

impl Ui {
    pub(super) fn text(
        &self,
        out: &mut dyn Write,
        prompt: &str,
        default: Option<&str>,
        validate: impl Fn(&str) -> Result<(), String>,
    ) -> Result<String> {
        out.flush()?;
        let mut input = Input::<String>::with_theme(&self.theme).with_prompt(prompt);
        if let Some(d) = default.filter(|d| !d.is_empty()) {
            input = input.default(d.to_string());
        }
        let value = input
            .validate_with(|s: &String| validate(s.trim()))
            .interact_text()?;
        Ok(value.trim().to_string())
    }

    /// A comma-separated list, pre-filled with the current one (editable, may be emptied).
    pub(super) fn list(
        &self,
        out: &mut dyn Write,
        prompt: &str,
        current: &[String],
        validate: impl Fn(&[String]) -> Result<(), String>,
    ) -> Result<Vec<String>> {
        out.flush()?;
        let value: String = Input::with_theme(&self.theme)
            .with_prompt(prompt)
            .with_initial_text(current.join(","))
            .allow_empty(true)
            .validate_with(|s: &String| validate(&presets::parse_list(s)))
            .interact_text()?;
        Ok(presets::parse_list(&value))
    }

    pub(super) fn confirm(&self, out: &mut dyn Write, prompt: &str, default: bool) -> Result<bool> {
        out.flush()?;
        Ok(Confirm::with_theme(&self.theme)
            .with_prompt(prompt)
            .default(default)
            .wait_for_newline(true)
            .interact()?)
    }

    pub(super) fn select(
        &self,
        out: &mut dyn Write,
        prompt: &str,
        items: &[String],
        default: usize,
    ) -> Result<usize> {
        out.flush()?;
        Ok(Select::with_theme(&self.theme)
            .with_prompt(prompt)
            .items(items)
            .default(default)
            .interact()?)
    }

    pub(super) fn multi(
        &self,
        out: &mut dyn Write,
        prompt: &str,
        items: &[&str],
        defaults: &[bool],
    ) -> Result<Vec<usize>> {
        out.flush()?;
        Ok(MultiSelect::with_theme(&self.theme)
            .with_prompt(prompt)
            .items(items)
            .defaults(defaults)
            .interact()?)
    }

    /// Hidden input; the terminal never shows what is typed.
    pub(super) fn secret(
        &self,
        out: &mut dyn Write,
        prompt: &str,
        allow_empty: bool,
        validate: impl Fn(&str) -> Result<(), String>,
    ) -> Result<String> {
        out.flush()?;
        let value = Password::with_theme(&self.theme)
            .with_prompt(prompt)
            .allow_empty_password(allow_empty)
            .validate_with(|s: &String| validate(s.trim()))
            .interact()?;
        Ok(value.trim().to_string())
    }
}
