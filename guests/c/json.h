/* JSON values for C guests: a small tree type, a strict parser and a writer that produce
 * exactly what Rust's serde_json produces for the same value, so a C guest reads and writes
 * the JSON states and payloads of the Rust, Python and JavaScript guests byte for byte.
 *
 * Why hand-written: no single-file JSON library in a registry this project can use matches
 * serde_json's output (sorted object keys, `1.0` kept apart from `1`, 64-bit integers exact,
 * serde_json's float notation) and its refusals (depth 127, lone surrogates, out-of-range
 * numbers). It is small, has no global state, and is tested natively (guests/c/test).
 *
 * Ownership: every hs_json * is owned by exactly one place. A container owns its items;
 * functions that take a value to store take ownership of it; functions that hand a value
 * back (hs_json_set's previous value, hs_json_remove) give ownership to the caller.
 * Every char * returned (errors, encodings) is malloc'd, for the caller to free(). */
#ifndef HOTSWAP_JSON_H
#define HOTSWAP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* serde_json refuses more than 127 nested arrays or objects. */
#define HS_JSON_MAX_DEPTH 127

typedef enum hs_json_kind {
    HS_JSON_NULL,
    HS_JSON_BOOL,
    HS_JSON_INT,    /* an integer that fits in int64_t */
    HS_JSON_UINT,   /* an integer above INT64_MAX that fits in uint64_t */
    HS_JSON_FLOAT,  /* a number written with a fraction or exponent, or out of 64-bit range */
    HS_JSON_STRING, /* UTF-8 bytes, may hold NUL */
    HS_JSON_ARRAY,
    HS_JSON_OBJECT, /* members kept sorted by key bytes, keys unique */
} hs_json_kind;

typedef struct hs_json hs_json;

typedef struct hs_json_member {
    char *key; /* NUL-terminated copy; key_len bytes (it may hold NUL itself) */
    size_t key_len;
    hs_json *value;
} hs_json_member;

struct hs_json {
    hs_json_kind kind;
    union {
        bool boolean;
        int64_t i;
        uint64_t u;
        double f;
        struct { char *ptr; size_t len; } string; /* ptr is NUL-terminated */
        struct { hs_json **items; size_t len, cap; } array;
        struct { hs_json_member *members; size_t len, cap; } object;
    } as;
};

/* Constructors: each returns a new value owned by the caller (NULL only when out of memory). */
hs_json *hs_json_null(void);
hs_json *hs_json_bool(bool value);
hs_json *hs_json_int(int64_t value);
hs_json *hs_json_uint(uint64_t value); /* stored as HS_JSON_INT when it fits */
hs_json *hs_json_float(double value);
hs_json *hs_json_string(const char *text);
hs_json *hs_json_string_n(const char *bytes, size_t len);
hs_json *hs_json_array(void);
hs_json *hs_json_object(void);

void hs_json_free(hs_json *value); /* NULL is fine */
hs_json *hs_json_clone(const hs_json *value);

/* Arrays. push takes ownership of item; false when out of memory (item is then freed). */
bool hs_json_push(hs_json *array, hs_json *item);

/* Objects. get borrows; set takes ownership of value and returns the previous value (owned
 * by the caller, NULL if the key was absent); remove hands the removed value to the caller. */
hs_json *hs_json_get(const hs_json *object, const char *key);
hs_json *hs_json_get_n(const hs_json *object, const char *key, size_t key_len);
hs_json *hs_json_set(hs_json *object, const char *key, size_t key_len, hs_json *value);
hs_json *hs_json_remove(hs_json *object, const char *key, size_t key_len);

/* Parses UTF-8 JSON. On error returns NULL and sets *error to serde_json's message prefixed
 * with `not JSON: ` (`not JSON: expected value at line 1 column 1`). */
hs_json *hs_json_parse(const uint8_t *bytes, size_t len, char **error);

/* Writes `value` as compact JSON, as serde_json writes a Value; sets *len (without the
 * terminating NUL that the buffer also has). NULL only when out of memory. */
char *hs_json_encode(const hs_json *value, size_t *len);

/* A float in serde_json's notation (`1.0`, `0.00001`, `1e-6`, `1e+16`, `null` if not finite)
 * into buf (at least 32 bytes); returns the length. */
size_t hs_json_format_float(double value, char *buf);

/* What a value is, in serde's words for error messages: `integer \`7\``, `string "x"`,
 * `sequence`, `map`, `null`, `boolean \`true\``, `floating point \`1.5\``. Malloc'd. */
char *hs_json_describe(const hs_json *value);

/* True for a string value whose bytes equal text. */
bool hs_json_is_string(const hs_json *value, const char *text);

/* The length of the UTF-8 character at s (1 to 4), or 0 if the bytes there are not valid UTF-8
 * (overlong, a surrogate, past U+10FFFF, cut short by end). */
size_t hs_utf8_char_len(const uint8_t *s, const uint8_t *end);

#endif
