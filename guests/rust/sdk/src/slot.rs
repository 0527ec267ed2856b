//! [`Slot`]: where a process's state lives between two callbacks.
//!
//! A component instance runs one callback at a time on its one thread, so the state lives in a
//! thread-local cell. [`export_process!`](crate::export_process) declares that cell for the
//! server it exports, typed with its state: Rust has no generic statics, and a type-erased
//! cell (`Box<dyn Any>`) would put the state on the heap. Held in place, a state that holds
//! nothing on the heap (kv's empty map) costs no allocation: a process spawned without
//! arguments (whose `init` allocates nothing else) never wakes its guest's allocator, and the
//! heap's first and last pages (the allocator's footer) stay untouched, about 8 KB of every
//! idle process. The cell is static memory: a state type that is large in itself (a big
//! array rather than a vector) takes that room in every instance, so box it in the state.
//!
//! Every misuse (a callback before the state exists, `init` on a live process, re-entry) is
//! an error for the caller to report, never a panic: a panic would trap and kill the process.

use std::cell::RefCell;
use std::fmt;

/// The cell that holds a process's state, declared by
/// [`export_process!`](crate::export_process). Not for direct use.
pub struct Slot<T>(RefCell<Option<T>>);

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
        }
    }
}

impl From<SlotError> for String {
    fn from(error: SlotError) -> String {
        error.to_string()
    }
}

impl<T> Default for Slot<T> {
    fn default() -> Slot<T> {
        Slot::new()
    }
}

impl<T> Slot<T> {
    /// An empty slot: no state until `init` or `code-change` fills it.
    pub const fn new() -> Slot<T> {
        Slot(RefCell::new(None))
    }

    /// Stores the state that `make` builds, if the slot is empty. `make` runs only then, so a
    /// refused `init` has no side effects; its own error is passed through.
    pub(crate) fn fill(
        &self,
        callback: &'static str,
        make: impl FnOnce() -> Result<T, String>,
    ) -> Result<(), String> {
        let mut slot = self
            .0
            .try_borrow_mut()
            .map_err(|_| SlotError::Busy { callback })?;
        if slot.is_some() {
            return Err(SlotError::Occupied { callback }.into());
        }
        *slot = Some(make()?);
        Ok(())
    }

    /// Runs `f` on the state.
    pub(crate) fn with<R>(
        &self,
        callback: &'static str,
        f: impl FnOnce(&mut T) -> R,
    ) -> Result<R, SlotError> {
        let mut slot = self
            .0
            .try_borrow_mut()
            .map_err(|_| SlotError::Busy { callback })?;
        let state = slot.as_mut().ok_or(SlotError::Empty { callback })?;
        Ok(f(state))
    }

    /// Takes the state out, leaving the slot empty.
    pub(crate) fn take(&self, callback: &'static str) -> Result<T, SlotError> {
        let mut slot = self
            .0
            .try_borrow_mut()
            .map_err(|_| SlotError::Busy { callback })?;
        slot.take().ok_or(SlotError::Empty { callback })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_before_the_state_exists_is_an_error() {
        let slot = Slot::<u32>::new();
        assert_eq!(
            slot.with("handle-call", |n| *n),
            Err(SlotError::Empty {
                callback: "handle-call"
            })
        );
        assert_eq!(
            slot.take("terminate"),
            Err(SlotError::Empty {
                callback: "terminate"
            })
        );
    }

    #[test]
    fn fill_then_use_then_take() {
        let slot = Slot::new();
        slot.fill("init", || Ok(1_u32)).unwrap();
        assert_eq!(
            slot.with("handle-call", |n| {
                *n += 1;
                *n
            }),
            Ok(2)
        );
        assert_eq!(slot.take("terminate"), Ok(2));
        assert!(slot.with("handle-call", |n| *n).is_err());
    }

    #[test]
    fn a_second_init_is_refused_without_running() {
        let slot = Slot::new();
        slot.fill("init", || Ok(1_u32)).unwrap();
        let mut ran = false;
        let refused = slot.fill("code-change", || {
            ran = true;
            Ok(2_u32)
        });
        assert_eq!(
            refused,
            Err("code-change called on a process that already has a state".to_owned())
        );
        assert!(!ran);
        assert_eq!(slot.with("handle-call", |n| *n), Ok(1));
    }

    #[test]
    fn a_failed_init_leaves_the_slot_empty() {
        let slot = Slot::<u32>::new();
        assert_eq!(slot.fill("init", || Err("no".into())), Err("no".to_owned()));
        assert!(slot.fill("init", || Ok(3_u32)).is_ok());
    }

    #[test]
    fn a_callback_inside_another_is_refused() {
        let slot = Slot::new();
        slot.fill("init", || Ok(1_u32)).unwrap();
        let inner = slot.with("handle-call", |_| slot.with("handle-cast", |n| *n));
        assert_eq!(
            inner,
            Ok(Err(SlotError::Busy {
                callback: "handle-cast"
            }))
        );
        let refill = slot.with("handle-call", |_| slot.fill("code-change", || Ok(2)));
        assert_eq!(
            refill,
            Ok(Err(
                "code-change called while another callback was running".to_owned()
            ))
        );
    }
}
