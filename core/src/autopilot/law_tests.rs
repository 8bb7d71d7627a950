//! Every branch of the control law.

use super::*;

/// Rate 100 in a band of 10..=200, manager's rate 100, both targets held, nothing capped.
fn calm() -> Inputs {
    Inputs {
        rate: 100,
        base: 100,
        min_rate: 10,
        max_rate: 200,
        target_p99_ms: 200,
        target_lag_ms: 5000,
        p99_ms: Some(50),
        lag_ms: 100,
        expired: 0,
        resolved: 1000,
        capped: false,
    }
}

fn to(rate: u32, reason: Reason) -> Option<Decision> {
    Some(Decision { rate, reason })
}

#[test]
fn holds_when_every_target_holds_and_tokens_are_used() {
    assert_eq!(decide(&calm()), None);
}

#[test]
fn a_rate_outside_the_band_is_clamped_first() {
    let i = Inputs {
        rate: 500,
        lag_ms: 60_000,
        ..calm()
    };
    assert_eq!(
        decide(&i),
        to(200, Reason::Bounds),
        "clamping comes before the lag"
    );
    let i = Inputs { rate: 3, ..calm() };
    assert_eq!(decide(&i), to(10, Reason::Bounds));
}

#[test]
fn order_lag_over_target_halves_and_twice_over_goes_to_the_floor() {
    let i = Inputs {
        lag_ms: 6000,
        ..calm()
    };
    assert_eq!(decide(&i), to(50, Reason::OrderLag));
    let i = Inputs {
        lag_ms: 10_000,
        ..calm()
    };
    assert_eq!(decide(&i), to(10, Reason::OrderLag));
    let i = Inputs {
        lag_ms: 6000,
        rate: 15,
        ..calm()
    };
    assert_eq!(decide(&i), to(10, Reason::OrderLag), "never below min_rate");
}

#[test]
fn at_the_floor_a_missed_target_changes_nothing_and_blocks_any_rise() {
    let i = Inputs {
        lag_ms: 60_000,
        rate: 10,
        expired: 500,
        ..calm()
    };
    assert_eq!(decide(&i), None);
    let i = Inputs {
        p99_ms: Some(900),
        rate: 10,
        ..calm()
    };
    assert_eq!(decide(&i), None);
}

#[test]
fn purchase_p99_over_target_backs_off_the_same_way() {
    let i = Inputs {
        p99_ms: Some(300),
        ..calm()
    };
    assert_eq!(decide(&i), to(50, Reason::PurchaseP99));
    let i = Inputs {
        p99_ms: Some(400),
        ..calm()
    };
    assert_eq!(decide(&i), to(10, Reason::PurchaseP99));
    let i = Inputs {
        p99_ms: Some(200),
        ..calm()
    };
    assert_eq!(decide(&i), None, "exactly on target holds");
}

#[test]
fn the_lag_is_checked_before_the_p99() {
    let i = Inputs {
        p99_ms: Some(300),
        lag_ms: 6000,
        ..calm()
    };
    assert_eq!(decide(&i), to(50, Reason::OrderLag));
}

#[test]
fn no_purchases_measured_is_no_p99_signal() {
    let i = Inputs {
        p99_ms: None,
        rate: 50,
        ..calm()
    };
    assert_eq!(decide(&i), to(69, Reason::Recover));
}

#[test]
fn with_targets_held_the_rate_climbs_back_to_the_managers_rate_in_steps() {
    // step = ceil((200 - 10) / 10) = 19
    let i = Inputs { rate: 10, ..calm() };
    assert_eq!(decide(&i), to(29, Reason::Recover));
    let i = Inputs { rate: 95, ..calm() };
    assert_eq!(decide(&i), to(100, Reason::Recover), "never past the goal");
}

#[test]
fn unused_tokens_raise_the_rate_past_the_managers_up_to_max_rate() {
    // half the tokens expire: goal = 100 / 0.5 = 200; half the gap at once
    let i = Inputs {
        expired: 500,
        ..calm()
    };
    assert_eq!(decide(&i), to(150, Reason::NoShows));
    let i = Inputs {
        expired: 500,
        rate: 170,
        ..calm()
    };
    assert_eq!(decide(&i), to(189, Reason::NoShows), "at least a step");
    let i = Inputs {
        expired: 500,
        rate: 190,
        ..calm()
    };
    assert_eq!(decide(&i), to(200, Reason::NoShows));
    let i = Inputs {
        expired: 990,
        rate: 200,
        ..calm()
    };
    assert_eq!(decide(&i), None, "max_rate holds whatever the share");
    // from below the base: additive, a recovery until the base is passed
    let i = Inputs {
        expired: 500,
        rate: 90,
        ..calm()
    };
    assert_eq!(decide(&i), to(109, Reason::NoShows));
}

#[test]
fn too_few_resolved_tokens_say_nothing_about_no_shows() {
    let i = Inputs {
        expired: 10,
        resolved: MIN_RESOLVED - 1,
        ..calm()
    };
    assert_eq!(decide(&i), None);
}

#[test]
fn the_share_counted_is_capped() {
    assert_eq!(goal(10, 1000, 1000), 100);
    assert_eq!(goal(10, 0, 0), 10);
}

#[test]
fn once_no_shows_fall_the_rate_settles_back_down() {
    let i = Inputs {
        rate: 180,
        ..calm()
    };
    assert_eq!(decide(&i), to(161, Reason::NoShows));
    let i = Inputs {
        rate: 110,
        ..calm()
    };
    assert_eq!(decide(&i), to(100, Reason::NoShows));
}

#[test]
fn a_binding_cap_holds_the_rate() {
    let i = Inputs {
        rate: 50,
        capped: true,
        expired: 500,
        ..calm()
    };
    assert_eq!(decide(&i), None);
    let i = Inputs {
        rate: 180,
        capped: true,
        ..calm()
    };
    assert_eq!(decide(&i), None);
    let i = Inputs {
        capped: true,
        lag_ms: 6000,
        ..calm()
    };
    assert_eq!(
        decide(&i),
        to(50, Reason::OrderLag),
        "a missed target still backs off"
    );
}

#[test]
fn the_managers_rate_outside_the_band_is_read_inside_it() {
    let i = Inputs {
        base: 1000,
        rate: 195,
        ..calm()
    };
    assert_eq!(decide(&i), to(200, Reason::Recover));
    let i = Inputs {
        base: 1,
        rate: 12,
        ..calm()
    };
    assert_eq!(decide(&i), to(10, Reason::NoShows));
}

#[test]
fn a_degenerate_band_is_one_rate() {
    let i = Inputs {
        min_rate: 0,
        max_rate: 0,
        rate: 5,
        ..calm()
    };
    assert_eq!(decide(&i), to(1, Reason::Bounds));
    let i = Inputs {
        min_rate: 30,
        max_rate: 20,
        rate: 30,
        ..calm()
    };
    assert_eq!(decide(&i), None, "max below min reads as min");
}

#[test]
fn reasons_have_wire_names() {
    for r in [
        Reason::PurchaseP99,
        Reason::OrderLag,
        Reason::Recover,
        Reason::NoShows,
        Reason::Bounds,
        Reason::Manual,
    ] {
        let wire = serde_json::to_value(r).unwrap();
        assert_eq!(wire, r.as_str());
        assert_eq!(serde_json::from_value::<Reason>(wire).unwrap(), r);
    }
}
