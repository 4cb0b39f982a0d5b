/* imp_set_log_callback() through the shared library, as an embedding C program uses it: the threshold, user_data,
 * turning logging off, a bad level, and the re-entrancy rule (a callback calling imp_set_log_callback gets
 * IMP_ERR_BAD_STATE). libimp logs one DEBUG line when a callback is set, which is what these checks observe. */
#include <imp/imp.h>

#include <stdio.h>
#include <string.h>

typedef struct {
    int n_calls;
    imp_log_level last_level;
    char last_message[256];
    imp_status nested_status; /* what imp_set_log_callback returned when called from inside the callback */
    int try_nested;
} log_sink;

static void IMP_CALL on_log(imp_log_level level, const char *message, void *user_data) {
    log_sink *sink = (log_sink *)user_data;
    sink->n_calls++;
    sink->last_level = level;
    strncpy(sink->last_message, message, sizeof sink->last_message - 1);
    sink->last_message[sizeof sink->last_message - 1] = '\0';
    if (sink->try_nested) sink->nested_status = imp_set_log_callback(NULL, NULL, IMP_LOG_ERROR);
}

static int failures = 0;
#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                          \
        }                                                                        \
    } while (0)

int main(void) {
    log_sink a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);

    /* DEBUG threshold: the "callback set" line arrives, with our user_data. */
    CHECK(imp_set_log_callback(on_log, &a, IMP_LOG_DEBUG) == IMP_OK);
    CHECK(a.n_calls == 1);
    CHECK(a.last_level == IMP_LOG_DEBUG);
    CHECK(strstr(a.last_message, imp_version()) != NULL);
    printf("log: [%d] %s\n", (int)a.last_level, a.last_message);

    /* WARN threshold: DEBUG lines are filtered out; the old sink sees nothing more. */
    CHECK(imp_set_log_callback(on_log, &b, IMP_LOG_WARN) == IMP_OK);
    CHECK(b.n_calls == 0);
    CHECK(a.n_calls == 1);

    /* A bad level is rejected and changes nothing. */
    CHECK(imp_set_log_callback(on_log, &a, (imp_log_level)7) == IMP_ERR_INVALID_ARGUMENT);
    CHECK(strlen(imp_last_error()) > 0);
    CHECK(imp_set_log_callback(on_log, &a, (imp_log_level)-1) == IMP_ERR_INVALID_ARGUMENT);
    /* Every failed call is also logged at IMP_LOG_ERROR, to the sink in place (b). */
    CHECK(b.n_calls == 2);
    CHECK(b.last_level == IMP_LOG_ERROR);
    CHECK(strstr(b.last_message, "IMP_ERR_INVALID_ARGUMENT") != NULL);
    b.n_calls = 0;

    /* A callback may not call libimp: imp_set_log_callback from inside it is refused. */
    b.try_nested = 1;
    CHECK(imp_set_log_callback(on_log, &b, IMP_LOG_DEBUG) == IMP_OK);
    CHECK(b.n_calls == 1);
    CHECK(b.nested_status == IMP_ERR_BAD_STATE);

    /* Off: nothing is called any more. */
    CHECK(imp_set_log_callback(NULL, NULL, IMP_LOG_DEBUG) == IMP_OK);
    CHECK(imp_set_log_callback(NULL, NULL, IMP_LOG_ERROR) == IMP_OK);
    CHECK(b.n_calls == 1 && a.n_calls == 1);

    if (failures) return 1;
    printf("OK: log callback contract\n");
    return 0;
}
