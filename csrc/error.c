#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "ringmpsc.h"

static _Thread_local char last_error[256];
static _Thread_local const char *last_static; /* when set, the message instead of last_error */

const char *rmpsc_strerror(int err)
{
	switch (err) {
	case RMPSC_OK: return "success";
	case RMPSC_EFULL: return "full";
	case RMPSC_EEMPTY: return "empty";
	case RMPSC_ECLOSED: return "closed";
	case RMPSC_ETIMEDOUT: return "timed out";
	case RMPSC_ENOSLOT: return "no free producer slot";
	case RMPSC_ECONSUMER: return "consumer role held by another process";
	case RMPSC_EINVAL: return "invalid argument";
	case RMPSC_ECORRUPT: return "corrupt or incompatible region";
	case RMPSC_ESYS: return "system error";
	case RMPSC_EFORKED: return "handle belongs to another process";
	case RMPSC_EINTR: return "interrupted";
	default: return "unknown error";
	}
}

const char *rmpsc_last_error(void)
{
	if (last_static)
		return last_static;
	return last_error[0] ? last_error : "no error";
}

int rmpsc__set_error_static(int code, const char *msg)
{
	last_static = msg;
	return code;
}

int rmpsc__set_error(int code, const char *fmt, ...)
{
	int saved = errno;
	va_list ap;
	last_static = NULL;
	va_start(ap, fmt);
	vsnprintf(last_error, sizeof last_error, fmt, ap);
	va_end(ap);
	errno = saved;
	return code;
}

int rmpsc__sys_error(const char *what)
{
	int saved = errno;
	rmpsc__set_error(RMPSC_ESYS, "%s: %s", what, strerror(saved));
	errno = saved;
	return RMPSC_ESYS;
}
