use super::*;

fn seed(i: u32) -> Seed {
    Seed::from_bytes(&Sha256::digest(i.to_be_bytes())).expect("32 bytes")
}

fn names(n: usize) -> Vec<String> {
    let key = [9u8; 32];
    let drop = DropId::new(7).expect("id");
    (0..n)
        .map(|i| pseudonym(&key, drop, UserId(uuid::Uuid::from_u128(i as u128))))
        .collect()
}

fn genuine(n: usize) -> PublishedDraw {
    let s = seed(1);
    PublishedDraw {
        commitment: s.commitment(),
        seed_hex: s.to_hex(),
        pseudonyms: s.order(&names(n)),
    }
}

#[test]
fn commitment_is_hex_sha256_of_the_seed() {
    let s = Seed::from_bytes(&[0u8; 32]).expect("32");
    assert_eq!(
        s.commitment(),
        "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
    );
    assert_eq!(Seed::from_hex(&s.to_hex()), Some(s));
    assert!(Seed::from_hex("abcd").is_none());
    assert!(!format!("{:?}", seed(3)).contains(&seed(3).to_hex()));
}

#[test]
fn scores_are_exact_fractions_in_order_of_the_draw_key() {
    let s = seed(2);
    for p in names(50) {
        let score = s.score(&p);
        assert!((0.0..1.0).contains(&score));
        // exact: the double gives back the 52-bit key
        assert_eq!((score * (1u64 << 52) as f64) as u64, s.draw_key(&p));
        // and survives the text form sent to Redis
        assert_eq!(score.to_string().parse::<f64>().unwrap(), score);
    }
    let order = s.order(&names(50));
    let scores: Vec<f64> = order.iter().map(|p| s.score(p)).collect();
    assert!(scores.windows(2).all(|w| w[0] <= w[1]));
}

#[test]
fn pseudonyms_are_stable_distinct_per_drop_and_well_formed() {
    let key = pseudonym_key(b"a server secret of at least 32 bytes!!");
    let u = UserId(uuid::Uuid::from_u128(42));
    let d1 = DropId::new(1).expect("id");
    let d2 = DropId::new(2).expect("id");
    assert_eq!(pseudonym(&key, d1, u), pseudonym(&key, d1, u));
    assert_ne!(pseudonym(&key, d1, u), pseudonym(&key, d2, u));
    assert!(is_pseudonym(&pseudonym(&key, d1, u)));
    assert!(!is_pseudonym("ABCDEF"));
}

#[test]
fn verify_accepts_the_genuine_draw() {
    let d = genuine(10);
    let ok = verify(&d).expect("genuine");
    assert_eq!(ok.joiners, 10);
    assert_eq!(ok.commitment, d.commitment);
    assert!(verify(&PublishedDraw {
        pseudonyms: vec![],
        ..d
    })
    .is_ok());
}

#[test]
fn verify_rejects_a_swapped_list() {
    let mut d = genuine(10);
    d.pseudonyms.swap(3, 4);
    match verify(&d) {
        Err(Mismatch::OutOfOrder { index, .. }) => assert_eq!(index, 3),
        other => panic!("{other:?}"),
    }
}

#[test]
fn verify_rejects_a_tampered_seed_or_commitment() {
    let mut d = genuine(10);
    d.seed_hex = seed(5).to_hex();
    assert!(matches!(verify(&d), Err(Mismatch::BadCommitment { .. })));
    let mut d = genuine(10);
    d.commitment = seed(5).commitment();
    assert!(matches!(verify(&d), Err(Mismatch::BadCommitment { .. })));
    let mut d = genuine(10);
    d.seed_hex = "zz".into();
    assert_eq!(verify(&d), Err(Mismatch::BadSeed));
    // a seed that matches its commitment but did not make the list
    let mut d = genuine(10);
    d.seed_hex = seed(5).to_hex();
    d.commitment = seed(5).commitment();
    assert!(matches!(verify(&d), Err(Mismatch::OutOfOrder { .. })));
}

#[test]
fn verify_rejects_duplicates_and_malformed_entries() {
    let mut d = genuine(4);
    d.pseudonyms.push(d.pseudonyms[0].clone());
    assert!(matches!(verify(&d), Err(Mismatch::Duplicate { .. })));
    let mut d = genuine(4);
    d.pseudonyms[2] = "not-a-pseudonym".into();
    assert_eq!(verify(&d), Err(Mismatch::BadPseudonym { index: 2 }));
}

/// Who comes first over 200 drops of the same 10 buyers: chi-square against uniform
/// (9 degrees of freedom; 40 is beyond the 0.001 % tail, so only a real bias fails).
#[test]
fn the_first_place_is_uniform_over_many_drops() {
    let buyers = names(10);
    let mut firsts = [0u32; 10];
    for drop in 0..200 {
        let first = seed(1000 + drop).order(&buyers)[0].clone();
        let i = buyers.iter().position(|p| *p == first).expect("listed");
        firsts[i] += 1;
    }
    let expected = 20.0;
    let chi2: f64 = firsts
        .iter()
        .map(|&o| (f64::from(o) - expected).powi(2) / expected)
        .sum();
    assert!(chi2 < 40.0, "chi-square {chi2} over {firsts:?}");
    assert_eq!(firsts.iter().sum::<u32>(), 200);
}
