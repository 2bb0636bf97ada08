//! Debian version order: a table whose every row is also checked with `dpkg --compare-versions`,
//! so the table itself cannot drift from dpkg.

use std::cmp::Ordering;
use std::process::Command;

use debversion::Version;

const TABLE: &[(&str, Ordering, &str)] = &[
    ("1.0", Ordering::Less, "1.1"),
    ("1.0", Ordering::Equal, "1.0-0"),
    ("1.0~rc1", Ordering::Less, "1.0"),
    ("1.0~~", Ordering::Less, "1.0~"),
    ("1.0~", Ordering::Less, "1.0"),
    ("1.0", Ordering::Less, "1.0+b1"),
    ("1.0-1", Ordering::Less, "1.0-1+b1"),
    ("1.0-1+deb13u1", Ordering::Greater, "1.0-1"),
    ("1:0.1", Ordering::Greater, "9.9"),
    ("0:1.0", Ordering::Equal, "1.0"),
    ("2:1.0", Ordering::Greater, "1:9.9"),
    ("1.0a", Ordering::Greater, "1.0"),
    ("1.0a", Ordering::Less, "1.0b"),
    ("1.0-a", Ordering::Less, "1.0-b"),
    ("1.10", Ordering::Greater, "1.9"),
    ("1.001", Ordering::Equal, "1.1"),
    ("1.0.0", Ordering::Greater, "1.0"),
    ("1.0+dfsg", Ordering::Greater, "1.0"),
    ("1.0+dfsg-1", Ordering::Less, "1.0.1-1"),
    ("1:1.37.0-6+b9", Ordering::Greater, "1:1.37.0-6"),
    ("2.41-12+deb13u4", Ordering::Greater, "2.41-12"),
    ("3.5.7-1~deb13u2", Ordering::Less, "3.5.7-1"),
    ("3.5.7-1~deb13u2", Ordering::Greater, "3.5.7-1~deb13u1"),
    (
        "1:1.3.dfsg+really1.3.1-1+b1",
        Ordering::Greater,
        "1:1.3.dfsg-3",
    ),
    ("2026c-0+deb13u1", Ordering::Less, "2026f-0+deb13u1"),
    ("9", Ordering::Less, "10"),
    ("a", Ordering::Greater, "A"),
    ("1.0-1.1", Ordering::Greater, "1.0-1"),
    ("1.2.3-4ubuntu1", Ordering::Greater, "1.2.3-4"),
    ("0.0~git20240101", Ordering::Less, "0.0"),
];

fn op(o: Ordering) -> &'static str {
    match o {
        Ordering::Less => "lt",
        Ordering::Equal => "eq",
        Ordering::Greater => "gt",
    }
}

#[test]
fn version_order_matches_the_table() {
    for (a, expected, b) in TABLE {
        let (va, vb): (Version, Version) = (a.parse().unwrap(), b.parse().unwrap());
        assert_eq!(va.cmp(&vb), *expected, "{a} vs {b}");
        assert_eq!(vb.cmp(&va), expected.reverse(), "{b} vs {a}");
    }
}

#[test]
fn the_table_agrees_with_dpkg() {
    for (a, expected, b) in TABLE {
        let status = Command::new("dpkg")
            .args(["--compare-versions", a, op(*expected), b])
            .status()
            .expect("dpkg is installed on Debian; install it to run this test");
        assert!(
            status.success(),
            "dpkg disagrees: {a} {} {b}",
            op(*expected)
        );
    }
}
