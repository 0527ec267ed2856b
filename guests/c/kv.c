/* The seed's key-value server in C, vsn "c-1": the same requests, replies and state as the Rust
 * kv (guests/rust/kv-core), so a running kv process hot swaps from any version in any language
 * to this one and back. Like Rust kv v1 it logs one info line per get and put.
 *
 *   {"op":"put","key":"a","value":42}   -> the previous value, or null
 *   {"op":"get","key":"a"}              -> the value, or null
 *   {"op":"delete","key":"a"}           -> the removed value, or null
 *   {"op":"keys"}                       -> the keys, sorted
 *   {"op":"count"}                      -> the number of keys
 *   {"op":"crash"}                      -> no reply: traps (for the host's tests)
 *
 * Anything else is the error `unknown request: <what was wrong>`. A put whose value nests more
 * than MAX_VALUE_DEPTH arrays and objects is refused (`value nested too deep: ...`): the state
 * holding it could not be read back, here or in any other language. As a cast or an info message,
 * put and delete apply without a reply; anything else is logged at warn and ignored. The state
 * is `{"entries":{...}}`, keys sorted, byte for byte what the Rust kv writes.
 *
 * Built by scripts/build-polyglot-guests.sh into guests/out/kv_c.wasm. */
#include <stdlib.h>
#include <string.h>

#include "hotswap_guest.h"

#define INIT_HINT "bad init arguments (want nothing, null or {\"entries\":{...}})"

/* serde_json reads 127 levels; a state holds each value two levels down (kv-core's MAX_VALUE_DEPTH):
 * a deeper value could be put, but the state holding it could never be read back. */
#define MAX_VALUE_DEPTH 125
#define DIGITS_OF(n) #n
#define DIGITS(n) DIGITS_OF(n)
#define TOO_DEEP "value nested too deep: a state keeps at most " DIGITS(MAX_VALUE_DEPTH) " levels of arrays and objects"

typedef enum op { PUT, GET, DELETE, KEYS, COUNT } op;
static const char *const OPS[] = {"put", "get", "delete", "keys", "count"};

/* A parsed request. `json` owns everything; key borrows from it; value is taken out of it. */
typedef struct request {
    op op;
    hs_json *json;
    const hs_json *key;
    hs_json *value;
} request;

static void request_free(request *r) {
    hs_json_free(r->json);
    hs_json_free(r->value);
}

/* `what` described (`integer \`7\``), in an error message: frees the description. */
static char *invalid_type(const char *prefix, const hs_json *what, const char *expected) {
    char *kind = hs_json_describe(what);
    char *error = hs_format("%sinvalid type: %s, expected %s", prefix, kind ? kind : "?", expected);
    free(kind);
    return error;
}

/* How many arrays and objects `value` nests in one another: 0 for anything else. The parser
 * bounds the recursion (127 levels). */
static size_t depth(const hs_json *value) {
    size_t deepest = 0;
    if (value->kind == HS_JSON_ARRAY) {
        for (size_t i = 0; i < value->as.array.len; i++) {
            size_t inner = depth(value->as.array.items[i]);
            if (inner > deepest) deepest = inner;
        }
        return deepest + 1;
    }
    if (value->kind == HS_JSON_OBJECT) {
        for (size_t i = 0; i < value->as.object.len; i++) {
            size_t inner = depth(value->as.object.members[i].value);
            if (inner > deepest) deepest = inner;
        }
        return deepest + 1;
    }
    return 0;
}

/* The request's fields, as bits of what named_twice returns. */
static const char *const FIELDS[] = {"op", "key", "value"};
enum { OP_TWICE = 1, KEY_TWICE = 2, VALUE_TWICE = 4 };

/* Whether one of the field names is written, quoted, more than once anywhere in `bytes`: one
 * pass from quote to quote, so that a large put costs a memchr over its value. */
static bool a_name_written_twice(hs_bytes bytes) {
    unsigned written[sizeof FIELDS / sizeof FIELDS[0]] = {0};
    const uint8_t *end = bytes.ptr + bytes.len;
    for (const uint8_t *q = memchr(bytes.ptr, '"', bytes.len); q; q = memchr(q + 1, '"', (size_t)(end - q - 1))) {
        for (size_t i = 0; i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
            size_t n = strlen(FIELDS[i]);
            if ((size_t)(end - q) > n + 1 && memcmp(q + 1, FIELDS[i], n) == 0 && q[n + 1] == '"' && ++written[i] == 2)
                return true;
        }
        if (q + 1 == end) break;
    }
    return false;
}

/* Which of the request's fields (`op`, `key`, `value`) its object names more than once, as
 * bits. The parsed object keeps the last; the Rust kv refuses the request (serde's `duplicate
 * field`), and so does this one. `bytes` is known to be a JSON object. Without a backslash (an
 * escape could spell a name) and with each name written once at most, nothing is named twice. */
static unsigned named_twice(hs_bytes bytes) {
    if (!memchr(bytes.ptr, '\\', bytes.len) && !a_name_written_twice(bytes)) return 0;
    unsigned seen = 0, twice = 0;
    size_t level = 0;
    bool at_name = false;
    for (size_t at = 0; at < bytes.len; at++) {
        uint8_t c = bytes.ptr[at];
        if (c == '"') {
            size_t end = at + 1;
            while (end < bytes.len && bytes.ptr[end] != '"') end += bytes.ptr[end] == '\\' ? 2 : 1;
            if (at_name && end < bytes.len) {
                char *why = NULL;
                hs_json *name = hs_json_parse(bytes.ptr + at, end + 1 - at, &why);
                free(why);
                for (unsigned i = 0; name && i < sizeof FIELDS / sizeof FIELDS[0]; i++) {
                    if (!hs_json_is_string(name, FIELDS[i])) continue;
                    if (seen & (1u << i)) twice |= 1u << i;
                    seen |= 1u << i;
                }
                hs_json_free(name);
            }
            at_name = false;
            at = end;
        } else if (c == '{' || c == '[') {
            level++;
            at_name = c == '{' && level == 1;
        } else if (c == '}' || c == ']') {
            level--;
        } else if (c == ',') {
            at_name = level == 1;
        }
    }
    return twice;
}

/* Parses a request; an error (`unknown request: ...`) names what was wrong, as the Rust kv does. */
static char *parse(hs_bytes bytes, request *r) {
    *r = (request){0};
    char *why = NULL;
    r->json = hs_parse(bytes, &why);
    if (!r->json) {
        char *error = hs_format("unknown request: %s", why);
        free(why);
        return error;
    }
    if (r->json->kind != HS_JSON_OBJECT)
        return invalid_type("unknown request: ", r->json, "internally tagged enum Request");
    unsigned twice = named_twice(bytes);
    if (twice & OP_TWICE) return hs_format("unknown request: duplicate field `op`");
    const hs_json *name = hs_json_get(r->json, "op");
    if (!name) return hs_format("unknown request: missing field `op`");
    if (name->kind != HS_JSON_STRING) return invalid_type("unknown request: ", name, "variant identifier");
    size_t found = sizeof OPS / sizeof OPS[0];
    for (size_t i = 0; i < sizeof OPS / sizeof OPS[0]; i++)
        if (hs_json_is_string(name, OPS[i])) found = i;
    if (found == sizeof OPS / sizeof OPS[0])
        return hs_format("unknown request: unknown variant `%s`, expected one of `put`, `get`, `delete`, `keys`, `count`",
                         name->as.string.ptr);
    r->op = (op)found;
    if (r->op == KEYS || r->op == COUNT) return NULL;
    if (twice & KEY_TWICE) return hs_format("unknown request: duplicate field `key`");
    r->key = hs_json_get(r->json, "key");
    if (!r->key) return hs_format("unknown request: missing field `key`");
    if (r->key->kind != HS_JSON_STRING) return invalid_type("unknown request: ", r->key, "a string");
    if (r->op != PUT) return NULL;
    if (twice & VALUE_TWICE) return hs_format("unknown request: duplicate field `value`");
    r->value = hs_json_remove(r->json, "value", 5);
    if (!r->value) return hs_format("unknown request: missing field `value`");
    if (depth(r->value) > MAX_VALUE_DEPTH) return hs_format(TOO_DEEP);
    return NULL;
}

/* Carries out a request and returns the reply (owned by the caller), logging gets and puts. */
static hs_json *serve(hs_json *state, request *r) {
    hs_json *entries = hs_json_get(state, "entries");
    const char *key = r->key ? r->key->as.string.ptr : NULL;
    size_t key_len = r->key ? r->key->as.string.len : 0;
    hs_json *reply = NULL;
    switch (r->op) {
    case PUT: {
        char *text = hs_json_encode(r->value, NULL);
        hs_info("put %s = %s", key, text ? text : "?");
        free(text);
        reply = hs_json_set(entries, key, key_len, r->value);
        r->value = NULL; /* entries owns it now */
        break;
    }
    case GET: {
        reply = hs_json_clone(hs_json_get_n(entries, key, key_len));
        char *text = hs_json_encode(reply, NULL); /* NULL encodes as null */
        hs_info("get %s -> %s", key, text ? text : "?");
        free(text);
        break;
    }
    case DELETE:
        reply = hs_json_remove(entries, key, key_len);
        break;
    case KEYS:
        reply = hs_json_array();
        for (size_t i = 0; i < entries->as.object.len; i++) {
            const hs_json_member *m = &entries->as.object.members[i];
            hs_json_push(reply, hs_json_string_n(m->key, m->key_len));
        }
        break;
    case COUNT:
        reply = hs_json_uint(entries->as.object.len);
        break;
    }
    return reply ? reply : hs_json_null();
}

/* {"entries": entries}, taking entries (an object, checked by the caller). */
static hs_json *state_of(hs_json *entries) {
    hs_json *state = hs_json_object();
    hs_json_set(state, "entries", 7, entries);
    return state;
}

static char *init(hs_bytes args, hs_json **state) {
    size_t i = 0;
    while (i < args.len && args.ptr[i] && strchr(" \t\n\r\f", args.ptr[i])) i++; /* Rust's is_ascii_whitespace */
    if (i == args.len) {
        *state = state_of(hs_json_object());
        return NULL;
    }
    char *why = NULL;
    hs_json *value = hs_parse(args, &why);
    char *error = NULL;
    if (!value) {
        error = hs_format(INIT_HINT ": %s", why);
        free(why);
    } else if (value->kind == HS_JSON_NULL) {
        *state = state_of(hs_json_object());
    } else if (value->kind != HS_JSON_OBJECT) {
        error = invalid_type(INIT_HINT ": ", value, "an object");
    } else {
        hs_json *entries = hs_json_remove(value, "entries", 7);
        if (!entries) entries = hs_json_object();
        if (entries->kind != HS_JSON_OBJECT) error = invalid_type(INIT_HINT ": ", entries, "a map");
        if (error) hs_json_free(entries);
        else *state = state_of(entries);
    }
    hs_json_free(value);
    return error;
}

/* True for {"op":"crash"} (other fields allowed). */
static bool is_crash(hs_bytes bytes) {
    hs_json *value = hs_parse(bytes, NULL);
    bool crash = value && hs_json_is_string(hs_json_get(value, "op"), "crash");
    hs_json_free(value);
    return crash;
}

static char *handle_call(hs_json *state, hs_bytes bytes, hs_pid caller, hs_bytes *reply) {
    if (is_crash(bytes)) {
        /* Traps on purpose, so the host's tests can check that a trap in a C guest kills this
         * process only. */
        hs_error("kv c-1 traps on purpose: {\"op\":\"crash\"} from pid %llu", (unsigned long long)caller);
        hs_trap();
    }
    request r;
    char *error = parse(bytes, &r);
    if (!error) {
        hs_json *answer = serve(state, &r);
        error = hs_reply_json(reply, answer);
        hs_json_free(answer);
    }
    request_free(&r);
    return error;
}

/* A cast or an info message: put and delete apply, anything else is logged. */
static void handle_message(const char *what, hs_json *state, hs_bytes bytes) {
    request r;
    char *error = parse(bytes, &r);
    if (error) {
        hs_warn("ignoring the %s: %s", what, error);
        free(error);
    } else if (r.op == PUT || r.op == DELETE) {
        hs_json_free(serve(state, &r));
    } else {
        char *text = hs_describe(bytes);
        hs_warn("ignoring the %s %s: only put and delete apply without a reply", what, text);
        free(text);
    }
    request_free(&r);
}

static void handle_cast(hs_json *state, hs_bytes message) { handle_message("cast", state, message); }
static void handle_info(hs_json *state, hs_bytes message) { handle_message("info message", state, message); }

static char *code_change(hs_change change, hs_bytes blob, hs_bytes extra, hs_json **new_state) {
    (void)extra;
    char *why = NULL;
    hs_json *value = hs_parse(blob, &why);
    hs_json *entries = NULL;
    if (!value) {
        /* why is already set */
    } else if (value->kind != HS_JSON_OBJECT) {
        why = invalid_type("", value, "struct Entries");
    } else if (!(entries = hs_json_remove(value, "entries", 7))) {
        why = hs_format("missing field `entries`");
    } else if (entries->kind != HS_JSON_OBJECT) {
        why = invalid_type("", entries, "a map");
    }
    hs_json_free(value);
    if (!why) {
        *new_state = state_of(entries);
        return NULL;
    }
    hs_json_free(entries);
    char *because = hs_format("the state does not parse: %s", why);
    char *error = hs_code_change_error(change, because);
    free(why);
    free(because);
    return error;
}

static const hs_server kv = {
    .vsn = "c-1",
    .init = init,
    .handle_call = handle_call,
    .handle_cast = handle_cast,
    .handle_info = handle_info,
    .code_change = code_change,
};

HS_EXPORT_SERVER(kv)
