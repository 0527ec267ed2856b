//! Hostile fixture, vsn "hostile-env": a guest that reads its environment variables and
//! command-line arguments (`wasi:cli/environment`). It models a plugin that looks for secrets
//! the host process holds in its environment (tokens, keys, paths).
//!
//! | call              | reply                                                  |
//! |-------------------|--------------------------------------------------------|
//! | `{"op":"ping"}`   | `"pong"`                                               |
//! | `{"op":"env"}`    | every variable it can see, as a JSON object, `{}` if none |
//! | `{"op":"args"}`   | its arguments, as a JSON array, `[]` if none           |
//!
//! Names or values that are not UTF-8 are shown with their invalid sequences replaced.
//!
//! The host grants no environment by default: then `env` must reply `{}` and `args` `[]`,
//! whatever the node's own environment holds. With variables granted, exactly those appear.

use std::collections::BTreeMap;

use hotswap_guest::{GenServer, Pid, json};
use serde::Deserialize;

/// A request, tagged by its `op` field.
#[derive(Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Request {
    Ping,
    Env,
    Args,
}

/// The environment-probing server. It has no state.
struct Env;

impl GenServer for Env {
    type State = ();
    const VSN: &'static str = "hostile-env";

    fn init(_args: &[u8]) -> Result<(), String> {
        Ok(())
    }

    fn handle_call(_state: &mut (), request: &[u8], _caller: Pid) -> Result<Vec<u8>, String> {
        let request: Request =
            json::decode(request).map_err(|why| format!("unknown request: {why}"))?;
        match request {
            Request::Ping => json::encode("pong"),
            Request::Env => {
                let vars: BTreeMap<String, String> = std::env::vars_os()
                    .map(|(name, value)| {
                        let name = name.to_string_lossy().into_owned();
                        (name, value.to_string_lossy().into_owned())
                    })
                    .collect();
                json::encode(&vars)
            }
            Request::Args => {
                let args: Vec<String> = std::env::args_os()
                    .map(|arg| arg.to_string_lossy().into_owned())
                    .collect();
                json::encode(&args)
            }
        }
    }
}

hotswap_guest::export_process!(Env);
