//! Who holds a process's user messages back: an operator (`sys:suspend`) or a release.
//!
//! The two holds are kept apart so that each lets go only of its own: a release that ends
//! does not resume a process an operator had suspended before it, and an operator's resume
//! does not let a message through between a release's stage and its commit, where it would
//! change a state the staged instance has already adopted, and be lost at the commit.

/// Who suspended a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Suspender {
    /// `suspend` and `resume`, from the API or the CLI.
    Operator,
    /// A release, from its suspend to its commit or abort.
    Release,
}

/// The holds on a process's user messages; they are served only when there is none.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Holds {
    operator: bool,
    release: bool,
}

impl Holds {
    pub fn suspend(&mut self, by: Suspender) {
        *self.of(by) = true;
    }

    pub fn resume(&mut self, by: Suspender) {
        *self.of(by) = false;
    }

    /// Whether anyone holds the messages back.
    pub fn any(&self) -> bool {
        self.operator || self.release
    }

    fn of(&mut self, by: Suspender) -> &mut bool {
        match by {
            Suspender::Operator => &mut self.operator,
            Suspender::Release => &mut self.release,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_lets_go_only_of_its_own_hold() {
        let mut holds = Holds::default();
        assert!(!holds.any());
        holds.suspend(Suspender::Operator);
        holds.suspend(Suspender::Release);
        holds.resume(Suspender::Release);
        assert!(holds.any(), "the operator's hold outlives the release");
        holds.suspend(Suspender::Release);
        holds.resume(Suspender::Operator);
        assert!(
            holds.any(),
            "the release's hold outlives the operator's resume"
        );
        holds.resume(Suspender::Release);
        assert!(!holds.any());
    }
}
