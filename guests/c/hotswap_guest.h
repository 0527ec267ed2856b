/* The C guest helper of hotswap: fill in an hs_server with your callbacks, export it with
 * HS_EXPORT_SERVER, and the build (scripts/build-polyglot-guests.sh) makes it a component of the
 * `hotswap:otp/process` world that a hotswap node spawns and hot swaps, like a Rust guest.
 *
 * It is the C twin of the Rust SDK (guests/rust/sdk). The node calls the `server` exports one at
 * a time; hotswap_guest.c implements them over the bindings that `wit-bindgen c` generates from
 * wit/otp, keeps the state between calls (a JSON value, see json.h), writes it as JSON for a hot
 * swap and reads it back, and frees what crosses the boundary. A guest writes only callbacks:
 *
 *     static char *init(hs_bytes args, hs_json **state) {
 *         *state = hs_json_int(0);
 *         return NULL;                                   // NULL: ok; else an error (hs_format)
 *     }
 *     static char *handle_call(hs_json *state, hs_bytes request, hs_pid caller, hs_bytes *reply) {
 *         state->as.i += 1;
 *         return hs_reply_json(reply, state);
 *     }
 *     static const hs_server counter = {.vsn = "1", .init = init, .handle_call = handle_call};
 *     HS_EXPORT_SERVER(counter)
 *
 * Return an error (a malloc'd message, from hs_format) for a caller's mistake: the caller gets it
 * and the process lives on. hs_trap() (or any crash) traps, and a trap kills the process. */
#ifndef HOTSWAP_GUEST_H
#define HOTSWAP_GUEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json.h"

/* A pid: unique on its node, never reused, stable across hot swaps. 0 is "outside the node". */
typedef uint64_t hs_pid;

/* Bytes. Callbacks get them borrowed (valid until the callback returns); replies they fill in
 * must be malloc'd (hs_reply_json does it), the helper frees them. */
typedef struct hs_bytes {
    uint8_t *ptr;
    size_t len;
} hs_bytes;

/* Which way a code change goes, and the version being left. */
typedef struct hs_change {
    bool downgrade;
    hs_bytes vsn; /* not NUL-terminated */
} hs_change;

/* The callbacks of a gen_server. Only vsn, init and handle_call are required; NULL picks the
 * default, which suits a server whose state is JSON and which ignores casts and info messages.
 * Every `char *` returned is NULL for success, or a malloc'd error message (hs_format). */
typedef struct hs_server {
    /* This version's name, as the node reports it ("1", "c-1"). */
    const char *vsn;
    /* Builds the state of a freshly spawned process from its spawn arguments into *state. An
     * error aborts the spawn. Not called on a hot swap. */
    char *(*init)(hs_bytes args, hs_json **state);
    /* Answers a request from caller (0 when outside the node) into *reply (malloc'd). An error
     * is a reply too: the caller gets it and the process lives on. */
    char *(*handle_call)(hs_json *state, hs_bytes request, hs_pid caller, hs_bytes *reply);
    /* An asynchronous request. Default: logged at warn and ignored. */
    void (*handle_cast)(hs_json *state, hs_bytes message);
    /* Any other message (send, timers). Default: logged at warn and ignored. */
    void (*handle_info)(hs_json *state, hs_bytes message);
    /* The process is stopped on purpose; the helper frees the state afterwards. Default: nothing. */
    void (*terminate)(hs_json *state, hs_bytes reason);
    /* Adopts state, written by the version being left, into *new_state, on a fresh instance
     * instead of init. An error refuses the change: the old version serves on, untouched.
     * Default: any JSON state, as it is. */
    char *(*code_change)(hs_change change, hs_bytes state, hs_bytes extra, hs_json **new_state);
} hs_server;

/* Exports `server` (an hs_server variable) as this component's process. Once per component. */
#define HS_EXPORT_SERVER(server) const hs_server *const hs_exported_server = &(server);

/* A malloc'd printf-formatted message: an error to return, a line to log. */
char *hs_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Encodes value as the reply (malloc'd JSON bytes); returns NULL, or an error if out of memory. */
char *hs_reply_json(hs_bytes *reply, const hs_json *value);

/* Parses bytes as JSON; NULL with *error set (`not JSON: ...`, malloc'd) when they are not. */
hs_json *hs_parse(hs_bytes bytes, char **error);

/* The error of a refused code change, worded as the Rust SDK words it:
 * `upgrade from vsn "0" to vsn "c-1": <why>`. Malloc'd. */
char *hs_code_change_error(hs_change change, const char *why);

/* bytes as text for a log line (cut after 200 characters), malloc'd. */
char *hs_describe(hs_bytes bytes);

/* The host API (`interface runtime`). */
typedef enum hs_level { HS_TRACE, HS_DEBUG, HS_INFO, HS_WARN, HS_ERROR } hs_level;

/* Writes a printf-formatted line to the node's log, which tags it with pid, module and vsn. */
void hs_log(hs_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define hs_trace(...) hs_log(HS_TRACE, __VA_ARGS__)
#define hs_debug(...) hs_log(HS_DEBUG, __VA_ARGS__)
#define hs_info(...) hs_log(HS_INFO, __VA_ARGS__)
#define hs_warn(...) hs_log(HS_WARN, __VA_ARGS__)
#define hs_error(...) hs_log(HS_ERROR, __VA_ARGS__)

hs_pid hs_self_pid(void);
/* The pid registered under name into *pid; false if none. */
bool hs_whereis(const char *name, hs_pid *pid);
/* Sends message to to's handle_info. NULL, or an error (malloc'd) if to is gone or full. */
char *hs_send(hs_pid to, hs_bytes message);
/* Sends message to to after millis ms; returns a timer for hs_cancel_timer. */
uint64_t hs_send_after(hs_pid to, hs_bytes message, uint64_t millis);
/* True if the timer was pending and will now never fire. */
bool hs_cancel_timer(uint64_t timer);

/* Traps: the process dies at once (a Wasm `unreachable`), as a panic does in Rust. */
#define hs_trap() __builtin_trap()

#endif
