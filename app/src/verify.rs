//! `vitaqueue verify-shuffle`: re-checks a drop's pre-queue draw from the public fairness
//! endpoint alone (no database, no keys), so any buyer can run it against the live site.
//! The checking itself is `vq_core::fairness::verify`; this is only the HTTP fetch.

use serde::Deserialize;
use vq_core::fairness::{self, Mismatch, PublishedDraw};

#[derive(Deserialize)]
struct View {
    shuffle_commitment: String,
    shuffle_seed: Option<String>,
    draw: Option<Page>,
}

#[derive(Deserialize)]
struct Page {
    total: u64,
    pseudonyms: Vec<String>,
    next_offset: Option<u64>,
}

/// Why the draw could not be checked or did not check out.
#[derive(Debug)]
pub enum Failure {
    /// The drop has not started: only the commitment is public.
    NotRevealed { commitment: String },
    /// The published data is inconsistent or wrong.
    Mismatch(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotRevealed { commitment } => write!(
                f,
                "the drop has not started: the seed is not revealed yet (commitment {commitment})"
            ),
            Failure::Mismatch(m) => write!(f, "MISMATCH: {m}"),
        }
    }
}

impl From<Mismatch> for Failure {
    fn from(m: Mismatch) -> Self {
        Failure::Mismatch(m.to_string())
    }
}

/// Fetches every page of the draw (the commitment must stay the same across pages).
pub async fn fetch(api: &str, drop: i64) -> anyhow::Result<Result<PublishedDraw, Failure>> {
    let http = reqwest::Client::new();
    let base = format!("{}/v1/drops/{drop}/fairness", api.trim_end_matches('/'));
    let (mut offset, mut pseudonyms, mut first): (u64, Vec<String>, Option<(String, String)>) =
        (0, Vec::new(), None);
    loop {
        let resp = http.get(format!("{base}?offset={offset}")).send().await?;
        let status = resp.status();
        if !status.is_success() {
            anyhow::bail!("{base} answered {status}: {}", resp.text().await?);
        }
        let v: View = resp.json().await?;
        let (Some(seed), Some(page)) = (v.shuffle_seed, v.draw) else {
            return Ok(Err(Failure::NotRevealed {
                commitment: v.shuffle_commitment,
            }));
        };
        let pair = (v.shuffle_commitment, seed);
        if first.get_or_insert_with(|| pair.clone()) != &pair {
            return Ok(Err(Failure::Mismatch(
                "seed or commitment changed between pages".into(),
            )));
        }
        pseudonyms.extend(page.pseudonyms);
        match page.next_offset {
            Some(next) if next > offset => offset = next,
            Some(_) => return Ok(Err(Failure::Mismatch("paging does not advance".into()))),
            None if pseudonyms.len() as u64 != page.total => {
                return Ok(Err(Failure::Mismatch(format!(
                    "{} pseudonyms listed but the total is {}",
                    pseudonyms.len(),
                    page.total
                ))))
            }
            None => break,
        }
    }
    let (commitment, seed_hex) = first.expect("one page at least");
    Ok(Ok(PublishedDraw {
        commitment,
        seed_hex,
        pseudonyms,
    }))
}

/// Fetches and checks; prints a short report. `Ok(true)` when the draw checks out (and
/// `mine`, if given, is on the list).
pub async fn run(api: &str, drop: i64, mine: Option<&str>) -> anyhow::Result<bool> {
    let checked = match fetch(api, drop).await? {
        Ok(d) => fairness::verify(&d).map_err(Failure::from).map(|v| (v, d)),
        Err(f) => Err(f),
    };
    match checked {
        Ok((v, d)) => {
            println!(
                "drop {drop}: commitment {} matches SHA-256(seed)",
                v.commitment
            );
            println!(
                "drop {drop}: {} pre-queue joiners, in the order the seed gives",
                v.joiners
            );
            if let Some(p) = mine {
                match d.pseudonyms.iter().position(|x| x == p) {
                    Some(i) => println!("drop {drop}: pseudonym {p} drew place {}", i + 1),
                    None => {
                        println!("MISMATCH: pseudonym {p} is not on the list");
                        return Ok(false);
                    }
                }
            }
            println!("OK");
            Ok(true)
        }
        Err(f) => {
            println!("drop {drop}: {f}");
            Ok(false)
        }
    }
}
