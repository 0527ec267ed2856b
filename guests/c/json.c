/* The JSON tree, parser and writer of json.h: serde_json's grammar, refusals, error words and
 * output, in plain C11 with libc only (malloc, snprintf, strtod), for wasm32-wasi and for the
 * native unit tests alike. */
#include "json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- values ---- */

static hs_json *make(hs_json_kind kind) {
    hs_json *value = calloc(1, sizeof *value);
    if (value) value->kind = kind;
    return value;
}

hs_json *hs_json_null(void) { return make(HS_JSON_NULL); }

hs_json *hs_json_bool(bool b) {
    hs_json *value = make(HS_JSON_BOOL);
    if (value) value->as.boolean = b;
    return value;
}

hs_json *hs_json_int(int64_t i) {
    hs_json *value = make(HS_JSON_INT);
    if (value) value->as.i = i;
    return value;
}

hs_json *hs_json_uint(uint64_t u) {
    if (u <= (uint64_t)INT64_MAX) return hs_json_int((int64_t)u);
    hs_json *value = make(HS_JSON_UINT);
    if (value) value->as.u = u;
    return value;
}

hs_json *hs_json_float(double f) {
    hs_json *value = make(HS_JSON_FLOAT);
    if (value) value->as.f = f;
    return value;
}

hs_json *hs_json_string_n(const char *bytes, size_t len) {
    hs_json *value = make(HS_JSON_STRING);
    char *copy = malloc(len + 1);
    if (!value || !copy) {
        free(value);
        free(copy);
        return NULL;
    }
    if (len) memcpy(copy, bytes, len);
    copy[len] = '\0';
    value->as.string.ptr = copy;
    value->as.string.len = len;
    return value;
}

hs_json *hs_json_string(const char *text) { return hs_json_string_n(text, strlen(text)); }
hs_json *hs_json_array(void) { return make(HS_JSON_ARRAY); }
hs_json *hs_json_object(void) { return make(HS_JSON_OBJECT); }

void hs_json_free(hs_json *value) {
    if (!value) return;
    switch (value->kind) {
    case HS_JSON_STRING:
        free(value->as.string.ptr);
        break;
    case HS_JSON_ARRAY:
        for (size_t i = 0; i < value->as.array.len; i++) hs_json_free(value->as.array.items[i]);
        free(value->as.array.items);
        break;
    case HS_JSON_OBJECT:
        for (size_t i = 0; i < value->as.object.len; i++) {
            free(value->as.object.members[i].key);
            hs_json_free(value->as.object.members[i].value);
        }
        free(value->as.object.members);
        break;
    default:
        break;
    }
    free(value);
}

hs_json *hs_json_clone(const hs_json *value) {
    if (!value) return NULL;
    switch (value->kind) {
    case HS_JSON_STRING:
        return hs_json_string_n(value->as.string.ptr, value->as.string.len);
    case HS_JSON_ARRAY: {
        hs_json *copy = hs_json_array();
        for (size_t i = 0; copy && i < value->as.array.len; i++) {
            if (!hs_json_push(copy, hs_json_clone(value->as.array.items[i]))) {
                hs_json_free(copy);
                return NULL;
            }
        }
        return copy;
    }
    case HS_JSON_OBJECT: {
        hs_json *copy = hs_json_object();
        for (size_t i = 0; copy && i < value->as.object.len; i++) {
            const hs_json_member *m = &value->as.object.members[i];
            hs_json *item = hs_json_clone(m->value);
            if (!item) {
                hs_json_free(copy);
                return NULL;
            }
            hs_json_free(hs_json_set(copy, m->key, m->key_len, item));
        }
        return copy;
    }
    default: {
        hs_json *copy = make(value->kind);
        if (copy) copy->as = value->as;
        return copy;
    }
    }
}

bool hs_json_push(hs_json *array, hs_json *item) {
    if (!array || array->kind != HS_JSON_ARRAY || !item) {
        hs_json_free(item);
        return false;
    }
    if (array->as.array.len == array->as.array.cap) {
        size_t cap = array->as.array.cap ? array->as.array.cap * 2 : 4;
        hs_json **items = realloc(array->as.array.items, cap * sizeof *items);
        if (!items) {
            hs_json_free(item);
            return false;
        }
        array->as.array.items = items;
        array->as.array.cap = cap;
    }
    array->as.array.items[array->as.array.len++] = item;
    return true;
}

/* Rust's order for String keys: bytes, then length. */
static int compare_keys(const char *a, size_t a_len, const char *b, size_t b_len) {
    int c = memcmp(a, b, a_len < b_len ? a_len : b_len);
    if (c) return c;
    return a_len < b_len ? -1 : a_len > b_len;
}

/* The index of key, or of where it would go (with *found false). */
static size_t find(const hs_json *object, const char *key, size_t key_len, bool *found) {
    size_t low = 0, high = object->as.object.len;
    while (low < high) {
        size_t mid = low + (high - low) / 2;
        const hs_json_member *m = &object->as.object.members[mid];
        int c = compare_keys(m->key, m->key_len, key, key_len);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0) low = mid + 1;
        else high = mid;
    }
    *found = false;
    return low;
}

hs_json *hs_json_get_n(const hs_json *object, const char *key, size_t key_len) {
    if (!object || object->kind != HS_JSON_OBJECT) return NULL;
    bool found;
    size_t at = find(object, key, key_len, &found);
    return found ? object->as.object.members[at].value : NULL;
}

hs_json *hs_json_get(const hs_json *object, const char *key) {
    return hs_json_get_n(object, key, strlen(key));
}

hs_json *hs_json_set(hs_json *object, const char *key, size_t key_len, hs_json *value) {
    if (!object || object->kind != HS_JSON_OBJECT || !value) {
        hs_json_free(value);
        return NULL;
    }
    bool found;
    size_t at = find(object, key, key_len, &found);
    if (found) {
        hs_json *previous = object->as.object.members[at].value;
        object->as.object.members[at].value = value;
        return previous;
    }
    if (object->as.object.len == object->as.object.cap) {
        size_t cap = object->as.object.cap ? object->as.object.cap * 2 : 4;
        hs_json_member *members = realloc(object->as.object.members, cap * sizeof *members);
        if (!members) {
            hs_json_free(value);
            return NULL;
        }
        object->as.object.members = members;
        object->as.object.cap = cap;
    }
    char *copy = malloc(key_len + 1);
    if (!copy) {
        hs_json_free(value);
        return NULL;
    }
    if (key_len) memcpy(copy, key, key_len);
    copy[key_len] = '\0';
    hs_json_member *members = object->as.object.members;
    memmove(&members[at + 1], &members[at], (object->as.object.len - at) * sizeof *members);
    members[at] = (hs_json_member){copy, key_len, value};
    object->as.object.len++;
    return NULL;
}

hs_json *hs_json_remove(hs_json *object, const char *key, size_t key_len) {
    if (!object || object->kind != HS_JSON_OBJECT) return NULL;
    bool found;
    size_t at = find(object, key, key_len, &found);
    if (!found) return NULL;
    hs_json_member *members = object->as.object.members;
    hs_json *removed = members[at].value;
    free(members[at].key);
    memmove(&members[at], &members[at + 1], (object->as.object.len - at - 1) * sizeof *members);
    object->as.object.len--;
    return removed;
}

bool hs_json_is_string(const hs_json *value, const char *text) {
    size_t len = strlen(text);
    return value && value->kind == HS_JSON_STRING && value->as.string.len == len &&
           memcmp(value->as.string.ptr, text, len) == 0;
}

/* ---- a growable byte buffer ---- */

typedef struct buffer {
    char *ptr;
    size_t len, cap;
    bool failed; /* out of memory: everything after is dropped */
} buffer;

static void put(buffer *b, const char *bytes, size_t len) {
    if (b->failed) return;
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (b->len + len + 1 > cap) cap *= 2;
        char *ptr = realloc(b->ptr, cap);
        if (!ptr) {
            b->failed = true;
            return;
        }
        b->ptr = ptr;
        b->cap = cap;
    }
    memcpy(b->ptr + b->len, bytes, len);
    b->len += len;
    b->ptr[b->len] = '\0';
}

static void puts_(buffer *b, const char *text) { put(b, text, strlen(text)); }

static char *finish(buffer *b, size_t *len) {
    if (b->failed || !b->ptr) {
        if (!b->failed) return calloc(1, 1); /* the empty text */
        free(b->ptr);
        return NULL;
    }
    if (len) *len = b->len;
    return b->ptr;
}

static char *format(const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(NULL, 0, fmt, args);
    va_end(args);
    char *text = malloc(n > 0 ? (size_t)n + 1 : 1);
    if (!text) return NULL;
    va_start(args, fmt);
    vsnprintf(text, (size_t)n + 1, fmt, args);
    va_end(args);
    return text;
}

/* ---- writing ---- */

size_t hs_json_format_float(double value, char *buf) {
    if (!isfinite(value)) return (size_t)sprintf(buf, "null");
    char *out = buf;
    if (signbit(value)) *out++ = '-';
    value = fabs(value);
    if (value == 0) return (size_t)(out - buf) + (size_t)sprintf(out, "0.0");
    /* The shortest %e form that reads back to the same double: its digits are the shortest,
     * and the correctly rounded ones, as serde_json's float writer picks. */
    char sci[40];
    for (int precision = 0; precision <= 17; precision++) {
        snprintf(sci, sizeof sci, "%.*e", precision, value);
        if (strtod(sci, NULL) == value) break;
    }
    char digits[24];
    size_t n = 0;
    const char *p = sci;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0') n--;
    digits[n] = '\0';
    int exponent = atoi(p + 1); /* the value is d.ddd x 10^exponent */
    if (exponent >= -5 && exponent <= 15) {
        int point = exponent + 1; /* digits before the decimal point */
        if (point <= 0) {
            out += sprintf(out, "0.");
            for (int i = 0; i < -point; i++) *out++ = '0';
            out += sprintf(out, "%s", digits);
        } else if ((size_t)point >= n) {
            out += sprintf(out, "%s", digits);
            for (size_t i = n; i < (size_t)point; i++) *out++ = '0';
            out += sprintf(out, ".0");
        } else {
            memcpy(out, digits, (size_t)point);
            out += point;
            out += sprintf(out, ".%s", digits + point);
        }
    } else {
        *out++ = digits[0];
        if (n > 1) out += sprintf(out, ".%s", digits + 1);
        out += sprintf(out, "e%c%d", exponent > 0 ? '+' : '-', abs(exponent));
    }
    *out = '\0';
    return (size_t)(out - buf);
}

static void write_string(buffer *b, const char *s, size_t len) {
    static const char hex[] = "0123456789abcdef";
    put(b, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *escape = NULL;
        char unicode[7];
        switch (c) {
        case '"': escape = "\\\""; break;
        case '\\': escape = "\\\\"; break;
        case '\b': escape = "\\b"; break;
        case '\f': escape = "\\f"; break;
        case '\n': escape = "\\n"; break;
        case '\r': escape = "\\r"; break;
        case '\t': escape = "\\t"; break;
        default:
            if (c < 0x20) {
                memcpy(unicode, "\\u00", 4);
                unicode[4] = hex[c >> 4];
                unicode[5] = hex[c & 15];
                unicode[6] = '\0';
                escape = unicode;
            }
        }
        if (escape) {
            put(b, s + start, i - start);
            puts_(b, escape);
            start = i + 1;
        }
    }
    put(b, s + start, len - start);
    put(b, "\"", 1);
}

/* Writes the decimal digits of `n`, as "%" PRIu64 would: sprintf took more than half of a large
 * state's snapshot. */
static void write_uint(buffer *b, uint64_t n) {
    char digits[20];
    size_t at = sizeof digits;
    do {
        digits[--at] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    put(b, digits + at, sizeof digits - at);
}

/* As "%" PRId64 would; INT64_MIN's magnitude is taken in unsigned arithmetic. */
static void write_int(buffer *b, int64_t n) {
    if (n < 0) {
        put(b, "-", 1);
        write_uint(b, 0 - (uint64_t)n);
    } else {
        write_uint(b, (uint64_t)n);
    }
}

static void write_value(buffer *b, const hs_json *v) {
    char number[40];
    switch (v->kind) {
    case HS_JSON_NULL: puts_(b, "null"); break;
    case HS_JSON_BOOL: puts_(b, v->as.boolean ? "true" : "false"); break;
    case HS_JSON_INT: write_int(b, v->as.i); break;
    case HS_JSON_UINT: write_uint(b, v->as.u); break;
    case HS_JSON_FLOAT: put(b, number, hs_json_format_float(v->as.f, number)); break;
    case HS_JSON_STRING: write_string(b, v->as.string.ptr, v->as.string.len); break;
    case HS_JSON_ARRAY:
        put(b, "[", 1);
        for (size_t i = 0; i < v->as.array.len; i++) {
            if (i) put(b, ",", 1);
            write_value(b, v->as.array.items[i]);
        }
        put(b, "]", 1);
        break;
    case HS_JSON_OBJECT:
        put(b, "{", 1);
        for (size_t i = 0; i < v->as.object.len; i++) {
            const hs_json_member *m = &v->as.object.members[i];
            if (i) put(b, ",", 1);
            write_string(b, m->key, m->key_len);
            put(b, ":", 1);
            write_value(b, m->value);
        }
        put(b, "}", 1);
        break;
    }
}

char *hs_json_encode(const hs_json *value, size_t *len) {
    buffer b = {0};
    if (value) write_value(&b, value);
    else puts_(&b, "null");
    return finish(&b, len);
}

char *hs_json_describe(const hs_json *v) {
    char *text = NULL;
    switch (v->kind) {
    case HS_JSON_NULL: return format("null");
    case HS_JSON_BOOL: return format("boolean `%s`", v->as.boolean ? "true" : "false");
    case HS_JSON_ARRAY: return format("sequence");
    case HS_JSON_OBJECT: return format("map");
    case HS_JSON_INT:
    case HS_JSON_UINT:
        text = hs_json_encode(v, NULL);
        {
            char *described = text ? format("integer `%s`", text) : NULL;
            free(text);
            return described;
        }
    case HS_JSON_FLOAT:
        text = hs_json_encode(v, NULL);
        {
            char *described = text ? format("floating point `%s`", text) : NULL;
            free(text);
            return described;
        }
    case HS_JSON_STRING:
        text = hs_json_encode(v, NULL);
        {
            char *described = text ? format("string %s", text) : NULL;
            free(text);
            return described;
        }
    }
    return NULL;
}

/* ---- parsing ---- */

typedef struct parser {
    const uint8_t *at, *start, *end;
    int depth;
    char *error;
} parser;

/* Fails with serde_json's words; `read` is how many bytes were read when the error showed. */
static hs_json *fail_at(parser *p, const uint8_t *read, const char *what) {
    if (!p->error) {
        size_t line = 1, column = 0;
        for (const uint8_t *c = p->start; c < read && c < p->end; c++) {
            if (*c == '\n') {
                line++;
                column = 0;
            } else {
                column++;
            }
        }
        p->error = format("not JSON: %s at line %zu column %zu", what, line, column);
    }
    return NULL;
}

static hs_json *fail(parser *p, const char *what) { return fail_at(p, p->at, what); }

static void skip_space(parser *p) {
    while (p->at < p->end && (*p->at == ' ' || *p->at == '\t' || *p->at == '\n' || *p->at == '\r')) p->at++;
}

static hs_json *parse_value(parser *p);

static int hex_digit(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Reads the 4 hex digits of a \u escape (all 4 first, as serde_json does); -1 after failing. */
static long read_hex4(parser *p) {
    if (p->end - p->at < 4) {
        p->at = p->end;
        fail(p, "EOF while parsing a string");
        return -1;
    }
    long unit = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p->at[i]);
        if (d < 0) {
            p->at += 4;
            fail(p, "invalid escape");
            return -1;
        }
        unit = unit * 16 + d;
    }
    p->at += 4;
    return unit;
}

static void put_utf8(buffer *b, unsigned long cp) {
    char out[4];
    size_t n;
    if (cp < 0x80) {
        out[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    put(b, out, n);
}

size_t hs_utf8_char_len(const uint8_t *s, const uint8_t *end) {
    if (s >= end) return 0;
    uint8_t c = s[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned long min, cp;
    if (c >= 0xC2 && c <= 0xDF) n = 2, min = 0x80, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF) n = 3, min = 0x800, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4) n = 4, min = 0x10000, cp = c & 0x07;
    else return 0;
    if ((size_t)(end - s) < n) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

/* Parses a string; the opening quote is at p->at. Returns the bytes in *out (malloc'd). */
static bool parse_string(parser *p, char **out, size_t *out_len) {
    buffer b = {0};
    p->at++;
    for (;;) {
        if (p->at >= p->end) {
            fail(p, "EOF while parsing a string");
            break;
        }
        uint8_t c = *p->at;
        if (c == '"') {
            p->at++;
            if (b.failed) break;
            if (!b.ptr) b.ptr = calloc(1, 1);
            if (!b.ptr) break;
            *out = b.ptr;
            *out_len = b.len;
            return true;
        }
        if (c < 0x20) {
            p->at++;
            fail(p, "control character (\\u0000-\\u001F) found while parsing a string");
            break;
        }
        if (c >= 0x80) {
            size_t n = hs_utf8_char_len(p->at, p->end);
            if (!n) {
                p->at++;
                fail(p, "invalid unicode code point");
                break;
            }
            put(&b, (const char *)p->at, n);
            p->at += n;
            continue;
        }
        p->at++;
        if (c != '\\') {
            put(&b, (const char *)&c, 1);
            continue;
        }
        if (p->at >= p->end) {
            fail(p, "EOF while parsing a string");
            break;
        }
        uint8_t e = *p->at++;
        const char *simple = NULL;
        switch (e) {
        case '"': simple = "\""; break;
        case '\\': simple = "\\"; break;
        case '/': simple = "/"; break;
        case 'b': simple = "\b"; break;
        case 'f': simple = "\f"; break;
        case 'n': simple = "\n"; break;
        case 'r': simple = "\r"; break;
        case 't': simple = "\t"; break;
        case 'u': break;
        default:
            fail(p, "invalid escape");
            goto failed;
        }
        if (simple) {
            put(&b, simple, 1);
            continue;
        }
        long unit = read_hex4(p);
        if (unit < 0) break;
        if (unit >= 0xDC00 && unit <= 0xDFFF) {
            fail(p, "lone leading surrogate in hex escape");
            break;
        }
        if (unit >= 0xD800 && unit <= 0xDBFF) {
            if (p->end - p->at < 2 || p->at[0] != '\\' || p->at[1] != 'u') {
                fail_at(p, p->at + 1 <= p->end ? p->at + 1 : p->end, "unexpected end of hex escape");
                break;
            }
            p->at += 2;
            long low = read_hex4(p);
            if (low < 0) break;
            if (low < 0xDC00 || low > 0xDFFF) {
                fail(p, "lone leading surrogate in hex escape");
                break;
            }
            unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
        }
        put_utf8(&b, (unsigned long)unit);
    }
failed:
    free(b.ptr);
    if (!p->error) p->error = format("out of memory");
    return false;
}

static bool is_digit(const parser *p) { return p->at < p->end && *p->at >= '0' && *p->at <= '9'; }

/* Reads one or more digits; false after failing. */
static bool digits(parser *p) {
    if (p->at >= p->end) {
        fail(p, "EOF while parsing a value");
        return false;
    }
    if (!is_digit(p)) {
        fail_at(p, p->at + 1, "invalid number");
        return false;
    }
    while (is_digit(p)) p->at++;
    return true;
}

static hs_json *parse_number(parser *p) {
    const uint8_t *start = p->at;
    bool negative = false, is_float = false;
    if (*p->at == '-') {
        negative = true;
        p->at++;
    }
    if (p->at < p->end && *p->at == '0') {
        p->at++;
        if (is_digit(p)) return fail_at(p, p->at + 1, "invalid number");
    } else if (!digits(p)) {
        return NULL;
    }
    if (p->at < p->end && *p->at == '.') {
        p->at++;
        if (!digits(p)) return NULL;
        is_float = true;
    }
    if (p->at < p->end && (*p->at == 'e' || *p->at == 'E')) {
        p->at++;
        if (p->at < p->end && (*p->at == '+' || *p->at == '-')) p->at++;
        if (!digits(p)) return NULL;
        is_float = true;
    }
    if (!is_float) {
        /* serde_json: u64 if positive, i64 if negative, a float beyond; `-0` is -0.0. */
        uint64_t magnitude = 0;
        bool overflow = false;
        for (const uint8_t *c = start + negative; c < p->at; c++) {
            unsigned d = (unsigned)(*c - '0');
            if (magnitude > (UINT64_MAX - d) / 10) overflow = true;
            else magnitude = magnitude * 10 + d;
        }
        if (!overflow && !negative) return hs_json_uint(magnitude);
        if (!overflow && negative && magnitude != 0 && magnitude <= (uint64_t)INT64_MAX + 1)
            return hs_json_int(magnitude == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)magnitude);
    }
    size_t len = (size_t)(p->at - start);
    char *text = malloc(len + 1);
    if (!text) return NULL;
    memcpy(text, start, len);
    text[len] = '\0';
    double value = strtod(text, NULL);
    free(text);
    if (isinf(value)) return fail(p, "number out of range");
    return hs_json_float(value);
}

static hs_json *parse_literal(parser *p, const char *word, hs_json *(*make_value)(void)) {
    for (const char *c = word; *c; c++) {
        if (p->at >= p->end) return fail(p, "EOF while parsing a value");
        if (*p->at != (uint8_t)*c) return fail_at(p, p->at + 1, "expected ident");
        p->at++;
    }
    return make_value();
}

static hs_json *make_true(void) { return hs_json_bool(true); }
static hs_json *make_false(void) { return hs_json_bool(false); }

static hs_json *parse_container(parser *p) {
    bool array = *p->at == '[';
    char close = array ? ']' : '}';
    const char *eof = array ? "EOF while parsing a list" : "EOF while parsing an object";
    if (++p->depth > HS_JSON_MAX_DEPTH) return fail_at(p, p->at + 1, "recursion limit exceeded");
    p->at++;
    hs_json *result = array ? hs_json_array() : hs_json_object();
    if (!result) return NULL;
    skip_space(p);
    if (p->at >= p->end) goto eof;
    if (*p->at == (uint8_t)close) {
        p->at++;
        p->depth--;
        return result;
    }
    for (;;) {
        if (array) {
            hs_json *item = parse_value(p);
            if (!item || !hs_json_push(result, item)) goto failed;
        } else {
            if (*p->at != '"') {
                fail_at(p, p->at + 1, "key must be a string");
                goto failed;
            }
            char *key;
            size_t key_len;
            if (!parse_string(p, &key, &key_len)) goto failed;
            skip_space(p);
            if (p->at >= p->end) {
                free(key);
                goto eof;
            }
            if (*p->at != ':') {
                free(key);
                fail_at(p, p->at + 1, "expected `:`");
                goto failed;
            }
            p->at++;
            skip_space(p);
            hs_json *item = parse_value(p);
            if (!item) {
                free(key);
                goto failed;
            }
            hs_json_free(hs_json_set(result, key, key_len, item)); /* a repeated key: last wins */
            free(key);
        }
        skip_space(p);
        if (p->at >= p->end) goto eof;
        uint8_t c = *p->at++;
        if (c == (uint8_t)close) break;
        if (c != ',') {
            fail(p, array ? "expected `,` or `]`" : "expected `,` or `}`");
            goto failed;
        }
        skip_space(p);
        if (p->at >= p->end) {
            fail(p, "EOF while parsing a value");
            goto failed;
        }
        if (*p->at == (uint8_t)close) {
            fail_at(p, p->at + 1, "trailing comma");
            goto failed;
        }
    }
    p->depth--;
    return result;
eof:
    fail(p, eof);
failed:
    hs_json_free(result);
    return NULL;
}

static hs_json *parse_value(parser *p) {
    if (p->at >= p->end) return fail(p, "EOF while parsing a value");
    switch (*p->at) {
    case '{':
    case '[':
        return parse_container(p);
    case '"': {
        char *text;
        size_t len;
        if (!parse_string(p, &text, &len)) return NULL;
        hs_json *value = make(HS_JSON_STRING);
        if (!value) {
            free(text);
            return NULL;
        }
        value->as.string.ptr = text;
        value->as.string.len = len;
        return value;
    }
    case 'n': return parse_literal(p, "null", hs_json_null);
    case 't': return parse_literal(p, "true", make_true);
    case 'f': return parse_literal(p, "false", make_false);
    default:
        if (*p->at == '-' || (*p->at >= '0' && *p->at <= '9')) return parse_number(p);
        return fail_at(p, p->at + 1, "expected value");
    }
}

hs_json *hs_json_parse(const uint8_t *bytes, size_t len, char **error) {
    parser p = {bytes, bytes, bytes + len, 0, NULL};
    skip_space(&p);
    hs_json *value = parse_value(&p);
    if (value) {
        skip_space(&p);
        if (p.at < p.end) {
            fail_at(&p, p.at + 1, "trailing characters");
            hs_json_free(value);
            value = NULL;
        }
    } else if (!p.error) {
        p.error = format("out of memory");
    }
    if (error) *error = p.error;
    else free(p.error);
    return value;
}
