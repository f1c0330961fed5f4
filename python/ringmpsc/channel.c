/*
 * The Channel type: construction, properties, and the consumer side.
 *
 * Channel may be subclassed from Python (users subclass queues): a subclass has
 * no module state of its own, so each object keeps its module's (self->cs.st).
 *
 * The consumer methods (recv, read, ...) are consumer.c's, shared with Consumer.
 */
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"
#include "blocking.h"

#define CSTATE(self) (((ChannelObject *)(self))->cs.st)

/* ------------------------------------------------------------------------- */
/* Channel: construction. */

/* A new object of `type` (Channel or a subclass) owning the handle `c`. */
static PyObject *channel_wrap(PyTypeObject *type, modstate *st, rmpsc_channel *c, PyObject *name)
{
	ChannelObject *self = (ChannelObject *)type->tp_alloc(type, 0);
	if (!self) {
		rmpsc_channel_release(c);
		return NULL;
	}
	self->cs.ch = c;
	self->cs.st = st;
	rmpsc_channel_config(c, &self->cs.cfg);
	/* Every Channel object on this region file in this process shares the
	 * membership locks, as the core shares the membership (module.h). */
	struct stat sb;
	if (fstat(rmpsc_channel_fd(c), &sb) < 0) {
		PyErr_SetFromErrno(PyExc_OSError);
		Py_DECREF(self);
		return NULL;
	}
	self->dev = (uint64_t)sb.st_dev;
	self->ino = (uint64_t)sb.st_ino;
	if (!(self->cs.gl = glock_get(st, self->dev, self->ino, RMPSC_DEFAULT_GROUP))) {
		Py_DECREF(self);
		return NULL;
	}
	const char *cname = rmpsc_channel_name(c);
	if (name && name != Py_None) {
		self->name = Py_NewRef(name);
	} else if (cname) {
		self->name = PyUnicode_DecodeFSDefault(cname);
		if (!self->name) {
			Py_DECREF(self);
			return NULL;
		}
	} else {
		self->name = Py_NewRef(Py_None);
	}
	return (PyObject *)self;
}

PyDoc_STRVAR(channel_doc,
"Channel(record_size, capacity=4096, max_producers=16, *, name=None, slab_size=0, slabs=0,\n\
        full_fences=False, max_consumers=1, max_groups=None, mode=0o600, group=None)\n\
--\n\
\n\
A multi-producer channel of fixed-size records in one shared memory region.\n\
\n\
Each producer gets its own lock-free ring of `capacity` records (a power of two);\n\
consumers sweep the rings. Order is FIFO per producer, none across producers.\n\
With name=None the region is anonymous (memfd): it reaches other processes by\n\
fork or by multiprocessing (file-descriptor passing). With a name it is a POSIX\n\
shared-memory object (/dev/shm/NAME) that processes with read and write\n\
permission on it attach with Channel.open(name); an existing name is never\n\
overwritten (FileExistsError) and only unlink() removes it. mode (at least 0o600;\n\
set exactly, the umask does not apply) and group (a gid or a group name; None: the\n\
creator's) say who may open the region: e.g. mode=0o660, group='www-data' for\n\
nginx workers and a consumer of another user in that group. slab_size and slabs > 0 add a pool for variable-length\n\
messages (send_bytes/recv_bytes).\n\
\n\
Consumers are members of groups. A process calling a consumer method of the\n\
Channel (recv*, read, iteration) is a member of the default group, joined by\n\
that first call; consumer(group) makes a Consumer for another group. Every group\n\
receives every record committed after its creation; inside a group each record\n\
goes to one member. max_consumers (1..MAX_CONSUMERS) is how many members the\n\
channel has room for: with the default 1, one process consumes and another gets\n\
ConsumerBusy; with more, that many processes share the work. max_groups\n\
(1..MAX_GROUPS; None or 0: as many as max_consumers, at most MAX_GROUPS) is how\n\
many groups can exist at once.");
static PyObject *channel_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "record_size",   "capacity",   "max_producers", "name", "slab_size", "slabs",
				  "full_fences",   "max_consumers", "max_groups", "mode", "group",     NULL };
	modstate *st = state_of_subtype(type);
	if (!st)
		return NULL;
	PyObject *o_rs, *o_cap = NULL, *o_mp = NULL, *o_name = Py_None, *o_ss = NULL, *o_sc = NULL, *o_mc = NULL,
		 *o_mg = Py_None, *o_mode = NULL, *o_group = Py_None;
	int full_fences = 0;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OO$OOOpOOOO:Channel", kwlist, &o_rs, &o_cap, &o_mp, &o_name,
					 &o_ss, &o_sc, &full_fences, &o_mc, &o_mg, &o_mode, &o_group))
		return NULL;
	long long rs, cap = 4096, mp = 16, ss = 0, sc = 0, mc = 1, mg = 0;
	if (parse_int(o_rs, "record_size", 1, RMPSC_MAX_RECORD_SIZE, &rs) < 0)
		return NULL;
	if (o_cap && parse_int(o_cap, "capacity", RMPSC_MIN_CAPACITY, RMPSC_MAX_CAPACITY, &cap) < 0)
		return NULL;
	if (cap & (cap - 1)) {
		PyErr_Format(PyExc_ValueError, "capacity must be a power of two, got %lld", cap);
		return NULL;
	}
	if (o_mp && parse_int(o_mp, "max_producers", 1, RMPSC_MAX_PRODUCERS, &mp) < 0)
		return NULL;
	if (o_ss && parse_int(o_ss, "slab_size", 0, RMPSC_MAX_SLAB_SIZE, &ss) < 0)
		return NULL;
	if (o_sc && parse_int(o_sc, "slabs", 0, RMPSC_MAX_SLAB_COUNT, &sc) < 0)
		return NULL;
	if ((ss == 0) != (sc == 0)) {
		PyErr_Format(PyExc_ValueError, "slab_size (%lld) and slabs (%lld) must both be 0 or both be > 0", ss, sc);
		return NULL;
	}
	if (o_mc && parse_int(o_mc, "max_consumers", 1, RMPSC_MAX_CONSUMERS, &mc) < 0)
		return NULL;
	if (o_mg != Py_None && parse_int(o_mg, "max_groups", 0, RMPSC_MAX_GROUPS, &mg) < 0)
		return NULL;
	if (sc && rs < 4) {
		PyErr_Format(PyExc_ValueError, "record_size must be >= 4 to carry slab handles, got %lld", rs);
		return NULL;
	}
	long long mode = 0600, gid = 0;
	if (o_mode && parse_int(o_mode, "mode", 0, 0777, &mode) < 0)
		return NULL;
	if (o_group != Py_None && parse_group(o_group, &gid) < 0)
		return NULL;
	const char *name = NULL;
	if (o_name != Py_None && !(name = parse_name(o_name, "name")))
		return NULL;
	struct rmpsc_config cfg = {
		.record_size = (uint32_t)rs,
		.capacity = (uint32_t)cap,
		.max_producers = (uint32_t)mp,
		.slab_size = (uint32_t)ss,
		.slab_count = (uint32_t)sc,
		.start_position = 0,
		.max_consumers = (uint32_t)mc,
		.max_groups = (uint32_t)mg,
		.mode = (uint32_t)mode,
		.gid = (uint32_t)gid,
	};
	rmpsc_channel *c = NULL;
	int rc, err;
	/* ftruncate + posix_fallocate of a large region can take a while. */
	Py_BEGIN_ALLOW_THREADS
	rc = rmpsc_channel_create(&c, name, &cfg, OPEN_FLAGS | (full_fences ? RMPSC_CREATE_FULL_FENCES : 0));
	err = errno;
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		raise_rc(st, rc, err, ON_OTHER, o_name);
		return NULL;
	}
	return channel_wrap(type, st, c, NULL);
}

PyDoc_STRVAR(channel_open_doc,
"open($type, /, name)\n--\n\n\
Attach to an existing named channel. The region is validated first: a corrupt,\n\
truncated or incompatible one raises CorruptRegion; a missing one\n\
FileNotFoundError.");
static PyObject *channel_open(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "name", NULL };
	modstate *st = state_of_subtype(type);
	if (!st)
		return NULL;
	PyObject *o_name;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:open", kwlist, &o_name))
		return NULL;
	const char *name = parse_name(o_name, "name");
	if (!name)
		return NULL;
	rmpsc_channel *c = NULL;
	int rc, err;
	Py_BEGIN_ALLOW_THREADS
	rc = rmpsc_channel_open(&c, name, OPEN_FLAGS);
	err = errno;
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		raise_rc(st, rc, err, ON_OTHER, o_name);
		return NULL;
	}
	return channel_wrap(type, st, c, NULL);
}

PyDoc_STRVAR(channel_from_fd_doc,
"_from_fd($type, /, fd, name=None)\n--\n\n\
Attach to a channel by file descriptor (dup'ed; the caller keeps fd). Used when a\n\
Channel is unpickled by multiprocessing.");
static PyObject *channel_from_fd(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "fd", "name", NULL };
	modstate *st = state_of_subtype(type);
	if (!st)
		return NULL;
	PyObject *o_fd, *o_name = Py_None;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|O:_from_fd", kwlist, &o_fd, &o_name))
		return NULL;
	long long fd;
	if (parse_int(o_fd, "fd", 0, INT32_MAX, &fd) < 0)
		return NULL;
	if (o_name != Py_None && !parse_name(o_name, "name"))
		return NULL;
	rmpsc_channel *c = NULL;
	int rc, err;
	Py_BEGIN_ALLOW_THREADS
	rc = rmpsc_channel_attach_fd(&c, (int)fd, OPEN_FLAGS);
	err = errno;
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		raise_rc(st, rc, err, ON_OTHER, NULL);
		return NULL;
	}
	return channel_wrap(type, st, c, o_name);
}

static void channel_dealloc(ChannelObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (self->cs.ch)
		rmpsc_channel_release(self->cs.ch); /* leaves the default group if a member */
	if (self->cs.gl)
		self->cs.gl->ready_fd = -1; /* the FIFO may have gone with the membership */
	glock_put(self->cs.st, self->cs.gl);
	Py_XDECREF(self->name);
	tp->tp_free(self);
	Py_DECREF(tp);
}

/* ------------------------------------------------------------------------- */
/* Channel: properties and plain methods. */

static PyObject *channel_get_record_size(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cs.cfg.record_size);
}
static PyObject *channel_get_capacity(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cs.cfg.capacity);
}
static PyObject *channel_get_max_producers(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cs.cfg.max_producers);
}
static PyObject *channel_get_slab_size(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cs.cfg.slab_size);
}
static PyObject *channel_get_slabs(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cs.cfg.slab_count);
}
static PyObject *channel_get_message_max(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLongLong(rmpsc_message_max(self->cs.ch));
}
static PyObject *channel_get_max_consumers(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cs.cfg.max_consumers);
}
static PyObject *channel_get_max_groups(ChannelObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->cs.cfg.max_groups);
}
static PyObject *channel_get_group(ChannelObject *self, void *c)
{
	const char *g = rmpsc_consumer_group(self->cs.ch);
	if (!g)
		Py_RETURN_NONE;
	return PyUnicode_FromString(g);
}
static PyObject *channel_get_name(ChannelObject *self, void *c)
{
	return Py_NewRef(self->name);
}
static PyObject *channel_get_closed(ChannelObject *self, void *c)
{
	return PyBool_FromLong(rmpsc_channel_is_closed(self->cs.ch));
}

PyDoc_STRVAR(channel_fileno_doc,
"fileno($self, /)\n--\n\n\
The file descriptor of the region's mapping (owned by the channel): what\n\
travels to other processes (multiprocessing passes it). NOT pollable: a memory\n\
file is always readable and says nothing about records. Wait on ready_fd()\n\
(see ready_arm) to learn when records arrive.");
static PyObject *channel_fileno(ChannelObject *self, PyObject *unused)
{
	return PyLong_FromLong(rmpsc_channel_fd(self->cs.ch));
}

PyDoc_STRVAR(channel_close_doc,
"close($self, /)\n--\n\n\
Close the channel for every process. Sends fail with Closed from now on, blocked\n\
senders and receivers wake at once, and every group still receives every\n\
committed record before its members get Closed. Idempotent. This process's handle stays\n\
usable (it is released when the object is freed). Channel is deliberately not a\n\
context manager: leaving a block should not close the channel for everyone.");
static PyObject *channel_close(ChannelObject *self, PyObject *unused)
{
	rmpsc_channel_close(self->cs.ch); /* stores and futex wakes only: never blocks */
	Py_RETURN_NONE;
}

/* A Channel is always true, even when empty: `if ch:` must not mean "has records". */
static int always_true(PyObject *self)
{
	return 1;
}

static PyObject *channel_repr(ChannelObject *self)
{
	const struct rmpsc_config *cfg = &self->cs.cfg;
	char consumers[48] = "";
	if (cfg->max_consumers > 1)
		snprintf(consumers, sizeof consumers, " max_consumers=%u", cfg->max_consumers);
	return PyUnicode_FromFormat("<%s name=%R record_size=%u capacity=%u max_producers=%u%s%s%s>",
				    Py_TYPE(self)->tp_name, self->name, cfg->record_size, cfg->capacity,
				    cfg->max_producers, consumers, cfg->slab_count ? " slabs" : "",
				    rmpsc_channel_is_closed(self->cs.ch) ? " closed" : "");
}

PyDoc_STRVAR(channel_reduce_doc, "Named channels pickle by name; anonymous ones only through multiprocessing.");
static PyObject *channel_reduce(ChannelObject *self, PyObject *unused)
{
	if (self->name == Py_None) {
		PyErr_SetString(PyExc_TypeError,
				"an anonymous Channel pickles only through multiprocessing (its memory travels as a "
				"file descriptor); create it with name=... to pickle it by name");
		return NULL;
	}
	PyObject *open = PyObject_GetAttrString((PyObject *)Py_TYPE(self), "open");
	if (!open)
		return NULL;
	return Py_BuildValue("N(O)", open, self->name);
}

static const char *const slot_state_names[] = { "free", "registering", "active", "detached", "reclaiming",
						 "fenced" };

static const char *const member_state_names[] = { "free", "active", "recovering", "orphaned", "adopted" };

/* d[key] = v, stealing v; -1 (with an exception) on failure. */
static int put(PyObject *d, const char *key, PyObject *v)
{
	if (!v)
		return -1;
	int rc = PyDict_SetItemString(d, key, v);
	Py_DECREF(v);
	return rc;
}

static PyObject *producers_list(const struct rmpsc_ring_stats *rings, int n)
{
	PyObject *list = PyList_New(0);
	for (int i = 0; list && i < n; i++) {
		const struct rmpsc_ring_stats *r = &rings[i];
		PyObject *e = Py_BuildValue(
			"{s:I,s:s,s:I,s:O,s:K,s:K,s:K,s:K}", "slot", r->slot, "state",
			r->state < 6 ? slot_state_names[r->state] : "unknown", "pid", r->owner_pid, "alive",
			r->owner_alive ? Py_True : Py_False, "pending", (unsigned long long)r->pending, "committed",
			(unsigned long long)r->committed, "consumed", (unsigned long long)r->consumed, "dropped",
			(unsigned long long)r->dropped);
		if (!e || PyList_Append(list, e) < 0)
			Py_CLEAR(list);
		Py_XDECREF(e);
	}
	return list;
}

static PyObject *groups_list(const struct rmpsc_group_stats *g, int n)
{
	PyObject *list = PyList_New(0);
	for (int i = 0; list && i < n; i++) {
		PyObject *e = Py_BuildValue(
			"{s:s,s:I,s:O,s:O,s:I,s:I,s:O,s:I,s:K,s:K,s:K}", "name", g[i].name, "flags", g[i].flags,
			"ephemeral", g[i].flags & RMPSC_GROUP_EPHEMERAL ? Py_True : Py_False, "at_most_once",
			g[i].flags & RMPSC_GROUP_AT_MOST_ONCE ? Py_True : Py_False, "members", g[i].members,
			"live_members", g[i].live_members, "solo", g[i].solo ? Py_True : Py_False, "claims",
			g[i].claims, "pending", (unsigned long long)g[i].pending, "unreleased",
			(unsigned long long)g[i].unreleased, "redelivered", (unsigned long long)g[i].redelivered);
		if (!e || PyList_Append(list, e) < 0)
			Py_CLEAR(list);
		Py_XDECREF(e);
	}
	return list;
}

static PyObject *members_list(const struct rmpsc_member_stats *m, uint32_t n, const struct rmpsc_group_stats *g,
			      int ng)
{
	PyObject *list = PyList_New(0);
	for (uint32_t i = 0; list && i < n; i++) {
		PyObject *claim = m[i].claim_count ? Py_BuildValue("(II)", m[i].claim_slot, m[i].claim_count)
						   : Py_NewRef(Py_None);
		PyObject *e = claim ? Py_BuildValue("{s:I,s:O,s:s,s:s,s:O}", "pid", m[i].pid, "alive",
						    m[i].alive ? Py_True : Py_False, "group",
						    (int)m[i].group < ng ? g[m[i].group].name : "?", "state",
						    m[i].state < 5 ? member_state_names[m[i].state] : "unknown",
						    "claim", claim)
				    : NULL;
		Py_XDECREF(claim);
		if (!e || PyList_Append(list, e) < 0)
			Py_CLEAR(list);
		Py_XDECREF(e);
	}
	return list;
}

PyDoc_STRVAR(channel_stats_doc,
"stats($self, /)\n--\n\n\
A snapshot of the channel's figures: geometry (with max_consumers, max_groups),\n\
pending/committed/consumed counts, consumer_pid (the default group's member when\n\
it has exactly one, else 0), closed, slab and reclaim counters,\n\
recovered_members, consumer_wakes (wake-ups sent to waiting consumers, by futex\n\
or readiness fd, by producers and close: its growth over records consumed is\n\
the wake-ups per record), 'producers': one dict per slot in use (slot, state, pid,\n\
alive, pending, committed, consumed), 'groups': one dict per group (name, flags,\n\
ephemeral, at_most_once, members, live_members, solo, claims, pending: records\n\
committed and not yet taken by the group (its lag), unreleased: taken and not\n\
yet consumed, redelivered) and 'members': one dict per member place in use (pid,\n\
alive, group: its name, state: 'active', 'recovering', 'orphaned' (held a claim\n\
when it died or left; waiting for another member) or 'adopted' (that claim being\n\
served), claim: (slot, records) of its open claim, or None; the claim of a\n\
group's one member consuming alone is not recorded and shows in the group's\n\
unreleased only).");
static PyObject *channel_stats(ChannelObject *self, PyObject *unused)
{
	const struct rmpsc_config *cfg = &self->cs.cfg;
	struct rmpsc_stats s;
	uint32_t n = cfg->max_producers;
	struct rmpsc_ring_stats *rings = PyMem_Calloc(n, sizeof *rings);
	struct rmpsc_group_stats *groups = PyMem_Calloc(cfg->max_groups, sizeof *groups);
	struct rmpsc_member_stats *members = PyMem_Calloc(cfg->max_consumers, sizeof *members);
	PyObject *d = NULL;
	if (!rings || !groups || !members) {
		PyErr_NoMemory();
		goto done;
	}
	int w, ng;
	uint32_t nm = 0;
	/* Liveness checks lock-test the owners' attachments. */
	Py_BEGIN_ALLOW_THREADS
	w = rmpsc_stats(self->cs.ch, &s, rings, n);
	ng = w < 0 ? 0 : rmpsc_group_stats(self->cs.ch, groups, cfg->max_groups, members, cfg->max_consumers, &nm);
	Py_END_ALLOW_THREADS
	if (w < 0 || ng < 0) {
		raise_rc(CSTATE(self), w < 0 ? w : ng, 0, ON_OTHER, NULL);
		goto done;
	}
	d = Py_BuildValue("{s:O,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:O,s:K,s:K,s:K,s:I,s:I,s:I,s:I}", "name",
			  self->name, "record_size", cfg->record_size, "capacity", cfg->capacity, "max_producers",
			  s.max_producers, "slab_size", cfg->slab_size, "slabs", s.slab_count, "max_consumers",
			  s.max_consumers, "max_groups", s.max_groups, "active_producers", s.active_producers,
			  "consumer_pid", s.consumer_pid, "closed", s.closed ? Py_True : Py_False, "pending",
			  (unsigned long long)s.pending, "committed", (unsigned long long)s.committed, "consumed",
			  (unsigned long long)s.consumed, "slabs_free", s.slabs_free, "fenced_rings", s.fenced_rings,
			  "reclaimed_slots", s.reclaimed_slots, "recovered_members", s.recovered_members);
	if (d && (put(d, "consumer_wakes", PyLong_FromUnsignedLongLong(s.consumer_wakes)) < 0 ||
		  put(d, "dropped", PyLong_FromUnsignedLongLong(s.dropped)) < 0 ||
		  put(d, "drop_episodes", PyLong_FromUnsignedLongLong(s.drop_episodes)) < 0 ||
		  put(d, "channel_id", PyLong_FromUnsignedLongLong(s.channel_id)) < 0 ||
		  put(d, "mode", PyLong_FromUnsignedLong(cfg->mode)) < 0 ||
		  put(d, "gid", PyLong_FromUnsignedLong(cfg->gid)) < 0 ||
		  put(d, "producers", producers_list(rings, w)) < 0 || put(d, "groups", groups_list(groups, ng)) < 0 ||
		  put(d, "members", members_list(members, nm, groups, ng)) < 0))
		Py_CLEAR(d);
done:
	PyMem_Free(rings);
	PyMem_Free(groups);
	PyMem_Free(members);
	return d;
}

PyDoc_STRVAR(channel_reclaim_doc,
"reclaim_dead($self, /)\n--\n\n\
Reclaim the slots of producers whose process died, then recover consumer group\n\
members that died: their unconsumed records go to another member of their group\n\
(or are dropped, at-most-once), an ephemeral group whose last member died goes\n\
away. Also done automatically on register, by waiting members and by producers\n\
waiting for space, at a bounded rate. Returns slots reclaimed plus members\n\
recovered.");
static PyObject *channel_reclaim_dead(ChannelObject *self, PyObject *unused)
{
	int n;
	Py_BEGIN_ALLOW_THREADS
	n = rmpsc_reclaim_dead(self->cs.ch);
	Py_END_ALLOW_THREADS
	if (n < 0) {
		raise_rc(CSTATE(self), n, errno, ON_OTHER, NULL);
		return NULL;
	}
	return PyLong_FromLong(n);
}

/* ------------------------------------------------------------------------- */
/* Channel: producers. */

struct op_register {
	rmpsc_channel *ch;
	rmpsc_producer *p;
	char why[256]; /* the core's message when no slot was free */
};

static int op_register(void *ctx, int64_t t)
{
	struct op_register *o = ctx;
	int rc = rmpsc_producer_register_wait(o->ch, t, &o->p);
	if (rc == RMPSC_ENOSLOT)
		snprintf(o->why, sizeof o->why, "%s", rmpsc_last_error());
	if (rc == RMPSC_ENOSLOT || (rc == RMPSC_ETIMEDOUT && t))
		return RMPSC_EFULL; /* wait on, slice by slice (the first try, t = 0, said why) */
	return rc;
}

struct op_pending {
	rmpsc_channel *ch;
	uint64_t limit;
};

static int op_wait_pending(void *ctx, int64_t t)
{
	struct op_pending *o = ctx;
	return rmpsc_wait_pending_below(o->ch, o->limit, t);
}

static const char *const kw_pending[] = { "limit", "timeout" };

PyDoc_STRVAR(channel_wait_pending_below_doc,
"wait_pending_below($self, /, limit, timeout=None)\n--\n\n\
Wait until fewer than limit records are pending (committed and not yet\n\
released by every group; len(self) when this Channel is no member): a bound\n\
on the records in flight, for a sender to call before it sends. Any thread; the\n\
GIL is released while it waits, and each record a consumer releases wakes it.\n\
Senders that pass it together may overshoot limit by one record each. Raises\n\
Full after timeout seconds (None: forever, 0: at once), Closed once the channel\n\
is closed.");
static PyObject *channel_wait_pending_below(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
					    PyObject *kwnames)
{
	PyObject *a[2] = { NULL, NULL };
	long long limit;
	int64_t t;
	if (fast_args("wait_pending_below", args, nargs, kwnames, kw_pending, 1, 2, a) < 0 ||
	    parse_int(a[0], "limit", 1, LLONG_MAX, &limit) < 0 || parse_timeout(a[1], &t) < 0)
		return NULL;
	struct op_pending o = { self->cs.ch, (uint64_t)limit };
	int err = 0;
	int rc = run_op(op_wait_pending, &o, deadline_at(t), &err);
	if (rc < 0) {
		raise_rc(CSTATE(self), rc, err, ON_PENDING, NULL);
		return NULL;
	}
	Py_RETURN_NONE;
}

static const char *const kw_producer[] = { "timeout" };

PyDoc_STRVAR(channel_producer_doc,
"producer($self, /, timeout=0)\n--\n\n\
Register a producer in this process and return it. Each Producer owns one ring.\n\
When all max_producers slots are taken (slots of dead processes are reclaimed\n\
first; a closed or dead producer's slot comes free once its records are\n\
consumed), waits up to timeout seconds (0: not at all, None: forever), then\n\
raises TooManyProducers saying what holds them. Closed if the channel is closed.");
static PyObject *channel_producer(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	modstate *st = CSTATE(self);
	PyObject *a[1] = { NULL };
	int64_t t = 0;
	if (fast_args("producer", args, nargs, kwnames, kw_producer, 0, 1, a) < 0 ||
	    (a[0] && parse_timeout(a[0], &t) < 0))
		return NULL;
	struct op_register o = { self->cs.ch, NULL, "" };
	int err = 0;
	/* Registering may scan the slots' owners in /proc: without the GIL. */
	int rc = run_op_nogil(op_register, &o, deadline_at(t), &err);
	if (rc == RMPSC_EFULL || rc == RMPSC_ETIMEDOUT) {
		PyErr_Format(st->TooManyProducers, "%s%s", o.why,
			     rc == RMPSC_ETIMEDOUT ? " (none came free within the timeout)" : "");
		return NULL;
	}
	if (rc < 0) {
		raise_rc(st, rc, err, ON_SEND, NULL);
		return NULL;
	}
	rmpsc_producer *p = o.p;
	ProducerObject *po = (ProducerObject *)st->ProducerType->tp_alloc(st->ProducerType, 0);
	if (!po) {
		rmpsc_producer_close(p);
		return NULL;
	}
	po->p = p;
	po->chan = (ChannelObject *)Py_NewRef(self);
	po->gen = st->fork_gen;
	po->pid = (long)getpid();
	po->slot = rmpsc_producer_slot(p);
	po->ready_fd = -1;
	hlock_init(&po->lock, st);
	return (PyObject *)po;
}

/* ------------------------------------------------------------------------- */
/* Channel: consumer groups (the consumer methods are consumer.c's). */

static const char *const kw_consumer[] = { "group", "ephemeral", "at_most_once" };

PyDoc_STRVAR(channel_consumer_doc,
"consumer($self, /, group=None, *, ephemeral=False, at_most_once=False)\n--\n\n\
Join `group` (None: the default group) and return a Consumer: a member of that\n\
group with a handle of its own on this channel. A group that does not exist is\n\
created, and receives the records committed from then on; its flags are those\n\
of its creation: ephemeral (it goes away when its last member leaves or dies,\n\
and stops holding producers back) and at_most_once (records a member died\n\
holding are dropped instead of delivered again). Joining an existing group with\n\
other flags raises ValueError. Raises ConsumerBusy when every member place\n\
(max_consumers) is held by a live process or no group place (max_groups) is\n\
left; ValueError for a name longer than 31 bytes.");
static PyObject *channel_consumer(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *a[3];
	if (fast_args("consumer", args, nargs, kwnames, kw_consumer, 0, 3, a) < 0)
		return NULL;
	if (nargs > 1) {
		PyErr_Format(PyExc_TypeError, "consumer() takes at most 1 positional argument (%zd given)", nargs);
		return NULL;
	}
	unsigned flags = 0;
	int ephemeral = a[1] ? PyObject_IsTrue(a[1]) : 0, amo = a[2] ? PyObject_IsTrue(a[2]) : 0;
	if (ephemeral < 0 || amo < 0)
		return NULL;
	if (ephemeral)
		flags |= RMPSC_GROUP_EPHEMERAL;
	if (amo)
		flags |= RMPSC_GROUP_AT_MOST_ONCE;
	return consumer_new(self, a[0], flags);
}

PyDoc_STRVAR(channel_leave_doc,
"leave($self, /)\n--\n\n\
Give up this process's membership of the default group through this Channel\n\
(the consumer role, with max_consumers=1): records it took and did not consume\n\
go to another member (or the next consumer), and its place is free for another\n\
process. The next consumer method called on this Channel joins again. The other\n\
Channel objects on this channel in this process, and the Consumers of the\n\
default group made from them, share the membership: it ends when the last of\n\
them lets go. Waits for a call another thread is making on the default group's\n\
consumer side to finish. Coroutines waiting on this Channel look again at once\n\
(and join again). Safe to call when not a member.");
static PyObject *channel_leave(ChannelObject *self, PyObject *unused)
{
	consumer_side *cs = &self->cs;
	if (hlock_acquire(&cs->gl->lock, cs->st, FOREVER, CONSUMER_BUSY) != 0)
		return NULL;
	Py_BEGIN_ALLOW_THREADS
	rmpsc_consumer_leave(cs->ch);
	Py_END_ALLOW_THREADS
	cs->gl->ready_fd = -1; /* the FIFO may have gone with the membership */
	hlock_release(&cs->gl->lock);
	aio_changed((PyObject *)self); /* its coroutines look again (and join again) */
	Py_RETURN_NONE;
}

static const char *const kw_name[] = { "name" };

PyDoc_STRVAR(channel_remove_group_doc,
"remove_group($self, /, name=None)\n--\n\n\
Remove a group that has no live member (None: the default group), with the\n\
records it had not consumed, so that it stops holding producers back. Any\n\
process may. ValueError when there is no such group or it has a live member. A\n\
Channel whose default group was removed joins a new one (receiving what is\n\
committed from then on) at its next consumer call.");
static PyObject *channel_remove_group(ChannelObject *self, PyObject *const *args, Py_ssize_t nargs,
				      PyObject *kwnames)
{
	PyObject *a[1];
	if (fast_args("remove_group", args, nargs, kwnames, kw_name, 0, 1, a) < 0)
		return NULL;
	const char *name = NULL;
	if (a[0] && a[0] != Py_None && !(name = parse_name(a[0], "name")))
		return NULL;
	int rc, err;
	/* Recovers the group's dead members first. */
	Py_BEGIN_ALLOW_THREADS
	rc = rmpsc_group_remove(self->cs.ch, name);
	err = errno;
	Py_END_ALLOW_THREADS
	if (rc < 0) {
		raise_rc(CSTATE(self), rc, err, ON_OTHER, NULL);
		return NULL;
	}
	Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------- */
/* Types. */

PyDoc_STRVAR(channel_init_subclass_doc,
"__init_subclass__($cls, /, **kwargs)\n--\n\n\
Register the subclass with multiprocessing, whose reducers match exact types, so\n\
that its channels travel to other processes as Channel's do.");
static PyObject *channel_init_subclass(PyTypeObject *cls, PyObject *args, PyObject *kwds)
{
	modstate *st = state_of_subtype(cls);
	if (!st)
		return NULL;
	/* super(Channel, cls).__init_subclass__(*args, **kwds): cooperative with mixins. */
	PyObject *sup = PyObject_CallFunctionObjArgs((PyObject *)&PySuper_Type, st->ChannelType, cls, NULL);
	if (!sup)
		return NULL;
	PyObject *init = PyObject_GetAttrString(sup, "__init_subclass__");
	Py_DECREF(sup);
	if (!init)
		return NULL;
	PyObject *r = PyObject_Call(init, args, kwds);
	Py_DECREF(init);
	if (!r)
		return NULL;
	Py_DECREF(r);
	PyObject *pkg = PyImport_ImportModule("ringmpsc");
	if (!pkg)
		return NULL;
	r = PyObject_CallMethod(pkg, "_register_channel_type", "O", (PyObject *)cls);
	Py_DECREF(pkg);
	return r;
}

static PyMethodDef channel_methods[] = {
	{ "__init_subclass__", (PyCFunction)(void (*)(void))channel_init_subclass,
	  METH_VARARGS | METH_KEYWORDS | METH_CLASS, channel_init_subclass_doc },
	{ "open", (PyCFunction)(void (*)(void))channel_open, METH_VARARGS | METH_KEYWORDS | METH_CLASS, channel_open_doc },
	{ "_from_fd", (PyCFunction)(void (*)(void))channel_from_fd, METH_VARARGS | METH_KEYWORDS | METH_CLASS,
	  channel_from_fd_doc },
	{ "producer", (PyCFunction)(void (*)(void))channel_producer, METH_FASTCALL | METH_KEYWORDS,
	  channel_producer_doc },
	CONSUMER_SIDE_METHODS,
	{ "consumer", (PyCFunction)(void (*)(void))channel_consumer, METH_FASTCALL | METH_KEYWORDS,
	  channel_consumer_doc },
	{ "wait_pending_below", (PyCFunction)(void (*)(void))channel_wait_pending_below, METH_FASTCALL | METH_KEYWORDS,
	  channel_wait_pending_below_doc },
	{ "leave", (PyCFunction)channel_leave, METH_NOARGS, channel_leave_doc },
	{ "remove_group", (PyCFunction)(void (*)(void))channel_remove_group, METH_FASTCALL | METH_KEYWORDS,
	  channel_remove_group_doc },
	{ "close", (PyCFunction)channel_close, METH_NOARGS, channel_close_doc },
	{ "stats", (PyCFunction)channel_stats, METH_NOARGS, channel_stats_doc },
	{ "fileno", (PyCFunction)channel_fileno, METH_NOARGS, channel_fileno_doc },
	{ "reclaim_dead", (PyCFunction)channel_reclaim_dead, METH_NOARGS, channel_reclaim_doc },
	{ "__reduce__", (PyCFunction)channel_reduce, METH_NOARGS, channel_reduce_doc },
	{ NULL },
};

static PyGetSetDef channel_getset[] = {
	{ "record_size", (getter)channel_get_record_size, NULL, "Bytes per record.", NULL },
	{ "capacity", (getter)channel_get_capacity, NULL, "Records per producer ring (a power of two).", NULL },
	{ "max_producers", (getter)channel_get_max_producers, NULL, "Producer slots (rings).", NULL },
	{ "slab_size", (getter)channel_get_slab_size, NULL, "Bytes per slab (0: no slab pool).", NULL },
	{ "slabs", (getter)channel_get_slabs, NULL, "Slabs in the pool (0: none).", NULL },
	{ "message_max", (getter)channel_get_message_max, NULL,
	  "The longest message send_message carries: record_size - 8 inline, or about slabs x slab_size.", NULL },
	{ "name", (getter)channel_get_name, NULL, "The shm name ('/NAME'), or None for an anonymous channel.", NULL },
	{ "closed", (getter)channel_get_closed, NULL, "True once the channel was closed (by any process).", NULL },
	{ "max_consumers", (getter)channel_get_max_consumers, NULL, "Member places: consumer processes at a time.", NULL },
	{ "max_groups", (getter)channel_get_max_groups, NULL, "Group places: groups at a time.", NULL },
	{ "group", (getter)channel_get_group, NULL,
	  "The group this Channel's own handle is a member of ('default'), or None before its first consumer call "
	  "and after leave().",
	  NULL },
	{ "last_deliveries", (getter)cs_get_last_deliveries, NULL, LAST_DELIVERIES_DOC, NULL },
	{ "coalesce", (getter)cs_get_coalesce, NULL, COALESCE_DOC, NULL },
	{ NULL },
};

static PyMemberDef channel_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(ChannelObject, weakrefs), READONLY },
	{ NULL },
};

static PyType_Slot channel_slots[] = {
	{ Py_tp_doc, (void *)channel_doc },
	{ Py_tp_new, channel_new },
	{ Py_tp_dealloc, channel_dealloc },
	{ Py_tp_repr, channel_repr },
	{ Py_tp_methods, channel_methods },
	{ Py_tp_getset, channel_getset },
	{ Py_tp_members, channel_members },
	{ Py_tp_iter, PyObject_SelfIter },
	{ Py_tp_iternext, cs_iternext },
	{ Py_am_aiter, PyObject_SelfIter },
	{ Py_am_anext, cs_anext },
	{ Py_sq_length, cs_len },
	{ Py_mp_length, cs_len },
	{ Py_nb_bool, always_true },
	{ 0, NULL },
};

PyType_Spec channel_spec = {
	.name = "ringmpsc.Channel",
	.basicsize = sizeof(ChannelObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_IMMUTABLETYPE,
	.slots = channel_slots,
};
