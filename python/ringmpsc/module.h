/*
 * ringmpsc._ringmpsc — the CPython binding of the C core (csrc/).
 *
 * Shape (as CPython's Modules/_sqlite/ and _queue do it): heap types made with
 * PyType_FromModuleAndSpec, every exception and type in module state, multi-phase
 * init, no process globals. One file per concept:
 *
 *   module.h    this header: module state, the objects, what the files share
 *   module.c    module init, exceptions, module-level functions
 *   errors.c    the one table from RMPSC_E* codes to exceptions (raise_rc)
 *   args.c/.h   argument conversion (timeouts, ints, names, buffers, FASTCALL)
 *   blocking.c/.h  waits in GIL-free slices, Ctrl-C, the per-object lock
 *   channel.c   the Channel type (construction, consumer side)
 *   producer.c  the Producer type
 *   span.c      Reservation and ReadView (one struct, two types)
 *
 * A binding converts types and maps errors. Waiting, spinning before a sleep,
 * taking every available record in one call and reporting an error met after
 * records were taken are the core's; the binding only cuts waits into slices so
 * that Ctrl-C works with the GIL released (blocking.h).
 *
 * Fork: the package registers _after_fork_child with os.register_at_fork; it bumps
 * a generation in module state. A lock of an older generation is reset (a parent
 * thread may have held it at fork time), and a Producer made in an older
 * generation raises Error (the C core would return RMPSC_EFORKED as well).
 */
#ifndef RINGMPSC_PY_MODULE_H
#define RINGMPSC_PY_MODULE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <stdint.h>

#include "ringmpsc.h"

#define BIG_COPY     (256 * 1024)          /* copies larger than this release the GIL */
#define OPEN_FLAGS   RMPSC_OPEN_INTERRUPTIBLE

#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#define NOINLINE __attribute__((noinline))
#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#else
#define ALWAYS_INLINE inline
#define NOINLINE
#define likely(x)   (x)
#define unlikely(x) (x)
#endif

#if PY_VERSION_HEX < 0x030A0000
static inline PyObject *compat_newref(PyObject *o)
{
	Py_INCREF(o);
	return o;
}
#define Py_NewRef(o) compat_newref((PyObject *)(o))
#endif
/* 3.9 has neither flag: its types stay mutable, and tp_new = NULL refuses "T()". */
#ifndef Py_TPFLAGS_IMMUTABLETYPE
#define Py_TPFLAGS_IMMUTABLETYPE 0
#endif
#ifndef Py_TPFLAGS_DISALLOW_INSTANTIATION
#define Py_TPFLAGS_DISALLOW_INSTANTIATION 0
#endif

typedef struct {
	PyObject *Error;
	PyObject *Full;
	PyObject *Empty;
	PyObject *Closed;
	PyObject *TooManyProducers;
	PyObject *ConsumerBusy;
	PyObject *CorruptRegion;
	PyTypeObject *ChannelType;
	PyTypeObject *ProducerType;
	PyTypeObject *ReservationType;
	PyTypeObject *ReadViewType;
	PyObject *str_release;    /* interned "release" */
	unsigned long fork_gen;   /* bumped in a forked child */
} modstate;

extern struct PyModuleDef ringmpsc_module_def;

/* The state of a type made by this module (not of a Python subclass). */
static inline modstate *state_of_type(PyTypeObject *tp)
{
	return (modstate *)PyType_GetModuleState(tp);
}

#define STATE(obj) state_of_type(Py_TYPE(obj))

/* The state of Channel or of a Python subclass of it; NULL with an exception. */
modstate *state_of_subtype(PyTypeObject *tp);

/* A lock taken by one thread at a time, without atomics or system calls (blocking.h). */
typedef struct {
	unsigned long owner;   /* thread ident of the holder, 0 when free */
	uint32_t seq;          /* bumped by a release that has waiters (futex word) */
	uint32_t waiters;      /* threads between noting seq and re-checking */
	unsigned long gen;     /* fork generation the lock was made in */
} hlock;

typedef struct {
	PyObject_HEAD
	rmpsc_channel *ch;
	modstate *st;                /* Py_TYPE may be a Python subclass without module state */
	PyObject *name;              /* str or None */
	struct rmpsc_config cfg;
	hlock lock;                  /* consumer side of this handle */
	PyObject *weakrefs;
} ChannelObject;

typedef struct {
	PyObject_HEAD
	rmpsc_producer *p;           /* NULL once closed */
	ChannelObject *chan;
	hlock lock;
	unsigned long gen;           /* fork generation at registration */
	long pid;                    /* registering process */
	uint32_t slot;
	PyObject *weakrefs;
} ProducerObject;

/* An open reservation (Producer) or readable span (Channel): one struct, two types. */
typedef struct {
	PyObject_HEAD
	PyObject *owner;             /* ProducerObject or ChannelObject */
	char *ptr;
	Py_ssize_t k;                /* records granted / readable */
	Py_ssize_t nbytes;
	Py_ssize_t exports;          /* live buffer exports */
	PyObject *view;              /* weakref to the memoryview __enter__ returned */
	uint32_t slot;
	int done;
} SpanObject;

/* errors.c: the one mapping of the C error vocabulary to Python exceptions. */
#define RC_PYERR (-1000)     /* not a core code: a Python exception is already set */
enum side { ON_SEND, ON_RECV, ON_SEND_BYTES, ON_OTHER };
void raise_rc(modstate *st, int rc, int err, enum side side, PyObject *name);

/* Shared method bodies. */
PyObject *self_enter(PyObject *self, PyObject *unused);
PyObject *not_picklable(PyObject *self, PyObject *unused);
extern const char enter_doc[];

/* The type specs, one per type file. */
extern PyType_Spec channel_spec;
extern PyType_Spec producer_spec;
extern PyType_Spec reservation_spec;
extern PyType_Spec readview_spec;

#endif
