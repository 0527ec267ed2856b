//! Human-readable forms of [`Change`], the direction of a code change, for errors and logs.

use std::fmt;

use crate::Change;

impl Change {
    /// The version being left: the old one on an upgrade, the newer one on a downgrade.
    pub fn vsn(&self) -> &str {
        match self {
            Change::Upgrade(vsn) | Change::Downgrade(vsn) => vsn,
        }
    }
}

/// `upgrade from vsn "0"` or `downgrade from vsn "2"`.
impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Upgrade(vsn) => write!(f, "upgrade from vsn {vsn:?}"),
            Change::Downgrade(vsn) => write!(f, "downgrade from vsn {vsn:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_direction_and_the_version_left() {
        let up = Change::Upgrade("0".into());
        let down = Change::Downgrade("2".into());
        assert_eq!(up.to_string(), r#"upgrade from vsn "0""#);
        assert_eq!(down.to_string(), r#"downgrade from vsn "2""#);
        assert_eq!(up.vsn(), "0");
        assert_eq!(down.vsn(), "2");
    }
}
