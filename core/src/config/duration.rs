//! Durations in settings: a bare number is milliseconds (what `VQ_*_MS`-style variables
//! always meant), a string may carry its unit (`"250ms"`, `"2s"`), so a file reads
//! `wait_timeout = "100ms"` and nobody has to guess the unit of a plain `100`.

use serde::{de, Deserialize, Deserializer};
use std::time::Duration;

#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    Millis(u64),
    Text(String),
}

/// `#[serde(deserialize_with = "duration::millis_or_unit")]`.
pub fn millis_or_unit<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match Raw::deserialize(d)? {
        Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
        Raw::Text(t) => parse(&t).map_err(de::Error::custom),
    }
}

/// `"250"` and `"250ms"` are milliseconds, `"2s"` seconds.
pub fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (num, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000)
    } else {
        (t, 1)
    };
    let n: u64 = num
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not a duration: use e.g. 250, \"250ms\" or \"2s\""))?;
    Ok(Duration::from_millis(n.saturating_mul(scale)))
}

/// A list setting given either as a list (TOML) or as one comma-separated string (an
/// environment variable such as `VQ_REDIS__SENTINELS=redis://a:26379,redis://b:26379`).
pub fn list_or_commas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<String>),
        One(String),
    }
    let all = match OneOrMany::deserialize(d)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(s) => s.split(',').map(str::to_string).collect(),
    };
    Ok(all
        .into_iter()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::parse;
    use std::time::Duration;

    #[test]
    fn units_are_read_and_bare_numbers_are_milliseconds() {
        assert_eq!(parse("250"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse(" 2s"), Ok(Duration::from_secs(2)));
        assert!(parse("soon").is_err());
        assert!(parse("-1ms").is_err());
    }
}
