/* Native unit tests of the C guests' JSON (json.c): every case of json_cases.txt (what serde_json
 * makes of an input) must come out the same, errors included, plus the tree API the guests use.
 * Built and run with the host's C compiler by `scripts/build-polyglot-guests.sh test`. */
#include "../json.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

static void check(int ok, const char *what, const char *got, const char *want) {
    if (ok) {
        passed++;
    } else {
        failed++;
        printf("FAIL %s\n  got:  %s\n  want: %s\n", what, got ? got : "(null)", want ? want : "(null)");
    }
}

/* The case file's escapes: \\ \t \n \r. Returns the length. */
static size_t unescape(const char *in, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '\\' && i + 1 < len && strchr("\\tnr", in[i + 1])) {
            char c = in[++i];
            out[n++] = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : '\\';
        } else {
            out[n++] = in[i];
        }
    }
    return n;
}

static void serde_cases(const char *path) {
    FILE *file = fopen(path, "r");
    if (!file) {
        printf("FAIL cannot open %s\n", path);
        failed++;
        return;
    }
    static char line[8192], input[8192], got[8192];
    while (fgets(line, sizeof line, file)) {
        if (line[0] == '#') continue;
        line[strcspn(line, "\n")] = '\0';
        char *tab = strchr(line, '\t');
        if (!tab) continue;
        const char *want = tab + 1;
        size_t len = unescape(line, (size_t)(tab - line), input);
        char *error = NULL;
        hs_json *value = hs_json_parse((const uint8_t *)input, len, &error);
        if (value) {
            char *text = hs_json_encode(value, NULL);
            snprintf(got, sizeof got, "%s", text);
            free(text);
            hs_json_free(value);
        } else {
            /* "not JSON: " is the guests' prefix; serde_json's own message follows it. */
            snprintf(got, sizeof got, "ERR %s", strncmp(error, "not JSON: ", 10) ? error : error + 10);
            free(error);
        }
        line[tab - line] = '\0';
        check(strcmp(got, want) == 0, line, got, want);
    }
    fclose(file);
}

static void check_encoding(const hs_json *value, const char *want, const char *what) {
    char *text = hs_json_encode(value, NULL);
    check(text && strcmp(text, want) == 0, what, text, want);
    free(text);
}

static void object_api(void) {
    hs_json *object = hs_json_object();
    check(hs_json_set(object, "b", 1, hs_json_int(2)) == NULL, "set new b", NULL, NULL);
    check(hs_json_set(object, "a", 1, hs_json_string("x")) == NULL, "set new a", NULL, NULL);
    check(hs_json_set(object, "\xc3\xa9", 2, hs_json_null()) == NULL, "set new e-acute", NULL, NULL);
    check(hs_json_set(object, "ab", 2, hs_json_float(1)) == NULL, "set new ab", NULL, NULL);
    check_encoding(object, "{\"a\":\"x\",\"ab\":1.0,\"b\":2,\"\xc3\xa9\":null}", "keys sorted by bytes");
    hs_json *previous = hs_json_set(object, "a", 1, hs_json_uint(18446744073709551615ULL));
    check_encoding(previous, "\"x\"", "set hands back the value it replaced");
    hs_json_free(previous);
    check_encoding(hs_json_get(object, "a"), "18446744073709551615", "get sees the new value");
    check(hs_json_get(object, "zz") == NULL, "get of an absent key", NULL, NULL);
    hs_json *copy = hs_json_clone(object);
    hs_json *removed = hs_json_remove(object, "b", 1);
    check_encoding(removed, "2", "remove hands back the value");
    hs_json_free(removed);
    check(hs_json_remove(object, "b", 1) == NULL, "remove of an absent key", NULL, NULL);
    check_encoding(object, "{\"a\":18446744073709551615,\"ab\":1.0,\"\xc3\xa9\":null}", "after remove");
    check_encoding(copy, "{\"a\":18446744073709551615,\"ab\":1.0,\"b\":2,\"\xc3\xa9\":null}", "a clone is deep");
    hs_json_free(copy);
    hs_json_free(object);

    hs_json *string = hs_json_string_n("a\0b\x1f\x7f", 5);
    check_encoding(string, "\"a\\u0000b\\u001f\x7f\"", "NUL and control characters escaped, DEL not");
    hs_json_free(string);
    hs_json *big = hs_json_int(INT64_MIN);
    check_encoding(big, "-9223372036854775808", "i64 min");
    hs_json_free(big);
}

static void describe(void) {
    const char *cases[][2] = {
        {"7", "integer `7`"}, {"-7", "integer `-7`"}, {"1.5", "floating point `1.5`"},
        {"\"x\"", "string \"x\""}, {"[1]", "sequence"}, {"{}", "map"}, {"null", "null"},
        {"true", "boolean `true`"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hs_json *value = hs_json_parse((const uint8_t *)cases[i][0], strlen(cases[i][0]), NULL);
        char *text = hs_json_describe(value);
        check(text && strcmp(text, cases[i][1]) == 0, cases[i][0], text, cases[i][1]);
        free(text);
        hs_json_free(value);
    }
}

static void invalid_utf8(void) {
    const char *inputs[] = {"\"\xff\"", "\"\xc0\xaf\"", "\"\xed\xa0\x80\"", "\"\xe2\x82\"", "\xef\xbb\xbf" "1"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        char *error = NULL;
        hs_json *value = hs_json_parse((const uint8_t *)inputs[i], strlen(inputs[i]), &error);
        check(value == NULL && error && strncmp(error, "not JSON: ", 10) == 0, "invalid UTF-8 refused", error, "not JSON: ...");
        hs_json_free(value);
        free(error);
    }
}

int main(int argc, char **argv) {
    serde_cases(argc > 1 ? argv[1] : "json_cases.txt");
    object_api();
    describe();
    invalid_utf8();
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
