/* The core's one error vocabulary: codes in ringmpsc.h, detail messages here. */
#ifndef RMPSC_ERROR_H
#define RMPSC_ERROR_H

/* Record a detailed message for this thread and return `code`. */
int rmpsc__set_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same with a fixed message and no formatting: for outcomes that are routine
 * in a polling loop (full, empty, timed out), which must stay cheap. */
int rmpsc__set_error_static(int code, const char *msg);
/* rmpsc__set_error(RMPSC_ESYS, "<what>: <strerror(errno)>"), keeping errno. */
int rmpsc__sys_error(const char *what);

#endif
