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
 *   channel.c   the Channel type (construction, properties, stats, groups)
 *   consumer.c  the consumer methods Channel and Consumer share, and the Consumer type
 *   producer.c  the Producer type
 *   span.c      Reservation and ReadView (one struct, two types)
 *   pickle.c    ringmpsc.Queue's default pickling, for Producer._send_object and _recv_objects
 *   block.c     MessageBuffer: large received messages in memory recycled within the process
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

/* Memory of large received messages, kept for the next (block.c). */
#define BLOCK_CACHE_SLOTS 8
#define BLOCK_CACHE_BYTES (64u << 20)
struct block_cache {
	char *ptr[BLOCK_CACHE_SLOTS];
	size_t cap[BLOCK_CACHE_SLOTS];
	size_t bytes;
	int n;
	int open; /* 0 once the module is cleared: memory returned then is freed */
};

typedef struct {
	PyObject *Error;
	PyObject *Full;
	PyObject *Empty;
	PyObject *Closed;
	PyObject *TooManyProducers;
	PyObject *ConsumerBusy;
	PyObject *CorruptRegion;
	PyTypeObject *ChannelType;
	PyTypeObject *ConsumerType;
	PyTypeObject *ProducerType;
	PyTypeObject *ReservationType;
	PyTypeObject *ReadViewType;
	PyTypeObject *BlockType;  /* MessageBuffer (block.c) */
	struct block_cache blocks;
	PyObject *str_release;    /* interned "release" */
	/* ringmpsc.Queue's default serialisation (pickle.c): pickle's functions, imported on first use. */
	PyObject *pickle_dumps, *pickle_loads, *PicklingError;
	PyObject *dumps_kwnames;  /* ("buffer_callback",) */
	PyObject *int_protocol;   /* 5 */
	unsigned long fork_gen;   /* bumped in a forked child */
	struct glock *glocks;     /* the membership locks of this process (consumer.c) */
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

/*
 * The lock of this process's membership in one group of one region: the core lets
 * handles of one process in one group share a member place (its membership is per
 * process and group, its attachment per region file), and one thread at a time
 * call the consumer functions of them. Every Channel object on the region (made
 * by name, by descriptor, or inherited) and every Consumer made from one of them
 * for the same group takes this one lock. Found in module state by the region
 * file's (st_dev, st_ino), as the core finds its attachment, and the group's name;
 * counted by its users; changed under the GIL only.
 */
typedef struct glock {
	hlock lock;
	struct glock *next;
	Py_ssize_t users;
	uint64_t dev, ino;          /* the region file */
	int ready_fd;               /* the membership's readiness fd as last returned under the lock; -1: none */
	unsigned long ready_gen;    /* the fork generation it was returned in */
	char group[RMPSC_GROUP_NAME_MAX + 1];
} glock;

/*
 * What the consumer methods (consumer.c) work on, the first member of Channel and
 * of Consumer alike, so that one implementation of each method serves both types.
 */
typedef struct {
	rmpsc_channel *ch;           /* the C handle consumer calls use; NULL once a Consumer is closed */
	modstate *st;                /* Py_TYPE may be a Python subclass without module state */
	glock *gl;                   /* the lock of the membership the handle is in */
	struct rmpsc_config cfg;
	uint32_t deliveries;         /* of the records the last receive returned; 0 before any */
} consumer_side;

typedef struct {
	PyObject_HEAD
	consumer_side cs;            /* first: see consumer_side */
} ConsumerBase;

#define CS(obj) (&((ConsumerBase *)(obj))->cs)

typedef struct ChannelObject {
	PyObject_HEAD
	consumer_side cs;            /* the channel's own handle, a member of the default group */
	PyObject *name;              /* str or None */
	uint64_t dev, ino;           /* the region file's identity: the key of its membership locks */
	PyObject *weakrefs;
} ChannelObject;

/* A member of a named group: its own C handle on the Channel's region (Channel.consumer()). */
typedef struct {
	PyObject_HEAD
	consumer_side cs;            /* cs.ch: NULL once closed */
	ChannelObject *chan;         /* keeps the Channel (and its lock list) alive */
	PyObject *group;             /* str: the group's name */
	unsigned flags;              /* RMPSC_GROUP_* it joined with */
	PyObject *weakrefs;
} ConsumerObject;

typedef struct {
	PyObject_HEAD
	rmpsc_producer *p;           /* NULL once closed */
	ChannelObject *chan;
	hlock lock;
	int ready_fd;                /* the readiness fd as last returned under the lock; -1: none */
	unsigned long gen;           /* fork generation at registration */
	long pid;                    /* registering process */
	uint32_t slot;
	PyObject *weakrefs;
} ProducerObject;

/* An open reservation (Producer) or readable span (Channel, Consumer): one struct, two types. */
typedef struct {
	PyObject_HEAD
	PyObject *owner;             /* ProducerObject, or a Channel or Consumer (a ConsumerBase) */
	char *ptr;
	Py_ssize_t k;                /* records granted / readable */
	Py_ssize_t nbytes;
	Py_ssize_t exports;          /* live buffer exports */
	PyObject *view;              /* weakref to the memoryview __enter__ returned */
	uint32_t slot;
	uint32_t deliveries;         /* ReadView: 1 first delivery, more when delivered again */
	uint64_t position;           /* ReadView: the ring position of its first record */
	unsigned long gen;           /* the fork generation it was opened in */
	int done;
	PyObject *weakrefs;          /* ringmpsc._aio notes the ReadViews it hands out, weakly */
} SpanObject;

/* errors.c: the one mapping of the C error vocabulary to Python exceptions. */
#define RC_PYERR (-1000)     /* not a core code: a Python exception is already set */
enum side { ON_SEND, ON_RECV, ON_SEND_BYTES, ON_PENDING, ON_OTHER };
void raise_rc(modstate *st, int rc, int err, enum side side, PyObject *name);

/* pickle.c: ringmpsc.Queue's default serialisation in C (the wire format is queue.py's). */
#define OUT_OF_BAND_FROM (64 * 1024) /* contiguous pickle buffers this long go out of band */
#define OOB_TAG          2           /* the first byte of a message with buffers out of band (1: 0.6.0's, unaligned) */
#define OOB_ALIGN        64          /* each out-of-band buffer starts at a multiple of this in its message */
#define PICKLE_PROTO     0x80        /* the first byte of a pickle of protocol 2 or more */
int pickle_init(PyObject *module);   /* module exec: _dumps_message, constants */
int pickle_import(modstate *st);     /* pickle's dumps, loads and PicklingError into st, once */
/* obj pickled as a Queue message: bytes (a plain pickle), or a list of the parts of a message with
 * buffers out of band (bytes-like: its header, the pickle, padding, and the buffers' own memory);
 * NULL with pickle's exception. */
PyObject *pickle_message(modstate *st, PyObject *obj);
/* The fast codec for common objects (pickle.c): the same pickles, without pickle's per-call setup.
 * fast_dumps: the pickle's length in buf, or -1 (not one of those objects, or longer than size);
 * fast_loads: the object, or NULL (no exception): call pickle.loads. */
#define FAST_DUMPS_MAX 4096
Py_ssize_t fast_dumps(PyObject *obj, char *buf, Py_ssize_t size);
PyObject *fast_loads(const char *data, Py_ssize_t len);
int pickle_traverse(modstate *st, visitproc visit, void *arg);
void pickle_clear(modstate *st);

/* block.c: MessageBuffer, a writable buffer of len bytes in recycled memory (NULL with an exception). */
PyObject *block_new(modstate *st, Py_ssize_t len);
char *block_data(PyObject *block);
void block_cache_open(modstate *st);  /* module exec */
void block_cache_close(modstate *st); /* module clear: frees what is cached */

/* Shared method bodies. */
PyObject *self_enter(PyObject *self, PyObject *unused);
PyObject *not_picklable(PyObject *self, PyObject *unused);
extern const char enter_doc[];

/* consumer.c: the membership locks, the Consumer constructor, and the consumer
 * methods both types share (one implementation, in both method tables). */
glock *glock_get(modstate *st, uint64_t dev, uint64_t ino, const char *group);
void glock_put(modstate *st, glock *gl);
PyObject *consumer_new(ChannelObject *chan, PyObject *group, unsigned flags);
extern const char CONSUMER_BUSY[]; /* RuntimeError: this thread holds the group's lock (a ReadView) */
PyObject *cs_recv(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *cs_recv_nowait(PyObject *self, PyObject *unused);
PyObject *cs_recv_many(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *cs_recv_into(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *cs_read(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *cs_recv_bytes(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *cs_recv_messages(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *cs_recv_objects(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *cs_iternext(PyObject *self);
Py_ssize_t cs_len(PyObject *self);
PyObject *cs_get_last_deliveries(PyObject *self, void *c);
PyObject *cs_ready_fd(PyObject *self, PyObject *unused);
PyObject *cs_ready_arm(PyObject *self, PyObject *unused);
PyObject *cs_ready_disarm(PyObject *self, PyObject *unused);
PyObject *cs_ready_fd_try(PyObject *self, PyObject *unused);
PyObject *cs_ready_fd_cached(PyObject *self, PyObject *unused);
PyObject *cs_ready_arm_try(PyObject *self, PyObject *unused);
PyObject *cs_ready_disarm_try(PyObject *self, PyObject *fd);
int same_file(int a, int b);
PyObject *cs_set_coalesce(PyObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *cs_get_coalesce(PyObject *self, void *c);
extern const char cs_recv_doc[], cs_recv_nowait_doc[], cs_recv_many_doc[], cs_recv_into_doc[], cs_read_doc[],
	cs_recv_bytes_doc[], cs_recv_messages_doc[], cs_recv_objects_doc[], cs_ready_fd_doc[], cs_ready_arm_doc[], cs_ready_disarm_doc[], cs_set_coalesce_doc[];
/* ready_arm's answer as seconds (0.0 ready now, inf armed without limit, else the linger). */
PyObject *arm_result(int rc, int64_t wait_ns);

/* aio.c: the coroutine methods, handed to the pure-Python ringmpsc._aio. */
PyObject *cs_recv_async(PyObject *self, PyObject *args, PyObject *kwds);
PyObject *cs_recv_many_async(PyObject *self, PyObject *args, PyObject *kwds);
PyObject *cs_read_async(PyObject *self, PyObject *args, PyObject *kwds);
PyObject *cs_recv_bytes_async(PyObject *self, PyObject *args, PyObject *kwds);
PyObject *cs_anext(PyObject *self);
PyObject *producer_send_async(PyObject *self, PyObject *args, PyObject *kwds);
PyObject *producer_send_bytes_async(PyObject *self, PyObject *args, PyObject *kwds);
extern const char cs_recv_async_doc[], cs_recv_many_async_doc[], cs_read_async_doc[], cs_recv_bytes_async_doc[],
	producer_send_async_doc[], producer_send_bytes_async_doc[];
/* The handle of `self` was closed or left its membership: wake the coroutines
 * waiting on it (ringmpsc._aio._changed, when _aio is loaded), so that they look
 * again at once. Never fails: an error is reported as unraisable. */
void aio_changed(PyObject *self);
/* Module exec: the type of the coroutines the *_async methods return. */
int aio_init(PyObject *module);
/* The docs of the readiness calls the coroutines make (never waiting for another thread). */
extern const char ready_fd_try_doc[], ready_fd_cached_doc[], ready_arm_try_doc[], ready_disarm_try_doc[];

#define CONSUMER_SIDE_METHODS                                                                                           \
	{ "recv", (PyCFunction)(void (*)(void))cs_recv, METH_FASTCALL | METH_KEYWORDS, cs_recv_doc },                   \
	{ "recv_nowait", (PyCFunction)cs_recv_nowait, METH_NOARGS, cs_recv_nowait_doc },                                \
	{ "recv_many", (PyCFunction)(void (*)(void))cs_recv_many, METH_FASTCALL | METH_KEYWORDS, cs_recv_many_doc },    \
	{ "recv_into", (PyCFunction)(void (*)(void))cs_recv_into, METH_FASTCALL | METH_KEYWORDS, cs_recv_into_doc },    \
	{ "read", (PyCFunction)(void (*)(void))cs_read, METH_FASTCALL | METH_KEYWORDS, cs_read_doc },                   \
	{ "recv_bytes", (PyCFunction)(void (*)(void))cs_recv_bytes, METH_FASTCALL | METH_KEYWORDS, cs_recv_bytes_doc }, \
	{ "recv_messages", (PyCFunction)(void (*)(void))cs_recv_messages, METH_FASTCALL | METH_KEYWORDS,                \
	  cs_recv_messages_doc },                                                                                       \
	{ "_recv_objects", (PyCFunction)(void (*)(void))cs_recv_objects, METH_FASTCALL | METH_KEYWORDS,                 \
	  cs_recv_objects_doc },                                                                                        \
	{ "ready_fd", (PyCFunction)cs_ready_fd, METH_NOARGS, cs_ready_fd_doc },                                         \
	{ "ready_arm", (PyCFunction)cs_ready_arm, METH_NOARGS, cs_ready_arm_doc },                                      \
	{ "ready_disarm", (PyCFunction)cs_ready_disarm, METH_NOARGS, cs_ready_disarm_doc },                             \
	{ "_ready_fd_try", (PyCFunction)cs_ready_fd_try, METH_NOARGS, ready_fd_try_doc },                               \
	{ "_ready_fd_cached", (PyCFunction)cs_ready_fd_cached, METH_NOARGS, ready_fd_cached_doc },                      \
	{ "_ready_arm_try", (PyCFunction)cs_ready_arm_try, METH_NOARGS, ready_arm_try_doc },                            \
	{ "_ready_disarm_try", (PyCFunction)cs_ready_disarm_try, METH_O, ready_disarm_try_doc },                        \
	{ "set_coalesce", (PyCFunction)(void (*)(void))cs_set_coalesce, METH_FASTCALL | METH_KEYWORDS,                  \
	  cs_set_coalesce_doc },                                                                                        \
	{ "recv_async", (PyCFunction)(void (*)(void))cs_recv_async, METH_VARARGS | METH_KEYWORDS, cs_recv_async_doc },  \
	{ "recv_many_async", (PyCFunction)(void (*)(void))cs_recv_many_async, METH_VARARGS | METH_KEYWORDS,             \
	  cs_recv_many_async_doc },                                                                                     \
	{ "read_async", (PyCFunction)(void (*)(void))cs_read_async, METH_VARARGS | METH_KEYWORDS, cs_read_async_doc },  \
	{ "recv_bytes_async", (PyCFunction)(void (*)(void))cs_recv_bytes_async, METH_VARARGS | METH_KEYWORDS,           \
	  cs_recv_bytes_async_doc }

#define COALESCE_DOC                                                                                      \
	"(min_records, max_delay seconds) of this handle's wake-up coalescing (set_coalesce); (1, 0.0) or a " \
	"0.0 delay: off."

#define LAST_DELIVERIES_DOC                                                                                \
	"How many times the records the last successful receive returned (recv, recv_many, recv_into, read, " \
	"recv_bytes) had been delivered: 1 the first time, more when a member of the group died holding "     \
	"them (max over the spans of one call); 0 before any."

/* The type specs, one per type file. */
extern PyType_Spec channel_spec;
extern PyType_Spec consumer_spec;
extern PyType_Spec producer_spec;
extern PyType_Spec reservation_spec;
extern PyType_Spec readview_spec;
extern PyType_Spec block_spec;

#endif
