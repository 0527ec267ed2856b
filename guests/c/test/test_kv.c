/* Native unit tests of the C kv (kv.c) through the helper (hotswap_guest.c) and the bindings that
 * wit-bindgen generates (process.c): the same replies, errors, log lines and state as the Rust kv,
 * and no leak (run under AddressSanitizer by `scripts/build-polyglot-guests.sh test`). The host's
 * imports are stubbed below: log lines are recorded, the rest answers like an idle node.
 * The crash request is not tested here (it traps); the host's tests cover it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "process.h"

static int passed, failed;
static char last_log[4096];
static int logged, warnings;

/* ---- the host's imports, stubbed ---- */

void __wasm_import_hotswap_otp_runtime_log(int32_t level, uint8_t *ptr, size_t len) {
    snprintf(last_log, sizeof last_log, "%d %.*s", (int)level, (int)len, (const char *)ptr);
    logged++;
    if (level == HOTSWAP_OTP_RUNTIME_LEVEL_WARN) warnings++;
}
int64_t __wasm_import_hotswap_otp_runtime_self_pid(void) { return 7; }
void __wasm_import_hotswap_otp_runtime_whereis(uint8_t *name, size_t len, uint8_t *ret) {
    (void)name, (void)len;
    ret[0] = 0;
}
void __wasm_import_hotswap_otp_runtime_send(int64_t to, uint8_t *ptr, size_t len, uint8_t *ret) {
    (void)to, (void)ptr, (void)len;
    ret[0] = 0;
}
int64_t __wasm_import_hotswap_otp_runtime_send_after(int64_t to, uint8_t *ptr, size_t len, int64_t ms) {
    (void)to, (void)ptr, (void)len, (void)ms;
    return 1;
}
int32_t __wasm_import_hotswap_otp_runtime_cancel_timer(int64_t timer) {
    (void)timer;
    return 0;
}
/* Defined by process_component_type.o in a wasm build (the world's description). */
void __component_type_object_force_link_process(void) {}

/* ---- calling the exports as the canonical ABI does: arguments malloc'd, owned by the callee ---- */

static process_list_u8_t bytes(const char *text) {
    process_list_u8_t list = {NULL, strlen(text)};
    if (list.len) {
        list.ptr = malloc(list.len);
        memcpy(list.ptr, text, list.len);
    }
    return list;
}

/* The reply, or "ERR <error>", as a string to compare (static buffer). */
static const char *result(bool ok, process_list_u8_t *ret, process_string_t *err) {
    static char out[4096];
    if (ok) {
        snprintf(out, sizeof out, "%.*s", (int)ret->len, (const char *)ret->ptr);
        process_list_u8_free(ret);
    } else {
        snprintf(out, sizeof out, "ERR %.*s", (int)err->len, (const char *)err->ptr);
        process_string_free(err);
    }
    return out;
}

static const char *call(const char *request) {
    process_list_u8_t list = bytes(request), ret = {0};
    process_string_t err = {0};
    bool ok = exports_hotswap_otp_server_handle_call(&list, 0, &ret, &err);
    return result(ok, &ret, &err);
}

static const char *init(const char *args) {
    process_list_u8_t list = bytes(args);
    process_string_t err = {0};
    bool ok = exports_hotswap_otp_server_init(&list, &err);
    process_list_u8_t none = {0};
    return result(ok, &none, &err);
}

static const char *snapshot(void) {
    process_list_u8_t ret = {0};
    process_string_t err = {0};
    bool ok = exports_hotswap_otp_server_snapshot(&ret, &err);
    return result(ok, &ret, &err);
}

static const char *code_change(bool downgrade, const char *vsn, const char *state) {
    exports_hotswap_otp_server_change_t change;
    change.tag = downgrade ? HOTSWAP_OTP_TYPES_CHANGE_DOWNGRADE : HOTSWAP_OTP_TYPES_CHANGE_UPGRADE;
    process_string_dup(downgrade ? &change.val.downgrade : &change.val.upgrade, vsn);
    process_list_u8_t blob = bytes(state), extra = bytes("");
    process_string_t err = {0};
    bool ok = exports_hotswap_otp_server_code_change(&change, &blob, &extra, &err);
    process_list_u8_t none = {0};
    return result(ok, &none, &err);
}

static void cast(const char *message) {
    process_list_u8_t list = bytes(message);
    exports_hotswap_otp_server_handle_cast(&list);
}

static void info(const char *message) {
    process_list_u8_t list = bytes(message);
    exports_hotswap_otp_server_handle_info(&list);
}

/* A fresh process: the state of the last one is dropped as on a stop. */
static void stop(void) {
    process_string_t reason;
    process_string_dup(&reason, "test");
    exports_hotswap_otp_server_terminate(&reason);
}

static void expect(const char *got, const char *want, const char *what) {
    if (strcmp(got, want) == 0) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s\n  got:  %s\n  want: %s\n", what, got, want);
    }
}

static void expect_prefix(const char *got, const char *prefix, const char *what) {
    if (strncmp(got, prefix, strlen(prefix)) == 0) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s\n  got:  %s\n  want: %s...\n", what, got, prefix);
    }
}

int main(void) {
    expect(call("{\"op\":\"count\"}"),
           "ERR handle-call called on a process that has no state: init or code-change must come first", "call before init");
    expect(init(""), "", "init with nothing");
    expect(init(""), "ERR init called on a process that already has a state", "a second init");

    expect(call("{\"op\":\"get\",\"key\":\"a\"}"), "null", "get of nothing");
    expect(call("{\"op\":\"put\",\"key\":\"a\",\"value\":42}"), "null", "first put");
    expect(last_log, "2 put a = 42", "a put is logged at info");
    expect(call("{\"op\":\"put\",\"key\":\"a\",\"value\":[1.0]}"), "42", "put replies with the value before");
    expect(call("{\"op\":\"get\",\"key\":\"a\"}"), "[1.0]", "get");
    expect(last_log, "2 get a -> [1.0]", "a get is logged at info");
    expect(call("{\"op\":\"delete\",\"key\":\"a\"}"), "[1.0]", "delete replies with the value");
    expect(call("{\"op\":\"delete\",\"key\":\"a\"}"), "null", "delete of nothing");
    for (const char *key = "bca"; *key; key++) {
        char request[64];
        snprintf(request, sizeof request, "{\"op\":\"put\",\"key\":\"%c\",\"value\":true}", *key);
        call(request);
    }
    expect(call("{\"op\":\"keys\"}"), "[\"a\",\"b\",\"c\"]", "keys sorted");
    expect(call("{\"op\":\"count\"}"), "3", "count");
    expect(snapshot(), "{\"entries\":{\"a\":true,\"b\":true,\"c\":true}}", "the state is entries");

    const char *errors[][2] = {
        {"put a 1", "ERR unknown request: not JSON: expected value at line 1 column 1"},
        {"{\"op\":\"frobnicate\"}", "ERR unknown request: unknown variant `frobnicate`"},
        {"{\"key\":\"a\"}", "ERR unknown request: missing field `op`"},
        {"{\"op\":\"get\"}", "ERR unknown request: missing field `key`"},
        {"{\"op\":\"put\",\"key\":\"a\"}", "ERR unknown request: missing field `value`"},
        {"{\"op\":\"get\",\"key\":7}", "ERR unknown request: invalid type: integer `7`"},
        {"[1]", "ERR unknown request: invalid type: sequence"},
        {"{\"op\":\"get\",\"key\":\"\xff\"}", "ERR unknown request: not JSON: invalid unicode code point"},
        /* A field the request uses, named twice, as the Rust kv refuses it. */
        {"{\"op\":\"get\",\"op\":\"get\",\"key\":\"a\"}", "ERR unknown request: duplicate field `op`"},
        {"{\"op\":\"get\",\"key\":\"a\",\"key\":\"b\"}", "ERR unknown request: duplicate field `key`"},
        {"{\"key\":\"a\",\"op\":\"get\",\"\\u006bey\":\"b\"}", "ERR unknown request: duplicate field `key`"},
        {"{\"op\":\"put\",\"key\":\"a\",\"value\":1,\"value\":2}", "ERR unknown request: duplicate field `value`"},
        {"{\"x\":\"a\\\\\",\"key\":\"a\",\"op\":\"get\",\"key\":\"b\"}", "ERR unknown request: duplicate field `key`"},
        {"[\"get\",\"a\"]", "ERR unknown request: invalid type: sequence, expected internally tagged enum Request"},
    };
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++) expect_prefix(call(errors[i][0]), errors[i][1], errors[i][0]);
    /* A field the request does not use may come twice, as in Rust. */
    expect(call("{\"op\":\"count\",\"key\":\"a\",\"key\":\"b\"}"), "3", "count, with a key named twice");
    expect(call("{\"op\":\"get\",\"key\":\"a\",\"value\":1,\"value\":2}"), "true", "get, with a value named twice");
    expect(call("{\"x\":\"a\\\",\\\"key\\\":1\",\"op\":\"get\",\"key\":\"a\"}"), "true", "a name in a string");
    expect(call("{\"x\":[{\"key\":1},{\"key\":2}],\"op\":\"get\",\"key\":\"a\"}"), "true", "names in nested objects");

    /* The deepest value a put keeps reads back from the state; one level more is refused. */
    char deep[512];
    for (int levels = 125; levels <= 126; levels++) {
        int at = snprintf(deep, sizeof deep, "{\"op\":\"put\",\"key\":\"deep\",\"value\":{\"a\":");
        for (int i = 1; i < levels; i++) deep[at++] = '[';
        for (int i = 1; i < levels; i++) deep[at++] = ']';
        snprintf(deep + at, sizeof deep - (size_t)at, "}}");
        if (levels == 125) {
            expect(call(deep), "null", "a put 125 levels deep");
        } else {
            expect(call(deep), "ERR value nested too deep: a state keeps at most 125 levels of arrays and objects",
                   "a put 126 levels deep");
            cast(deep);
            expect(last_log, "3 ignoring the cast: value nested too deep: a state keeps at most 125 levels of arrays and objects",
                   "a cast 126 levels deep is ignored, with a warning");
        }
    }
    char state[512];
    snprintf(state, sizeof state, "%s", snapshot());
    stop();
    expect(code_change(false, "0", state), "", "the state with the deepest value reads back");
    expect(snapshot(), state, "and writes back the same");
    expect_prefix(call("{\"op\":\"delete\",\"key\":\"deep\"}"), "{\"a\":[[", "the deepest value, deleted");

    warnings = 0;
    cast("{\"op\":\"put\",\"key\":\"x\",\"value\":1}");
    info("{\"op\":\"put\",\"key\":\"y\",\"value\":2}");
    cast("{\"op\":\"delete\",\"key\":\"x\"}");
    cast("{\"op\":\"keys\"}");
    expect_prefix(last_log, "3 ignoring the cast {\"op\":\"keys\"}: only put and delete", "a cast that is not put or delete");
    info("\xff nonsense");
    expect_prefix(last_log, "3 ignoring the info message: unknown request: not JSON", "an info message that is not JSON");
    expect(warnings == 2 ? "2" : "not 2", "2", "two warnings");
    expect(snapshot(), "{\"entries\":{\"a\":true,\"b\":true,\"c\":true,\"y\":2}}", "casts and infos applied");
    stop();

    const char *args[][2] = {
        {" null ", "{\"entries\":{}}"}, {"{}", "{\"entries\":{}}"}, {"\f", "{\"entries\":{}}"},
        {"{\"entries\":{\"a\":1}}", "{\"entries\":{\"a\":1}}"},
    };
    for (size_t i = 0; i < sizeof args / sizeof args[0]; i++) {
        expect(init(args[i][0]), "", args[i][0]);
        expect(snapshot(), args[i][1], args[i][0]);
        stop();
    }
    expect_prefix(init("[1]"), "ERR bad init arguments (want nothing, null or {\"entries\":{...}}): invalid type: sequence",
                  "init refuses a list");
    expect_prefix(init("{\"entries\":null}"), "ERR bad init arguments", "init refuses null entries");

    expect(code_change(false, "0", "{\"entries\":{\"b\":\"x\",\"a\":42}}"), "", "code change from Rust");
    expect(call("{\"op\":\"get\",\"key\":\"a\"}"), "42", "the adopted state serves");
    expect(snapshot(), "{\"entries\":{\"a\":42,\"b\":\"x\"}}", "and writes back sorted");
    expect(code_change(false, "0", "{\"entries\":{}}"), "ERR code-change called on a process that already has a state",
           "a second code change");
    stop();
    const char *refused[][2] = {
        {"{x", "not JSON"}, {"[1]", "invalid type: sequence, expected struct Entries"},
        {"{\"other\":1}", "missing field `entries`"}, {"{\"entries\":[1]}", "invalid type: sequence, expected a map"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        char want[256];
        snprintf(want, sizeof want, "ERR downgrade from vsn \"2\" to vsn \"c-1\": the state does not parse: %s", refused[i][1]);
        expect_prefix(code_change(true, "2", refused[i][0]), want, refused[i][0]);
    }

    process_string_t vsn;
    exports_hotswap_otp_server_vsn(&vsn);
    char name[32];
    snprintf(name, sizeof name, "%.*s", (int)vsn.len, (const char *)vsn.ptr);
    expect(name, "c-1", "vsn");
    process_string_free(&vsn);
    (void)logged;

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
