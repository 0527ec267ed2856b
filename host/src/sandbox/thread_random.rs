//! The randomness a guest gets from `wasi:random`: the host thread's generator, holding no
//! state in the process.
//!
//! `wasmtime-wasi` gives every context a generator of its own by default: a seeded ChaCha
//! state (320 bytes) and a small one for the insecure interface (32 bytes), each behind a
//! `Box`. With 100,000 processes that is 35 MB kept only to be ready for the rare guest
//! that asks for a random number. [`ThreadRandom`] has no size: each request draws from
//! `rand`'s thread-local generator, a ChaCha12 CSPRNG seeded from the operating system and
//! reseeded as it goes, which is what `wasmtime-wasi` seeds its own from anyway. What one
//! process draws tells it nothing about what another drew, as with any CSPRNG.

use std::convert::Infallible;

use rand::{Rng as _, TryCryptoRng, TryRng};

/// A generator with no state: every call draws from the current thread's CSPRNG.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ThreadRandom;

impl TryRng for ThreadRandom {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(rand::rng().next_u32())
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        Ok(rand::rng().next_u64())
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        rand::rng().fill_bytes(dst);
        Ok(())
    }
}

/// The thread generator is a CSPRNG, so this is one too: it may serve `wasi:random/random`.
impl TryCryptoRng for ThreadRandom {}

#[cfg(test)]
mod tests {
    use rand::Rng as _;

    use super::*;

    #[test]
    fn takes_no_room_and_draws_different_bytes_each_time() {
        assert_eq!(std::mem::size_of::<ThreadRandom>(), 0);
        let boxed: Box<dyn rand::Rng + Send> = Box::new(ThreadRandom);
        assert_eq!(std::mem::size_of_val(&*boxed), 0);
        let (mut first, mut second) = ([0u8; 32], [0u8; 32]);
        let mut random = ThreadRandom;
        random.fill_bytes(&mut first);
        random.fill_bytes(&mut second);
        assert_ne!(first, second, "two draws of 256 bits were equal");
        assert_ne!(random.next_u64(), random.next_u64());
    }
}
