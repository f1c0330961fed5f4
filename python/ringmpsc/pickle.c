/*
 * ringmpsc.Queue's default serialisation, in C: Producer._send_object pickles and
 * sends, _recv_objects receives and unpickles, with no Python frame between.
 *
 * The wire format: a message is a pickle of protocol 5 whose buffers of less than
 * OUT_OF_BAND_FROM bytes are in band; an object with larger contiguous buffers (a
 * NumPy array) is a message that starts with OOB_TAG (2, where a pickle starts
 * with 0x80): a header, the pickle, and each large buffer's bytes taken straight
 * from the object's memory, each at a multiple of OOB_ALIGN (pickle_message makes
 * it; queue.py's _loads_out_of_band reads it, with the buffers as views of the
 * message, and also reads tag 1, 0.6.0's format without the alignment).
 *
 * pickle.dumps and pickle.loads cost about 160 and 120 ns before they look at the
 * object (a Pickler or Unpickler, its memo and buffers, made and freed per call),
 * most of what a small message costs. So the common objects take a shorter road
 * with the same format: fast_dumps writes the protocol 5 opcodes pickle itself
 * uses for None, bool, int (32 bits), float, str, bytes, tuple, list and dict
 * (exact types only, no subclass, nothing that runs Python code), and
 * fast_loads reads those opcodes (and the FRAME and memo opcodes pickle.dumps
 * adds). Anything else, or anything odd, makes them give up, with nothing done,
 * and pickle does the whole message: any message either writes is a pickle
 * pickle.loads reads, and fast_loads returns what pickle.loads would.
 */
#include <string.h>

#include "args.h"

/* The buffer_callback of a Queue message's pickle; its self is the list of the
 * buffers sent out of band. True (in band) for a buffer under OUT_OF_BAND_FROM
 * bytes or not contiguous; else False, its raw bytes appended to the list. */
static PyObject *out_of_band_cb(PyObject *list, PyObject *buf)
{
	Py_buffer v;
	if (PyObject_GetBuffer(buf, &v, PyBUF_FULL_RO) < 0) {
		if (!PyErr_ExceptionMatches(PyExc_BufferError))
			return NULL;
		PyErr_Clear();
		Py_RETURN_TRUE;
	}
	int in_band = v.len < OUT_OF_BAND_FROM || !PyBuffer_IsContiguous(&v, 'A');
	PyBuffer_Release(&v);
	if (in_band)
		Py_RETURN_TRUE;
	PyObject *raw = PyObject_CallMethod(buf, "raw", NULL); /* a flat view of its bytes, in memory order */
	if (!raw || PyList_Append(list, raw) < 0) {
		Py_XDECREF(raw);
		return NULL;
	}
	Py_DECREF(raw);
	Py_RETURN_FALSE;
}

static PyMethodDef out_of_band_def = { "out_of_band", out_of_band_cb, METH_O, NULL };

PyObject *pickle_message(modstate *st, PyObject *obj)
{
	if (!st->pickle_dumps && pickle_import(st) < 0)
		return NULL;
	PyObject *raws = PyList_New(0);
	PyObject *cb = raws ? PyCFunction_NewEx(&out_of_band_def, raws, NULL) : NULL;
	PyObject *head = NULL, *msg = NULL, *header = NULL;
	if (!cb)
		goto out;
	PyObject *args[3] = { obj, st->int_protocol, cb };
	head = PyObject_Vectorcall(st->pickle_dumps, args, 2, st->dumps_kwnames);
	if (!head)
		goto out;
	if (!PyBytes_Check(head)) {
		PyErr_Format(PyExc_TypeError, "pickle.dumps returned '%.100s', not bytes", Py_TYPE(head)->tp_name);
		goto out;
	}
	Py_ssize_t n = PyList_GET_SIZE(raws);
	if (n == 0) {
		msg = Py_NewRef(head);
		goto out;
	}
	/* [header, head, (padding, buffer) ...]: the header is OOB_TAG, n (u32) and the
	 * n + 1 lengths (u64) of head and buffers, little-endian; each buffer starts at a
	 * multiple of OOB_ALIGN in the message. */
	Py_ssize_t hlen = 5 + 8 * (n + 1);
	if (!(header = PyBytes_FromStringAndSize(NULL, hlen)) || !(msg = PyList_New(0)))
		goto out;
	unsigned char *hp = (unsigned char *)PyBytes_AS_STRING(header);
	hp[0] = OOB_TAG;
	for (int i = 0; i < 4; i++)
		hp[1 + i] = (unsigned char)((uint64_t)n >> (8 * i));
	uint64_t at = (uint64_t)hlen + (uint64_t)PyBytes_GET_SIZE(head);
	for (Py_ssize_t k = 0; k <= n; k++) {
		uint64_t len = k == 0 ? (uint64_t)PyBytes_GET_SIZE(head)
				      : (uint64_t)PyObject_Length(PyList_GET_ITEM(raws, k - 1));
		for (int i = 0; i < 8; i++)
			hp[5 + 8 * k + i] = (unsigned char)(len >> (8 * i));
	}
	if (PyList_Append(msg, header) < 0 || PyList_Append(msg, head) < 0)
		goto fail;
	for (Py_ssize_t k = 0; k < n; k++) {
		PyObject *raw = PyList_GET_ITEM(raws, k);
		Py_ssize_t pad = (Py_ssize_t)(-at % OOB_ALIGN);
		if (pad) {
			PyObject *zeros = PyBytes_FromStringAndSize(NULL, pad);
			if (!zeros)
				goto fail;
			memset(PyBytes_AS_STRING(zeros), 0, (size_t)pad);
			int r = PyList_Append(msg, zeros);
			Py_DECREF(zeros);
			if (r < 0)
				goto fail;
		}
		if (PyList_Append(msg, raw) < 0)
			goto fail;
		at += (uint64_t)pad + (uint64_t)PyObject_Length(raw);
	}
	goto out;
fail:
	Py_CLEAR(msg);
out:
	Py_XDECREF(header);
	Py_XDECREF(head);
	Py_XDECREF(cb);
	Py_XDECREF(raws);
	return msg;
}

PyDoc_STRVAR(dumps_message_doc,
"_dumps_message(obj, /)\n--\n\n\
ringmpsc.Queue's default dumps: obj pickled with protocol 5 as bytes, or, when it\n\
has contiguous pickle buffers of _OUT_OF_BAND_FROM bytes or more, a list of the\n\
message's parts, those buffers' own memory among them (out of band; queue.py reads it).");
static PyObject *dumps_message(PyObject *m, PyObject *obj)
{
	return pickle_message(PyModule_GetState(m), obj);
}

/* ------------------------------------------------------------------------- */
/* fast_dumps */

#define FAST_DEPTH   32 /* nesting the fast codec follows */
#define FAST_MUTABLE 16 /* lists and dicts in one object: each must occur once (pickle's memo would share it) */

struct enc {
	char *p, *end;
	PyObject *mutable[FAST_MUTABLE];
	int nmutable;
};

static int put(struct enc *e, const void *s, size_t n)
{
	if ((size_t)(e->end - e->p) < n)
		return -1;
	memcpy(e->p, s, n);
	e->p += n;
	return 0;
}

static int put_op(struct enc *e, unsigned char op)
{
	return put(e, &op, 1);
}

/* An opcode and a little-endian length in `width` bytes (1 or 4). */
static int put_len(struct enc *e, unsigned char op, uint32_t n, int width)
{
	unsigned char b[5] = { op, n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >> 24 };
	return put(e, b, 1 + (size_t)width);
}

/* A str or bytes: the short opcode under 256 bytes, else the 4-byte one. */
static int put_data(struct enc *e, unsigned char short_op, unsigned char op, const char *s, Py_ssize_t n)
{
	if (n > (Py_ssize_t)UINT32_MAX)
		return -1;
	if (put_len(e, n < 256 ? short_op : op, (uint32_t)n, n < 256 ? 1 : 4) < 0)
		return -1;
	return put(e, s, (size_t)n);
}

/* A list or dict: refused when already met (shared or cyclic: pickle's memo keeps that, ours does not). */
static int note_mutable(struct enc *e, PyObject *o)
{
	if (e->nmutable == FAST_MUTABLE)
		return -1;
	for (int i = 0; i < e->nmutable; i++)
		if (e->mutable[i] == o)
			return -1;
	e->mutable[e->nmutable++] = o;
	return 0;
}

/* 0: written; -1: not for the fast road (no exception set). Runs no Python code. */
static int enc_obj(struct enc *e, PyObject *o, int depth)
{
	PyTypeObject *t = Py_TYPE(o);
	if (o == Py_None)
		return put_op(e, 'N');
	if (t == &PyBool_Type)
		return put_op(e, o == Py_True ? 0x88 : 0x89); /* NEWTRUE, NEWFALSE */
	if (t == &PyLong_Type) {
		int overflow;
		long v = PyLong_AsLongAndOverflow(o, &overflow);
		if (overflow || v < INT32_MIN || v > INT32_MAX)
			return -1; /* pickle: LONG1 */
		if (v >= 0 && v < 256)
			return put_len(e, 'K', (uint32_t)v, 1); /* BININT1 */
		if (v >= 0 && v < 65536) {
			unsigned char b[3] = { 'M', v & 0xff, v >> 8 }; /* BININT2 */
			return put(e, b, 3);
		}
		return put_len(e, 'J', (uint32_t)(int32_t)v, 4); /* BININT */
	}
	if (t == &PyFloat_Type) {
		double d = PyFloat_AS_DOUBLE(o);
		uint64_t u;
		memcpy(&u, &d, 8);
		unsigned char b[9] = { 'G' }; /* BINFLOAT: big-endian IEEE 754 */
		for (int i = 0; i < 8; i++)
			b[1 + i] = (unsigned char)(u >> (56 - 8 * i));
		return put(e, b, 9);
	}
	if (t == &PyUnicode_Type) {
		if (PyUnicode_IS_ASCII(o)) /* SHORT_BINUNICODE, BINUNICODE */
			return put_data(e, 0x8c, 'X', (const char *)PyUnicode_DATA(o), PyUnicode_GET_LENGTH(o));
		PyObject *u = PyUnicode_AsEncodedString(o, "utf-8", "surrogatepass"); /* as pickle */
		if (!u) {
			PyErr_Clear();
			return -1;
		}
		int r = put_data(e, 0x8c, 'X', PyBytes_AS_STRING(u), PyBytes_GET_SIZE(u));
		Py_DECREF(u);
		return r;
	}
	if (t == &PyBytes_Type) /* SHORT_BINBYTES, BINBYTES */
		return put_data(e, 'C', 'B', PyBytes_AS_STRING(o), PyBytes_GET_SIZE(o));
	if (depth >= FAST_DEPTH)
		return -1;
	if (t == &PyTuple_Type) {
		Py_ssize_t n = PyTuple_GET_SIZE(o);
		if (n == 0)
			return put_op(e, ')'); /* EMPTY_TUPLE */
		if (n > 3 && put_op(e, '(') < 0) /* MARK ... TUPLE */
			return -1;
		for (Py_ssize_t i = 0; i < n; i++)
			if (enc_obj(e, PyTuple_GET_ITEM(o, i), depth + 1) < 0)
				return -1;
		return put_op(e, n > 3 ? 't' : (unsigned char)(0x84 + n)); /* TUPLE1..3 */
	}
	if (t == &PyList_Type) {
		if (note_mutable(e, o) < 0 || put_op(e, ']') < 0) /* EMPTY_LIST */
			return -1;
		if (PyList_GET_SIZE(o) == 0)
			return 0;
		if (put_op(e, '(') < 0) /* MARK ... APPENDS */
			return -1;
		for (Py_ssize_t i = 0; i < PyList_GET_SIZE(o); i++)
			if (enc_obj(e, PyList_GET_ITEM(o, i), depth + 1) < 0)
				return -1;
		return put_op(e, 'e');
	}
	if (t == &PyDict_Type) {
		if (note_mutable(e, o) < 0 || put_op(e, '}') < 0) /* EMPTY_DICT */
			return -1;
		if (PyDict_GET_SIZE(o) == 0)
			return 0;
		if (put_op(e, '(') < 0) /* MARK ... SETITEMS */
			return -1;
		Py_ssize_t pos = 0;
		PyObject *k, *v;
		while (PyDict_Next(o, &pos, &k, &v))
			if (enc_obj(e, k, depth + 1) < 0 || enc_obj(e, v, depth + 1) < 0)
				return -1;
		return put_op(e, 'u');
	}
	return -1;
}

Py_ssize_t fast_dumps(PyObject *obj, char *buf, Py_ssize_t size)
{
	struct enc e = { buf, buf + size };
	static const unsigned char proto[2] = { 0x80, 5 };
	if (put(&e, proto, 2) < 0 || enc_obj(&e, obj, 0) < 0 || put_op(&e, '.') < 0) /* ... STOP */
		return -1;
	return e.p - buf;
}

/* ------------------------------------------------------------------------- */
/* fast_loads */

#define DEC_STACK 256
#define DEC_MARKS 64
#define DEC_MEMO  256

struct dec {
	PyObject *stack[DEC_STACK];
	int sp;
	int marks[DEC_MARKS];
	int nmarks;
	PyObject *memo[DEC_MEMO];
	int nmemo; /* entries 0 .. nmemo-1 may be set */
	int nset;  /* entries set: where MEMOIZE puts (pickle's len(memo)) */
};

static int fence(const struct dec *d)
{
	return d->nmarks ? d->marks[d->nmarks - 1] : 0;
}

/* Push a new reference (NULL: give up). */
static int push(struct dec *d, PyObject *o)
{
	if (!o)
		return -1;
	if (d->sp == DEC_STACK) {
		Py_DECREF(o);
		return -1;
	}
	d->stack[d->sp++] = o;
	return 0;
}

static int pop_mark(struct dec *d)
{
	return d->nmarks ? d->marks[--d->nmarks] : -1;
}

static uint64_t le(const unsigned char *p, int width)
{
	uint64_t v = 0;
	for (int i = width - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int memo_put(struct dec *d, uint64_t i)
{
	if (i >= DEC_MEMO || d->sp <= fence(d))
		return -1;
	for (; d->nmemo <= (int)i; d->nmemo++)
		d->memo[d->nmemo] = NULL;
	if (!d->memo[i])
		d->nset++;
	Py_XSETREF(d->memo[i], Py_NewRef(d->stack[d->sp - 1]));
	return 0;
}

static int memo_get(struct dec *d, uint64_t i)
{
	if (i >= (uint64_t)d->nmemo || !d->memo[i])
		return -1;
	return push(d, Py_NewRef(d->memo[i]));
}

/* Fill the container below mark m with the items above it (APPENDS, SETITEMS), popping them. */
static int fill(struct dec *d, int m, int is_dict)
{
	if (m < 1 || m - 1 < fence(d))
		return -1;
	PyObject *c = d->stack[m - 1];
	int r = 0;
	if (is_dict) {
		if (!PyDict_CheckExact(c) || (d->sp - m) % 2)
			return -1;
		for (int i = m; i < d->sp && r == 0; i += 2)
			r = PyDict_SetItem(c, d->stack[i], d->stack[i + 1]);
	} else {
		if (!PyList_CheckExact(c))
			return -1;
		for (int i = m; i < d->sp && r == 0; i++)
			r = PyList_Append(c, d->stack[i]);
	}
	while (d->sp > m)
		Py_DECREF(d->stack[--d->sp]);
	return r;
}

/* The object, or NULL with no exception: give up (pickle.loads reads the message). */
static PyObject *dec_run(struct dec *d, const unsigned char *p, const unsigned char *end)
{
#define NEED(k)                              \
	do {                                 \
		if ((size_t)(end - p) < (k)) \
			return NULL;         \
	} while (0)
	NEED(2);
	if (p[0] != 0x80 || p[1] > 5)
		return NULL;
	p += 2;
	while (p < end) {
		unsigned char op = *p++;
		uint64_t n;
		int m;
		switch (op) {
		case 0x95: /* FRAME: read when it holds the rest of the message (pickle.dumps' one frame) */
			NEED(8);
			if (le(p, 8) != (uint64_t)(end - p - 8))
				return NULL;
			p += 8;
			break;
		case 'N':
			if (push(d, Py_NewRef(Py_None)) < 0)
				return NULL;
			break;
		case 0x88:
		case 0x89:
			if (push(d, Py_NewRef(op == 0x88 ? Py_True : Py_False)) < 0)
				return NULL;
			break;
		case 'K':
		case 'M':
		case 'J': {
			int w = op == 'K' ? 1 : op == 'M' ? 2 : 4;
			NEED((size_t)w);
			long v = (long)le(p, w);
			if (w == 4)
				v = (int32_t)(uint32_t)v;
			p += w;
			if (push(d, PyLong_FromLong(v)) < 0)
				return NULL;
			break;
		}
		case 'G': {
			NEED(8);
			uint64_t u = 0;
			for (int i = 0; i < 8; i++)
				u = u << 8 | p[i];
			double x;
			memcpy(&x, &u, 8);
			p += 8;
			if (push(d, PyFloat_FromDouble(x)) < 0)
				return NULL;
			break;
		}
		case 0x8c: /* SHORT_BINUNICODE, BINUNICODE, BINUNICODE8 */
		case 'X':
		case 0x8d:
		case 'C': /* SHORT_BINBYTES, BINBYTES, BINBYTES8 */
		case 'B':
		case 0x8e: {
			int w = op == 0x8c || op == 'C' ? 1 : op == 'X' || op == 'B' ? 4 : 8;
			NEED((size_t)w);
			n = le(p, w);
			p += w;
			if (n > (uint64_t)(end - p))
				return NULL;
			PyObject *o = op == 0x8c || op == 'X' || op == 0x8d
					      ? PyUnicode_DecodeUTF8((const char *)p, (Py_ssize_t)n, "surrogatepass")
					      : PyBytes_FromStringAndSize((const char *)p, (Py_ssize_t)n);
			p += n;
			if (push(d, o) < 0)
				return NULL;
			break;
		}
		case ')':
			if (push(d, PyTuple_New(0)) < 0)
				return NULL;
			break;
		case ']':
			if (push(d, PyList_New(0)) < 0)
				return NULL;
			break;
		case '}':
			if (push(d, PyDict_New()) < 0)
				return NULL;
			break;
		case '(':
			if (d->nmarks == DEC_MARKS)
				return NULL;
			d->marks[d->nmarks++] = d->sp;
			break;
		case 0x85: /* TUPLE1..3, TUPLE */
		case 0x86:
		case 0x87:
		case 't': {
			m = op == 't' ? pop_mark(d) : d->sp - (op - 0x84);
			if (m < fence(d))
				return NULL;
			PyObject *tup = PyTuple_New(d->sp - m);
			if (!tup)
				return NULL;
			for (int i = m; i < d->sp; i++)
				PyTuple_SET_ITEM(tup, i - m, d->stack[i]); /* the stack's references move */
			d->sp = m;
			if (push(d, tup) < 0)
				return NULL;
			break;
		}
		case 'a': /* APPEND, SETITEM: one item or pair, no mark */
		case 's':
			m = d->sp - (op == 'a' ? 1 : 2);
			if (m - 1 < fence(d) || fill(d, m, op == 's') < 0)
				return NULL;
			break;
		case 'e': /* APPENDS, SETITEMS */
		case 'u':
			m = pop_mark(d);
			if (m < 0 || fill(d, m, op == 'u') < 0)
				return NULL;
			break;
		case 0x94: /* MEMOIZE */
			if (memo_put(d, (uint64_t)d->nset) < 0)
				return NULL;
			break;
		case 'q': /* BINPUT, LONG_BINPUT, BINGET, LONG_BINGET */
		case 'r':
		case 'h':
		case 'j': {
			int w = op == 'q' || op == 'h' ? 1 : 4;
			NEED((size_t)w);
			n = le(p, w);
			p += w;
			if ((op == 'q' || op == 'r' ? memo_put(d, n) : memo_get(d, n)) < 0)
				return NULL;
			break;
		}
		case '.': /* STOP */
			if (d->sp <= fence(d))
				return NULL;
			return d->stack[--d->sp];
		default:
			return NULL;
		}
	}
	return NULL;
#undef NEED
}

PyObject *fast_loads(const char *data, Py_ssize_t len)
{
	struct dec d;
	d.sp = d.nmarks = d.nmemo = d.nset = 0;
	PyObject *r = dec_run(&d, (const unsigned char *)data, (const unsigned char *)data + len);
	while (d.sp > 0)
		Py_DECREF(d.stack[--d.sp]);
	for (int i = 0; i < d.nmemo; i++)
		Py_XDECREF(d.memo[i]);
	if (!r)
		PyErr_Clear();
	return r;
}

/* ------------------------------------------------------------------------- */

static PyMethodDef dumps_message_def = { "_dumps_message", dumps_message, METH_O, dumps_message_doc };

int pickle_init(PyObject *m)
{
	modstate *st = PyModule_GetState(m);
	PyObject *f = PyCFunction_NewEx(&dumps_message_def, m, NULL);
	if (!f || PyModule_AddObjectRef(m, "_dumps_message", f) < 0) {
		Py_XDECREF(f);
		return -1;
	}
	Py_DECREF(f);
	if (!(st->dumps_kwnames = Py_BuildValue("(s)", "buffer_callback")) ||
	    !(st->int_protocol = PyLong_FromLong(5)))
		return -1;
	if (PyModule_AddIntConstant(m, "_OUT_OF_BAND_TAG", OOB_TAG) < 0 ||
	    PyModule_AddIntConstant(m, "_OUT_OF_BAND_ALIGN", OOB_ALIGN) < 0)
		return -1;
	return PyModule_AddIntConstant(m, "_OUT_OF_BAND_FROM", OUT_OF_BAND_FROM);
}

int pickle_import(modstate *st)
{
	PyObject *pickle = PyImport_ImportModule("pickle");
	if (!pickle)
		return -1;
	PyObject *dumps = PyObject_GetAttrString(pickle, "dumps");
	PyObject *loads = dumps ? PyObject_GetAttrString(pickle, "loads") : NULL;
	PyObject *err = loads ? PyObject_GetAttrString(pickle, "PicklingError") : NULL;
	Py_DECREF(pickle);
	if (!err) {
		Py_XDECREF(dumps);
		Py_XDECREF(loads);
		return -1;
	}
	Py_XSETREF(st->pickle_dumps, dumps);
	Py_XSETREF(st->pickle_loads, loads);
	Py_XSETREF(st->PicklingError, err);
	return 0;
}

int pickle_traverse(modstate *st, visitproc visit, void *arg)
{
	Py_VISIT(st->pickle_dumps);
	Py_VISIT(st->pickle_loads);
	Py_VISIT(st->PicklingError);
	Py_VISIT(st->dumps_kwnames);
	Py_VISIT(st->int_protocol);
	return 0;
}

void pickle_clear(modstate *st)
{
	Py_CLEAR(st->pickle_dumps);
	Py_CLEAR(st->pickle_loads);
	Py_CLEAR(st->PicklingError);
	Py_CLEAR(st->dumps_kwnames);
	Py_CLEAR(st->int_protocol);
}
