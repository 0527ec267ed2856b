//! The load under which the tail is measured (`scenarios::latency_under_load`): 4 clients,
//! each putting its own counter into one process, one call after another, and checking that
//! the previous value comes back; each call's latency is a sample, and a call that fails or
//! reads back the wrong value is lost, with its cause kept.

use std::time::{Duration, Instant};

use anyhow::Result;
use hotswap::{Node, ProcessRef};

use crate::scenarios::{CALL_TIMEOUT, put};
use hotswap_bench::stats::{Metric, sample_buffer};

/// How many clients a load has.
const CLIENTS: usize = 4;

/// The samples each client has room for, per second of the run: nearly three times the most
/// one has made (about 72,000 a second, 360,000 in a 5 s run).
const SAMPLES_PER_CLIENT_SECOND: usize = 200_000;

/// The process a load's clients call.
#[derive(Clone)]
pub struct Process {
    pub node: Node,
    pub target: ProcessRef,
}

impl Process {
    /// One call: its reply, or why it failed.
    async fn call(&self, request: Vec<u8>) -> Result<Vec<u8>, String> {
        let reply = self.node.call(&self.target, request, CALL_TIMEOUT).await;
        reply.map_err(|error| error.to_string())
    }
}

/// What the clients saw.
pub struct Served {
    /// Every call's latency.
    pub samples: Vec<Duration>,
    /// Calls that failed, or whose reply was not the previous value.
    pub lost: u64,
    /// Why the first lost call was lost.
    pub first_loss: Option<String>,
}

impl Served {
    /// The latency figure `name` of these calls, with how many were lost; the first loss's
    /// cause, if any, is printed, for a run that lost calls must say why.
    pub fn metric(mut self, name: &str) -> Metric {
        if let Some(loss) = &self.first_loss {
            eprintln!("  {name}: {} calls lost; the first: {loss}", self.lost);
        }
        let mut metric = Metric::latency(name, &mut self.samples);
        metric.lost = Some(self.lost);
        metric
    }
}

/// The clients of a load, at work.
pub struct LoadClients {
    clients: Vec<tokio::task::JoinHandle<Served>>,
    /// When the clients make their last call.
    pub deadline: Instant,
}

impl LoadClients {
    /// Starts the clients, calling `process` for `duration` from now.
    pub fn start(process: &Process, duration: Duration) -> Self {
        // Made before the clock starts: writing a buffer's pages takes milliseconds.
        let capacity = SAMPLES_PER_CLIENT_SECOND * duration.as_secs().max(1) as usize;
        let buffers: Vec<_> = (0..CLIENTS).map(|_| sample_buffer(capacity)).collect();
        let deadline = Instant::now() + duration;
        let clients = buffers
            .into_iter()
            .enumerate()
            .map(|(client, samples)| tokio::spawn(run(client, process.clone(), samples, deadline)))
            .collect();
        Self { clients, deadline }
    }

    /// What all the clients saw, once all have ended.
    pub async fn finish(self) -> Result<Served> {
        let mut all = Served {
            samples: Vec::new(),
            lost: 0,
            first_loss: None,
        };
        for client in self.clients {
            let served = client.await?;
            all.samples.extend(served.samples);
            all.lost += served.lost;
            all.first_loss = all.first_loss.or(served.first_loss);
        }
        Ok(all)
    }
}

/// Client number `client`: puts its counter into `process` until `deadline`, recording each
/// call's latency into `samples`.
async fn run(client: usize, process: Process, samples: Vec<Duration>, deadline: Instant) -> Served {
    let key = format!("c{client}");
    let mut served = Served {
        samples,
        lost: 0,
        first_loss: None,
    };
    let mut n = 0u64;
    while Instant::now() < deadline {
        let t = Instant::now();
        let reply = process.call(put(&key, n)).await;
        served.samples.push(t.elapsed());
        let expected = match n {
            0 => "null".to_string(),
            n => (n - 1).to_string(),
        };
        let loss = match reply {
            Ok(reply) if reply == expected.as_bytes() => None,
            Ok(reply) => Some(format!(
                "client {client}'s put {n} read back {:?}, not {expected}",
                String::from_utf8_lossy(&reply)
            )),
            Err(error) => Some(format!("client {client}'s put {n}: {error}")),
        };
        if let Some(loss) = loss {
            served.lost += 1;
            served.first_loss.get_or_insert(loss);
        }
        n += 1;
    }
    served
}
