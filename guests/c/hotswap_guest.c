/* The exports of the `hotswap:otp/server` interface, written once for every C guest over the
 * bindings that `wit-bindgen c` generates (process.h, made at build time from wit/otp), and the
 * host API wrapped for hotswap_guest.h.
 *
 * It keeps the state slot (one JSON value, or none before init / code-change and after
 * terminate), refuses a callback that comes out of order with an error rather than a crash,
 * turns the state into JSON for snapshot, and frees what the canonical ABI hands over: the
 * arguments of an export belong to the export, and what it returns is freed by the generated
 * post-return functions, so it must be malloc'd. */
#include "hotswap_guest.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "process.h"

/* The guest's callbacks: HS_EXPORT_SERVER defines this in the guest's file. */
extern const hs_server *const hs_exported_server;

/* The state between two callbacks; meaningful only while `started`. */
static hs_json *state;
static bool started;

/* ---- helpers of hotswap_guest.h ---- */

char *hs_format(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    char *text = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (!text) hs_trap(); /* out of memory: nothing sensible is left to do */
    va_start(args, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, args);
    va_end(args);
    return text;
}

char *hs_reply_json(hs_bytes *reply, const hs_json *value) {
    size_t len = 0;
    char *text = hs_json_encode(value, &len);
    if (!text) return hs_format("cannot encode as JSON: out of memory");
    *reply = (hs_bytes){(uint8_t *)text, len};
    return NULL;
}

hs_json *hs_parse(hs_bytes bytes, char **error) { return hs_json_parse(bytes.ptr, bytes.len, error); }

/* bytes as valid UTF-8 (what a WIT string must be: the host refuses anything else), invalid
 * sequences replaced by U+FFFD, cut after `limit` characters. Malloc'd, NUL-terminated. */
static char *lossy(const uint8_t *bytes, size_t len, size_t limit, size_t *out_len, bool *cut) {
    char *out = malloc(len * 3 + 1); /* an invalid byte becomes 3 bytes at most */
    if (!out) hs_trap();
    const uint8_t *at = bytes, *end = bytes + len;
    size_t n = 0, chars = 0;
    while (at < end && chars < limit) {
        size_t width = hs_utf8_char_len(at, end);
        if (width) {
            memcpy(out + n, at, width);
            n += width;
            at += width;
        } else {
            memcpy(out + n, "\xef\xbf\xbd", 3);
            n += 3;
            at += 1;
        }
        chars++;
    }
    out[n] = '\0';
    if (out_len) *out_len = n;
    if (cut) *cut = at < end;
    return out;
}

char *hs_describe(hs_bytes bytes) {
    bool cut = false;
    char *text = lossy(bytes.ptr, bytes.len, 200, NULL, &cut);
    if (!cut) return text;
    char *described = hs_format("%s... (%zu bytes)", text, bytes.len);
    free(text);
    return described;
}

/* text as a JSON string, the way Rust's {:?} shows a plain version string. */
static char *quoted(const char *text, size_t len) {
    hs_json *string = hs_json_string_n(text, len);
    char *out = string ? hs_json_encode(string, NULL) : NULL;
    hs_json_free(string);
    return out ? out : hs_format("?");
}

char *hs_code_change_error(hs_change change, const char *why) {
    char *from = quoted((const char *)change.vsn.ptr, change.vsn.len);
    char *to = quoted(hs_exported_server->vsn, strlen(hs_exported_server->vsn));
    char *error = hs_format("%s from vsn %s to vsn %s: %s", change.downgrade ? "downgrade" : "upgrade", from, to, why);
    free(from);
    free(to);
    return error;
}

/* ---- the host API ---- */

void hs_log(hs_level level, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    char *text = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (!text) return;
    va_start(args, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, args);
    va_end(args);
    size_t len = 0;
    char *valid = lossy((const uint8_t *)text, strlen(text), SIZE_MAX, &len, NULL);
    process_string_t message = {(uint8_t *)valid, len};
    hotswap_otp_runtime_log((hotswap_otp_runtime_level_t)level, &message);
    free(valid);
    free(text);
}

hs_pid hs_self_pid(void) { return hotswap_otp_runtime_self_pid(); }

bool hs_whereis(const char *name, hs_pid *pid) {
    process_string_t text = {(uint8_t *)name, strlen(name)};
    return hotswap_otp_runtime_whereis(&text, pid);
}

char *hs_send(hs_pid to, hs_bytes message) {
    process_list_u8_t list = {message.ptr, message.len};
    process_string_t err;
    if (hotswap_otp_runtime_send(to, &list, &err)) return NULL;
    char *error = hs_format("%.*s", (int)err.len, (const char *)err.ptr);
    process_string_free(&err);
    return error;
}

uint64_t hs_send_after(hs_pid to, hs_bytes message, uint64_t millis) {
    process_list_u8_t list = {message.ptr, message.len};
    return hotswap_otp_runtime_send_after(to, &list, millis);
}

bool hs_cancel_timer(uint64_t timer) { return hotswap_otp_runtime_cancel_timer(timer); }

/* ---- the exports ---- */

/* Hands an error message to the ABI (which frees it after the call), as valid UTF-8. */
static bool refuse(process_string_t *err, char *message) {
    size_t len = 0;
    char *valid = lossy((const uint8_t *)message, strlen(message), SIZE_MAX, &len, NULL);
    free(message);
    *err = (process_string_t){(uint8_t *)valid, len};
    return false;
}

static char *no_state(const char *callback) {
    return hs_format("%s called on a process that has no state: init or code-change must come first", callback);
}

static hs_bytes bytes_of(const process_list_u8_t *list) { return (hs_bytes){list->ptr, list->len}; }

bool exports_hotswap_otp_server_init(process_list_u8_t *args, process_string_t *err) {
    char *error = NULL;
    if (started) {
        error = hs_format("init called on a process that already has a state");
    } else if (!hs_exported_server->init) {
        error = hs_format("this server has no init callback");
    } else {
        hs_json *fresh = NULL;
        error = hs_exported_server->init(bytes_of(args), &fresh);
        if (!error && !fresh) error = hs_format("init gave no state");
        if (error) {
            hs_json_free(fresh);
        } else {
            state = fresh;
            started = true;
        }
    }
    process_list_u8_free(args);
    return error ? refuse(err, error) : true;
}

bool exports_hotswap_otp_server_handle_call(process_list_u8_t *request, exports_hotswap_otp_server_pid_t caller,
                                            process_list_u8_t *ret, process_string_t *err) {
    char *error;
    hs_bytes reply = {NULL, 0};
    if (!started) error = no_state("handle-call");
    else if (!hs_exported_server->handle_call) error = hs_format("this server answers no calls");
    else error = hs_exported_server->handle_call(state, bytes_of(request), caller, &reply);
    process_list_u8_free(request);
    if (error) {
        free(reply.ptr);
        return refuse(err, error);
    }
    *ret = (process_list_u8_t){reply.ptr, reply.len};
    return true;
}

static void handle_message(const char *kind, void (*callback)(hs_json *, hs_bytes), process_list_u8_t *message) {
    if (!started) {
        hs_error("handle-%s called on a process that has no state", kind);
    } else if (callback) {
        callback(state, bytes_of(message));
    } else {
        char *text = hs_describe(bytes_of(message));
        hs_warn("ignoring %s: %s", strcmp(kind, "cast") ? "an info message" : "a cast", text);
        free(text);
    }
    process_list_u8_free(message);
}

void exports_hotswap_otp_server_handle_cast(process_list_u8_t *message) {
    handle_message("cast", hs_exported_server->handle_cast, message);
}

void exports_hotswap_otp_server_handle_info(process_list_u8_t *message) {
    handle_message("info", hs_exported_server->handle_info, message);
}

void exports_hotswap_otp_server_terminate(process_string_t *reason) {
    if (started) {
        if (hs_exported_server->terminate) hs_exported_server->terminate(state, (hs_bytes){reason->ptr, reason->len});
        hs_json_free(state);
        state = NULL;
        started = false;
    }
    process_string_free(reason);
}

bool exports_hotswap_otp_server_snapshot(process_list_u8_t *ret, process_string_t *err) {
    if (!started) return refuse(err, no_state("snapshot"));
    size_t len = 0;
    char *text = hs_json_encode(state, &len);
    if (!text) return refuse(err, hs_format("cannot encode the state as JSON: out of memory"));
    *ret = (process_list_u8_t){(uint8_t *)text, len};
    return true;
}

/* The default code change: any JSON state, as it is. */
static char *adopt_json(hs_change change, hs_bytes blob, hs_bytes extra, hs_json **new_state) {
    (void)extra;
    char *why = NULL;
    *new_state = hs_parse(blob, &why);
    if (*new_state) return NULL;
    char *because = hs_format("the state does not parse: %s", why);
    char *error = hs_code_change_error(change, because);
    free(why);
    free(because);
    return error;
}

bool exports_hotswap_otp_server_code_change(exports_hotswap_otp_server_change_t *direction, process_list_u8_t *blob,
                                            process_list_u8_t *extra, process_string_t *err) {
    char *error = NULL;
    if (started) {
        error = hs_format("code-change called on a process that already has a state");
    } else {
        bool downgrade = direction->tag == HOTSWAP_OTP_TYPES_CHANGE_DOWNGRADE;
        process_string_t *vsn = downgrade ? &direction->val.downgrade : &direction->val.upgrade;
        hs_change change = {downgrade, {vsn->ptr, vsn->len}};
        char *(*adopt)(hs_change, hs_bytes, hs_bytes, hs_json **) =
            hs_exported_server->code_change ? hs_exported_server->code_change : adopt_json;
        hs_json *fresh = NULL;
        error = adopt(change, bytes_of(blob), bytes_of(extra), &fresh);
        if (!error && !fresh) error = hs_code_change_error(change, "code_change gave no state");
        if (error) {
            hs_json_free(fresh);
        } else {
            state = fresh;
            started = true;
        }
    }
    exports_hotswap_otp_server_change_free(direction);
    process_list_u8_free(blob);
    process_list_u8_free(extra);
    return error ? refuse(err, error) : true;
}

void exports_hotswap_otp_server_vsn(process_string_t *ret) {
    process_string_dup(ret, hs_exported_server->vsn ? hs_exported_server->vsn : "");
}
