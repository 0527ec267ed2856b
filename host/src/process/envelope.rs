//! [`Envelope`]: one user message as it waits in a mailbox: a call with its reply channel,
//! a cast, or an info message.

use tokio::sync::oneshot;

use crate::error::CallError;
use crate::process::Pid;

/// One user message. Per sender, messages are served in the order they were sent.
pub(crate) enum Envelope {
    /// A request that expects a reply (`handle-call`).
    Call {
        request: Vec<u8>,
        caller: Pid,
        reply: oneshot::Sender<Result<Vec<u8>, CallError>>,
    },
    /// A request without a reply (`handle-cast`).
    Cast(Vec<u8>),
    /// Anything else: a `send` from another process, a timer (`handle-info`).
    Info(Vec<u8>),
}

impl Envelope {
    /// Drops a message that the process, gone for `reason`, will never serve: a caller
    /// gets the reason as its reply; casts and infos have nobody to tell.
    pub fn refuse(self, pid: Pid, reason: &crate::process::ExitReason) {
        if let Self::Call { reply, .. } = self {
            let _ = reply.send(Err(CallError::Exited {
                pid,
                reason: reason.clone(),
            }));
        }
    }
}
