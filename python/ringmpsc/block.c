/*
 * Receive buffers for large messages, recycled within the process.
 *
 * A fresh malloc of a megabyte is a fresh mapping, and the copy out of the slabs
 * then faults in every page of it: about 250 page faults per MiB, several times
 * the cost of the copy itself (measured: 250 faults and ~600 us per 1 MiB
 * message against ~30 us for the copy). _recv_objects receives each message of
 * at least bytearray_from bytes into a Block instead: a writable buffer whose
 * memory goes back to a small cache of this process when the last object made on
 * it (the NumPy array unpickled on it) is gone, and serves the next large message
 * with its pages mapped and often still in the CPU's cache.
 *
 * The cache is per module state and changed under the GIL only (allocation in
 * _recv_objects, return in a Block's dealloc). It keeps at most BLOCK_CACHE_SLOTS
 * blocks and BLOCK_CACHE_BYTES in all; a block that does not fit is freed.
 */
#include "module.h"

#include <stdlib.h>

#define BLOCK_ROUND 4096u

static size_t round_block(size_t len)
{
	return (len + BLOCK_ROUND - 1) / BLOCK_ROUND * BLOCK_ROUND;
}

/* A cached block serves a request of len bytes when it holds them and wastes at
 * most a quarter more (blocks of very different sizes are not worth keeping). */
static int block_fits(size_t cap, size_t len)
{
	return cap >= len && cap - len <= len / 4 + BLOCK_ROUND;
}

typedef struct {
	PyObject_HEAD
	char *data;
	Py_ssize_t len;
	size_t cap;
} block_object;

/* Take memory for len bytes: the best-fitting cached block (of those, the one
 * given back last: the likeliest to be in the CPU's cache still), or a new one. */
static char *block_take(modstate *st, size_t len, size_t *cap)
{
	struct block_cache *c = &st->blocks;
	int best = -1;
	for (int i = c->n - 1; i >= 0; i--)
		if (block_fits(c->cap[i], len) && (best < 0 || c->cap[i] < c->cap[best]))
			best = i;
	if (best >= 0) {
		char *p = c->ptr[best];
		*cap = c->cap[best];
		c->bytes -= *cap;
		c->n--;
		memmove(&c->ptr[best], &c->ptr[best + 1], (size_t)(c->n - best) * sizeof *c->ptr);
		memmove(&c->cap[best], &c->cap[best + 1], (size_t)(c->n - best) * sizeof *c->cap);
		return p;
	}
	*cap = round_block(len ? len : 1);
	/* Aligned as a page: NumPy arrays unpickled on it start aligned for any dtype. */
	void *p = NULL;
	if (posix_memalign(&p, BLOCK_ROUND, *cap) != 0)
		return NULL;
	return p;
}

/* Give memory back: to the cache when it has room, else to malloc. */
static void block_give(modstate *st, char *p, size_t cap)
{
	struct block_cache *c = st ? &st->blocks : NULL;
	if (c && c->open && c->n < BLOCK_CACHE_SLOTS && c->bytes + cap <= BLOCK_CACHE_BYTES) {
		c->ptr[c->n] = p;
		c->cap[c->n] = cap;
		c->n++;
		c->bytes += cap;
		return;
	}
	free(p);
}

PyObject *block_new(modstate *st, Py_ssize_t len)
{
	size_t cap;
	char *p = block_take(st, (size_t)len, &cap);
	if (!p)
		return PyErr_NoMemory();
	block_object *b = PyObject_New(block_object, st->BlockType);
	if (!b) {
		block_give(st, p, cap);
		return NULL;
	}
	b->data = p;
	b->len = len;
	b->cap = cap;
	return (PyObject *)b;
}

char *block_data(PyObject *block)
{
	return ((block_object *)block)->data;
}

void block_cache_open(modstate *st)
{
	memset(&st->blocks, 0, sizeof st->blocks);
	st->blocks.open = 1;
}

void block_cache_close(modstate *st)
{
	struct block_cache *c = &st->blocks;
	for (int i = 0; i < c->n; i++)
		free(c->ptr[i]);
	c->n = 0;
	c->bytes = 0;
	c->open = 0; /* blocks still alive free their memory when they go */
}

static void block_dealloc(PyObject *self)
{
	block_object *b = (block_object *)self;
	PyTypeObject *tp = Py_TYPE(self);
	block_give(state_of_type(tp), b->data, b->cap);
	PyObject_Free(self);
	Py_DECREF(tp);
}

static int block_getbuffer(PyObject *self, Py_buffer *view, int flags)
{
	block_object *b = (block_object *)self;
	return PyBuffer_FillInfo(view, self, b->data, b->len, 0, flags);
}

static PyObject *block_repr(PyObject *self)
{
	return PyUnicode_FromFormat("<ringmpsc message buffer of %zd bytes>", ((block_object *)self)->len);
}

static Py_ssize_t block_length(PyObject *self)
{
	return ((block_object *)self)->len;
}

static PyType_Slot block_slots[] = {
	{ Py_tp_dealloc, block_dealloc },
	{ Py_tp_repr, block_repr },
	{ Py_sq_length, block_length },
	{ Py_bf_getbuffer, block_getbuffer },
	{ Py_tp_doc, (void *)PyDoc_STR("A received message's bytes (writable; its memory is reused once it is gone).") },
	{ 0, NULL },
};

PyType_Spec block_spec = {
	.name = "ringmpsc._ringmpsc.MessageBuffer",
	.basicsize = sizeof(block_object),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = block_slots,
};
