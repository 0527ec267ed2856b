//! Two measurements that take turns, round by round, so that the machine's changes of speed
//! fall on both alike.
//!
//! This machine is shared: one second can run at half the speed of the next. Two figures
//! measured one after the other compare the two minutes as much as the two programs; taking
//! turns, round by round, compares rounds measured seconds apart. Each side goes first in
//! every other round, so that neither always runs on the other's heels.

use anyhow::Result;

/// A measurement made in rounds: each round is one turn, and gives a rate.
pub trait TakesTurns {
    /// Measures round `round` (from 0) and returns its rate, per second.
    async fn turn(&mut self, round: usize) -> Result<f64>;
}

/// `rounds` rounds of `a` and of `b`, taking turns: `a` first in even rounds, `b` first in
/// odd ones. Their rates, round by round.
pub async fn alternate(
    a: &mut impl TakesTurns,
    b: &mut impl TakesTurns,
    rounds: usize,
) -> Result<(Vec<f64>, Vec<f64>)> {
    let mut rates = (Vec::with_capacity(rounds), Vec::with_capacity(rounds));
    for round in 0..rounds {
        if round % 2 == 0 {
            rates.0.push(a.turn(round).await?);
            rates.1.push(b.turn(round).await?);
        } else {
            rates.1.push(b.turn(round).await?);
            rates.0.push(a.turn(round).await?);
        }
    }
    Ok(rates)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the order of the turns it was given into a shared log, as `name` and round.
    struct Logged<'l> {
        name: &'static str,
        log: &'l std::cell::RefCell<Vec<(&'static str, usize)>>,
    }

    impl TakesTurns for Logged<'_> {
        async fn turn(&mut self, round: usize) -> Result<f64> {
            self.log.borrow_mut().push((self.name, round));
            Ok(round as f64 + if self.name == "a" { 10.0 } else { 20.0 })
        }
    }

    #[tokio::test]
    async fn each_side_goes_first_in_every_other_round() {
        let log = std::cell::RefCell::new(Vec::new());
        let (mut a, mut b) = (
            Logged {
                name: "a",
                log: &log,
            },
            Logged {
                name: "b",
                log: &log,
            },
        );
        let (a_rates, b_rates) = alternate(&mut a, &mut b, 3).await.expect("turns");
        assert_eq!(a_rates, [10.0, 11.0, 12.0]);
        assert_eq!(b_rates, [20.0, 21.0, 22.0]);
        let order = [("a", 0), ("b", 0), ("b", 1), ("a", 1), ("a", 2), ("b", 2)];
        assert_eq!(log.into_inner(), order);
    }
}
