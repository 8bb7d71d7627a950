//! Account newtypes: parse, don't validate. Signup and login handlers only ever hold
//! values that passed these rules, so storage and crypto code never re-check input.

use crate::domain::{no_controls, Invalid, Lines};
use std::fmt;

/// An e-mail address, trimmed and lower-cased so one mailbox maps to one account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

impl Email {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = || Invalid("must be an e-mail address like name@example.com".into());
        no_controls(s, Lines::Single)?;
        let t = s.trim().to_lowercase();
        if t.len() > 254 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad());
        }
        let (local, domain) = t.split_once('@').ok_or_else(bad)?;
        if local.is_empty() || local.len() > 64 || domain.contains('@') {
            return Err(bad());
        }
        let labels: Vec<&str> = domain.split('.').collect();
        let label_ok = |l: &&str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        };
        if labels.len() < 2 || !labels.iter().all(label_ok) {
            return Err(bad());
        }
        Ok(Email(t))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A password that meets the policy. `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    pub const MIN_CHARS: usize = 12;
    pub const MAX_CHARS: usize = 128;

    /// Length rule plus "not one character class only": a length-first policy (NIST
    /// 800-63B style) that still rejects `aaaaaaaaaaaa` and `123456789012`.
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        no_controls(s, Lines::Single)?;
        let n = s.chars().count();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&n) {
            return Err(Invalid(format!(
                "must be {} to {} characters",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            )));
        }
        let letter = s.chars().any(char::is_alphabetic);
        let other = s.chars().any(|c| !c.is_alphabetic());
        if !letter || !other {
            return Err(Invalid(
                "must contain a letter and a digit or symbol".into(),
            ));
        }
        Ok(Password(s.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password([redacted])")
    }
}

/// A phone number in E.164 form (`+` and 8 to 15 digits); spaces, dashes, dots and
/// parentheses in the input are dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let bad = || Invalid("must be an international number like +49 30 1234567".into());
        let t = s.trim();
        let rest = t.strip_prefix('+').ok_or_else(bad)?;
        let mut digits = String::with_capacity(16);
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(bad()),
            }
        }
        if !(8..=15).contains(&digits.len()) || digits.starts_with('0') {
            return Err(bad());
        }
        Ok(Phone(format!("+{digits}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Printable text of bounded length; `multiline` allows line breaks (postal addresses).
fn text(s: &str, min: usize, max: usize, multiline: bool) -> Result<String, Invalid> {
    let t = s.trim();
    no_controls(
        t,
        if multiline {
            Lines::Multi
        } else {
            Lines::Single
        },
    )?;
    let n = t.chars().count();
    if n < min || n > max {
        return Err(Invalid(format!(
            "must be {min} to {max} printable characters"
        )));
    }
    Ok(t.to_string())
}

/// The account holder's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        text(s, 1, 100, false).map(PersonName)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A postal address (line breaks allowed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address(String);

impl Address {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        text(s, 5, 300, true).map(Address)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A six-digit e-mail verification code.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailCode(String);

impl EmailCode {
    pub fn parse(s: &str) -> Result<Self, Invalid> {
        let t = s.trim();
        if t.len() == 6 && t.bytes().all(|b| b.is_ascii_digit()) {
            Ok(EmailCode(t.to_string()))
        } else {
            Err(Invalid("must be the 6-digit code from the e-mail".into()))
        }
    }

    /// A fresh uniformly random code.
    pub fn random() -> Self {
        use rand::Rng;
        EmailCode(format!(
            "{:06}",
            rand::thread_rng().gen_range(0..1_000_000u32)
        ))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for EmailCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailCode([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        for bad in [
            "",
            "ann",
            "ann@",
            "@x.com",
            "a@b",
            "a b@x.com",
            "a@x..com",
            "a@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn password_policy() {
        assert!(Password::parse("short1").is_err());
        assert!(Password::parse("aaaaaaaaaaaaaaa").is_err());
        assert!(Password::parse("123456789012345").is_err());
        assert!(Password::parse(&"a1".repeat(65)).is_err());
        assert!(Password::parse("correct horse 9").is_ok());
        assert!(!format!("{:?}", Password::parse("correct horse 9").unwrap()).contains("horse"));
    }

    #[test]
    fn phones_become_e164() {
        assert_eq!(
            Phone::parse("+49 (30) 123-4567").unwrap().as_str(),
            "+49301234567"
        );
        for bad in [
            "030 1234567",
            "+12",
            "+49 30 12a4567",
            "+0123456789",
            "+1234567890123456",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_addresses_and_codes() {
        assert!(PersonName::parse("  ").is_err());
        assert!(PersonName::parse("Ann\nLee").is_err());
        assert_eq!(PersonName::parse(" Ann Lee ").unwrap().as_str(), "Ann Lee");
        assert!(Address::parse("Main St 1\n10115 Berlin").is_ok());
        assert!(Address::parse("abc").is_err());
        assert!(EmailCode::parse("12345").is_err());
        assert!(EmailCode::parse("12345a").is_err());
        assert_eq!(EmailCode::parse("012345").unwrap().as_str(), "012345");
        assert_eq!(EmailCode::random().as_str().len(), 6);
    }
}
