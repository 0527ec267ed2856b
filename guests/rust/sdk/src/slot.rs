//! The slot that keeps a process's state between two callbacks.
//!
//! A component instance runs one callback at a time on its one thread, so the state lives in a
//! thread-local cell. The cell is type-erased (`Box<dyn Any>`) because Rust has no generic
//! statics; only [`Adapter<S>`](crate::Adapter) touches it, always with `S::State`, and a
//! component exports exactly one `Adapter`, so a type mismatch is a build mistake that the slot
//! reports rather than a state it can meet.
//!
//! Every misuse (a callback before the state exists, `init` on a live process, re-entry) is
//! an error for the caller to report, never a panic: a panic would trap and kill the process.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;

thread_local! {
    static SLOT: RefCell<Option<Box<dyn Any>>> = const { RefCell::new(None) };
}

/// Why a callback could not reach the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SlotError {
    /// Neither `init` nor `code-change` has given this instance a state yet (or `terminate`
    /// has taken it).
    Empty { callback: &'static str },
    /// `init` or `code-change` on an instance that already has a state.
    Occupied { callback: &'static str },
    /// A callback while another one holds the state: the host broke the one-call-at-a-time
    /// rule.
    Busy { callback: &'static str },
    /// The slot holds a state of another type: two servers exported from one component.
    Foreign { callback: &'static str },
}

impl fmt::Display for SlotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlotError::Empty { callback } => write!(
                f,
                "{callback} called on a process that has no state: init or code-change must come first"
            ),
            SlotError::Occupied { callback } => {
                write!(f, "{callback} called on a process that already has a state")
            }
            SlotError::Busy { callback } => {
                write!(f, "{callback} called while another callback was running")
            }
            SlotError::Foreign { callback } => write!(
                f,
                "{callback}: the state slot holds another server's state (two servers exported from one component?)"
            ),
        }
    }
}

impl From<SlotError> for String {
    fn from(error: SlotError) -> String {
        error.to_string()
    }
}

/// Stores the state that `make` builds, if the slot is empty. `make` runs only then, so a
/// refused `init` has no side effects; its own error is passed through.
pub(crate) fn fill<T: 'static>(
    callback: &'static str,
    make: impl FnOnce() -> Result<T, String>,
) -> Result<(), String> {
    SLOT.with(|slot| {
        let mut slot = slot
            .try_borrow_mut()
            .map_err(|_| SlotError::Busy { callback })?;
        if slot.is_some() {
            return Err(SlotError::Occupied { callback }.into());
        }
        *slot = Some(Box::new(make()?));
        Ok(())
    })
}

/// Runs `f` on the state.
pub(crate) fn with<T: 'static, R>(
    callback: &'static str,
    f: impl FnOnce(&mut T) -> R,
) -> Result<R, SlotError> {
    SLOT.with(|slot| {
        let mut slot = slot
            .try_borrow_mut()
            .map_err(|_| SlotError::Busy { callback })?;
        let state = slot.as_mut().ok_or(SlotError::Empty { callback })?;
        let state = state
            .downcast_mut::<T>()
            .ok_or(SlotError::Foreign { callback })?;
        Ok(f(state))
    })
}

/// Takes the state out, leaving the slot empty.
pub(crate) fn take<T: 'static>(callback: &'static str) -> Result<T, SlotError> {
    SLOT.with(|slot| {
        let mut slot = slot
            .try_borrow_mut()
            .map_err(|_| SlotError::Busy { callback })?;
        let state = slot.take().ok_or(SlotError::Empty { callback })?;
        match state.downcast::<T>() {
            Ok(state) => Ok(*state),
            Err(state) => {
                *slot = Some(state);
                Err(SlotError::Foreign { callback })
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Each test runs on its own thread, so each sees a fresh slot.

    #[test]
    fn a_callback_before_the_state_exists_is_an_error() {
        assert_eq!(
            with::<u32, _>("handle-call", |n| *n),
            Err(SlotError::Empty {
                callback: "handle-call"
            })
        );
        assert_eq!(
            take::<u32>("terminate"),
            Err(SlotError::Empty {
                callback: "terminate"
            })
        );
    }

    #[test]
    fn fill_then_use_then_take() {
        fill("init", || Ok(1_u32)).unwrap();
        assert_eq!(
            with::<u32, _>("handle-call", |n| {
                *n += 1;
                *n
            }),
            Ok(2)
        );
        assert_eq!(take::<u32>("terminate"), Ok(2));
        assert!(with::<u32, _>("handle-call", |n| *n).is_err());
    }

    #[test]
    fn a_second_init_is_refused_without_running() {
        fill("init", || Ok(1_u32)).unwrap();
        let mut ran = false;
        let refused = fill("code-change", || {
            ran = true;
            Ok(2_u32)
        });
        assert_eq!(
            refused,
            Err("code-change called on a process that already has a state".to_owned())
        );
        assert!(!ran);
        assert_eq!(with::<u32, _>("handle-call", |n| *n), Ok(1));
    }

    #[test]
    fn a_failed_init_leaves_the_slot_empty() {
        assert_eq!(
            fill::<u32>("init", || Err("no".into())),
            Err("no".to_owned())
        );
        assert!(fill("init", || Ok(3_u32)).is_ok());
    }

    #[test]
    fn another_type_is_refused_and_kept() {
        fill("init", || Ok(1_u32)).unwrap();
        assert_eq!(
            take::<String>("terminate"),
            Err(SlotError::Foreign {
                callback: "terminate"
            })
        );
        assert_eq!(take::<u32>("terminate"), Ok(1));
    }
}
