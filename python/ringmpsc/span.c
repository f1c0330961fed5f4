/*
 * Reservation (Producer.reserve) and ReadView (Channel.read, Consumer.read): a span of records in
 * a ring, exported through the buffer protocol, finished once. One struct and one
 * set of functions, two types.
 */
#include "args.h"
#include "blocking.h"

static const char *const kw_k[] = { "k" };

/* A strong reference to a weakref's target, or NULL (no exception) if it died. */
static PyObject *weakref_get(PyObject *ref)
{
#if PY_VERSION_HEX >= 0x030D0000
	PyObject *o = NULL;
	if (PyWeakref_GetRef(ref, &o) < 0)
		PyErr_Clear();
	return o;
#else
	PyObject *o = PyWeakref_GetObject(ref);
	if (!o || o == Py_None)
		return NULL;
	Py_INCREF(o);
	return o;
#endif
}

/* ------------------------------------------------------------------------- */
/* Reservation and ReadView (SpanObject). */

static int span_is_reservation(SpanObject *self)
{
	return Py_TYPE(self) == STATE(self)->ReservationType;
}

/* Release the memoryview __enter__ handed out, if it has no exports of its own. 0 or -1. */
static int span_release_enter_view(SpanObject *self)
{
	if (!self->view)
		return 0;
	PyObject *v = weakref_get(self->view);
	if (!v)
		return 0;
	PyObject *r = PyObject_CallMethodNoArgs(v, STATE(self)->str_release);
	Py_DECREF(v);
	if (r)
		Py_DECREF(r);
	else if (PyErr_ExceptionMatches(PyExc_BufferError))
		PyErr_Clear(); /* it has exports of its own: the caller sees them in self->exports */
	else
		return -1;
	return 0;
}

/* End the span, exported or not: commit/consume n records (0 aborts/cancels). 0 or -1. */
static int span_end(SpanObject *self, size_t n)
{
	modstate *st = STATE(self);
	int rc;
	hlock *lock;
	if (span_is_reservation(self)) {
		ProducerObject *p = (ProducerObject *)self->owner;
		if (p->gen != st->fork_gen) {
			PyErr_SetString(st->Error, "this reservation was inherited through fork");
			return -1;
		}
		rc = rmpsc_producer_commit(p->p, n);
		lock = &p->lock;
	} else {
		consumer_side *cs = CS(self->owner);
		/* Not the lock's generation: a thread of this process may hold it now. */
		if (self->gen != st->fork_gen) {
			PyErr_SetString(st->Error, "this read view was inherited through fork");
			return -1;
		}
		rc = rmpsc_advance(cs->ch, n);
		lock = &cs->gl->lock;
	}
	self->done = 1;
	hlock_release(lock);
	if (rc < 0) {
		raise_rc(st, rc, 0, ON_OTHER, NULL);
		return -1;
	}
	return 0;
}

static int span_check_open(SpanObject *self)
{
	if (!self->done)
		return 0;
	PyErr_SetString(PyExc_ValueError, span_is_reservation(self) ? "reservation is already committed or aborted"
								      : "read view is already consumed or cancelled");
	return -1;
}

/* Finish the span by hand: commit/consume n records (0 aborts/cancels). 0 or -1. Like
 * mmap.close(), refuses while a view of it is exported, and stays open for another try. */
static int span_finish(SpanObject *self, size_t n)
{
	int is_res = span_is_reservation(self);
	if (span_check_open(self) < 0 || span_release_enter_view(self) < 0)
		return -1;
	if (self->exports > 0) {
		PyErr_Format(PyExc_BufferError,
			     "cannot %s: %zd view(s) of the %s are still exported (a memoryview, or a NumPy array "
			     "made from one); the %s stays open: release them (del the array, memoryview.release()) "
			     "and call %s() again",
			     is_res ? (n ? "commit" : "abort") : (n ? "consume" : "cancel"), self->exports,
			     is_res ? "reservation" : "read view", is_res ? "reservation" : "read view",
			     is_res ? (n ? "commit" : "abort") : (n ? "consume" : "cancel"));
		return -1;
	}
	return span_end(self, n);
}

static void span_dealloc(SpanObject *self)
{
	PyTypeObject *tp = Py_TYPE(self);
	modstate *st = state_of_type(tp);
	if (self->weakrefs)
		PyObject_ClearWeakRefs((PyObject *)self);
	if (!self->done && self->owner) {
		/* Dropped while open: abort / leave the records for the next read. */
		if (tp == st->ReservationType) {
			ProducerObject *p = (ProducerObject *)self->owner;
			if (p->gen == st->fork_gen) {
				rmpsc_producer_commit(p->p, 0);
				hlock_release(&p->lock);
			}
		} else {
			consumer_side *cs = CS(self->owner);
			if (self->gen == st->fork_gen) {
				rmpsc_advance(cs->ch, 0);
				hlock_release(&cs->gl->lock);
			}
		}
	}
	Py_XDECREF(self->view);
	Py_XDECREF(self->owner);
	tp->tp_free(self);
	Py_DECREF(tp);
}

static int span_getbuffer(SpanObject *self, Py_buffer *view, int flags)
{
	if (self->done) {
		PyErr_SetString(PyExc_BufferError, span_is_reservation(self)
			? "reservation is already committed or aborted"
			: "read view is already consumed or cancelled");
		view->obj = NULL;
		return -1;
	}
	int readonly = !span_is_reservation(self);
	if (PyBuffer_FillInfo(view, (PyObject *)self, self->ptr, self->nbytes, readonly, flags) < 0)
		return -1;
	self->exports++;
	return 0;
}

static void span_releasebuffer(SpanObject *self, Py_buffer *view)
{
	self->exports--;
}

static PyObject *span_enter(SpanObject *self, PyObject *unused)
{
	if (self->done) {
		PyErr_SetString(PyExc_ValueError, "cannot enter a finished reservation or read view");
		return NULL;
	}
	PyObject *mv = PyMemoryView_FromObject((PyObject *)self);
	if (!mv)
		return NULL;
	PyObject *ref = PyWeakref_NewRef(mv, NULL);
	if (!ref) {
		Py_DECREF(mv);
		return NULL;
	}
	Py_XSETREF(self->view, ref);
	return mv;
}

PyDoc_STRVAR(span_exit_doc, "__exit__($self, /, *exc_info)\n--\n\n\
Finish: all records on normal exit, none on an exception. A view of it still\n\
exported when the block ends (a NumPy array made from the block's view) makes\n\
it finish with none and raise BufferError.");
static PyObject *span_exit(SpanObject *self, PyObject *const *args, Py_ssize_t nargs)
{
	if (nargs > 3) {
		PyErr_Format(PyExc_TypeError, "__exit__ expected at most 3 arguments, got %zd", nargs);
		return NULL;
	}
	PyObject *et = nargs > 0 ? args[0] : Py_None;
	if (self->done) /* finished by hand inside the block */
		Py_RETURN_FALSE;
	if (span_release_enter_view(self) < 0)
		return NULL;
	Py_ssize_t exports = self->exports;
	/*
	 * A view that outlives the block aliases the span's ring space. Publishing or
	 * consuming would hand that space on while the view can still write or read it, and
	 * refusing would leave the producer or consumer held by a span the block no longer
	 * names. So the span ends with nothing sent (records read again), and the
	 * error says so, unless the block is already raising.
	 */
	if (span_end(self, exports > 0 || et != Py_None ? 0 : (size_t)self->k) < 0)
		return NULL;
	if (exports > 0 && et == Py_None) {
		if (span_is_reservation(self))
			PyErr_Format(PyExc_BufferError,
				     "the with block ended with %zd view(s) of the reservation still exported (a "
				     "NumPy array or memoryview made from the block's view), so it was aborted: "
				     "nothing was sent, and those views now alias ring space the producer reuses. "
				     "Delete them before the block ends (del arr) to commit",
				     exports);
		else
			PyErr_Format(PyExc_BufferError,
				     "the with block ended with %zd view(s) of the read view still exported (a "
				     "NumPy array or memoryview made from the block's view), so it was cancelled: "
				     "nothing was consumed, the records are read again next time, and those views "
				     "now alias ring space that is reused. Copy what you keep "
				     "(np.frombuffer(view, ...).copy()) or delete them before the block ends (del arr)",
				     exports);
		return NULL;
	}
	Py_RETURN_FALSE;
}

/* commit(k=None) / consume(k=None) */
PyDoc_STRVAR(reservation_commit_doc,
"commit($self, /, k=None)\n--\n\nPublish the first k records (default: all; 0 aborts).");
PyDoc_STRVAR(readview_consume_doc,
"consume($self, /, k=None)\n--\n\nConsume the first k records (default: all; 0 cancels).");
static PyObject *span_commit(SpanObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
	PyObject *o_k;
	if (fast_args(span_is_reservation(self) ? "commit" : "consume", args, nargs, kwnames, kw_k, 0, 1, &o_k) < 0)
		return NULL;
	long long k = self->k;
	if (o_k && o_k != Py_None && parse_int(o_k, "k", 0, self->k, &k) < 0)
		return NULL;
	if (span_finish(self, (size_t)k) < 0)
		return NULL;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(reservation_abort_doc, "abort($self, /)\n--\n\nDrop the reservation; nothing is published.");
PyDoc_STRVAR(readview_cancel_doc, "cancel($self, /)\n--\n\nConsume nothing; the records are read again next time.");
static PyObject *span_abort(SpanObject *self, PyObject *unused)
{
	if (span_finish(self, 0) < 0)
		return NULL;
	Py_RETURN_NONE;
}

static Py_ssize_t span_len(SpanObject *self)
{
	return self->k;
}

static PyObject *span_get_nbytes(SpanObject *self, void *c)
{
	return PyLong_FromSsize_t(self->nbytes);
}
static PyObject *span_get_slot(SpanObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->slot);
}
static PyObject *span_get_position(SpanObject *self, void *c)
{
	return PyLong_FromUnsignedLongLong(self->position);
}
static PyObject *span_get_deliveries(SpanObject *self, void *c)
{
	return PyLong_FromUnsignedLong(self->deliveries);
}
static PyObject *span_get_done(SpanObject *self, void *c)
{
	return PyBool_FromLong(self->done);
}

static PyObject *span_repr(SpanObject *self)
{
	return PyUnicode_FromFormat("<%s records=%zd nbytes=%zd slot=%u%s>", Py_TYPE(self)->tp_name, self->k,
				    self->nbytes, self->slot, self->done ? " finished" : "");
}

PyDoc_STRVAR(reservation_doc,
"Space reserved in a producer's ring (Producer.reserve()).\n\
\n\
Exposes the buffer protocol: memoryview(r) is a writable 1-D view of len(r)\n\
records (r.nbytes bytes). commit(k=None) publishes the first k records (all by\n\
default), abort() drops them. The space is not cleared: it holds what the ring\n\
carried there one lap earlier, and committing bytes you did not write delivers\n\
those. Write every byte you commit.\n\
\n\
Views of it alias ring memory, so none may outlive it. Like mmap.close(),\n\
commit() and abort() refuse with BufferError while a view (a memoryview, a NumPy\n\
array made from one) is still exported, and the reservation stays open: release\n\
the views and call again. A with block whose view still has an export when it\n\
ends aborts the reservation (nothing is sent, the producer is free again) and\n\
raises BufferError. Delete such arrays inside the block:\n\
\n\
    with p.reserve(8) as view:\n\
        arr = np.frombuffer(view, dtype=np.uint64)\n\
        arr[:] = values\n\
        del arr              # else: BufferError, nothing sent");

PyDoc_STRVAR(readview_doc,
"Records readable in place (Channel.read(), Consumer.read()).\n\
\n\
Exposes the buffer protocol: memoryview(v) is a read-only 1-D view of len(v)\n\
records from producer slot v.slot. consume(k=None) frees the first k (all by\n\
default); cancel() leaves them for the next read. deliveries is 1 for records\n\
delivered the first time, more when a member of the group died holding them.\n\
\n\
Views of it alias ring memory, so none may outlive it. consume() and cancel()\n\
refuse with BufferError while a view (a memoryview, a NumPy array made from one)\n\
is still exported, and the read view stays open: release the views and call\n\
again. A with block whose view still has an export when it ends cancels the\n\
read view (nothing consumed: the records are read again) and raises\n\
BufferError. Copy what you keep, or delete the array inside the block:\n\
\n\
    with ch.read() as view:\n\
        arr = np.frombuffer(view, dtype=np.uint64).copy()");

#define SPAN_GETSET                                                                                     \
	{ "nbytes", (getter)span_get_nbytes, NULL, "Bytes in the span (len(self) * record_size).", NULL }, \
	{ "slot", (getter)span_get_slot, NULL, "Producer slot of the ring the records are in.", NULL },     \
	{ "done", (getter)span_get_done, NULL, "True once finished.", NULL }

static PyGetSetDef reservation_getset[] = {
	SPAN_GETSET,
	{ NULL },
};

static PyGetSetDef readview_getset[] = {
	SPAN_GETSET,
	{ "position", (getter)span_get_position, NULL,
	  "Ring position of the first record (record i is at position + i): with slot, a record's identity in "
	  "the channel, the same when it is delivered again.",
	  NULL },
	{ "deliveries", (getter)span_get_deliveries, NULL,
	  "How many times these records have been delivered: 1 the first time, more when a member of the group "
	  "died holding them.",
	  NULL },
	{ NULL },
};

static PyMethodDef reservation_methods[] = {
	{ "commit", (PyCFunction)(void (*)(void))span_commit, METH_FASTCALL | METH_KEYWORDS, reservation_commit_doc },
	{ "abort", (PyCFunction)span_abort, METH_NOARGS, reservation_abort_doc },
	{ "__enter__", (PyCFunction)span_enter, METH_NOARGS, enter_doc },
	{ "__exit__", (PyCFunction)(void (*)(void))span_exit, METH_FASTCALL, span_exit_doc },
	{ "__reduce__", (PyCFunction)not_picklable, METH_NOARGS, NULL },
	{ NULL },
};

static PyMethodDef readview_methods[] = {
	{ "consume", (PyCFunction)(void (*)(void))span_commit, METH_FASTCALL | METH_KEYWORDS, readview_consume_doc },
	{ "cancel", (PyCFunction)span_abort, METH_NOARGS, readview_cancel_doc },
	{ "__enter__", (PyCFunction)span_enter, METH_NOARGS, enter_doc },
	{ "__exit__", (PyCFunction)(void (*)(void))span_exit, METH_FASTCALL, span_exit_doc },
	{ "__reduce__", (PyCFunction)not_picklable, METH_NOARGS, NULL },
	{ NULL },
};

static PyMemberDef span_members[] = {
	{ "__weaklistoffset__", T_PYSSIZET, offsetof(SpanObject, weakrefs), READONLY },
	{ NULL },
};

#define SPAN_SLOTS(methods, getset, doc)                            \
	{ Py_tp_doc, (void *)doc },                                 \
	{ Py_tp_dealloc, span_dealloc }, { Py_tp_repr, span_repr }, \
	{ Py_tp_methods, methods }, { Py_tp_getset, getset },       \
	{ Py_tp_members, span_members },                            \
	{ Py_sq_length, span_len }, { Py_mp_length, span_len },     \
	{ Py_bf_getbuffer, span_getbuffer }, { Py_bf_releasebuffer, span_releasebuffer }, { 0, NULL }

static PyType_Slot reservation_slots[] = { SPAN_SLOTS(reservation_methods, reservation_getset, reservation_doc) };
static PyType_Slot readview_slots[] = { SPAN_SLOTS(readview_methods, readview_getset, readview_doc) };

PyType_Spec reservation_spec = {
	.name = "ringmpsc.Reservation",
	.basicsize = sizeof(SpanObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = reservation_slots,
};

PyType_Spec readview_spec = {
	.name = "ringmpsc.ReadView",
	.basicsize = sizeof(SpanObject),
	.flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_IMMUTABLETYPE | Py_TPFLAGS_DISALLOW_INSTANTIATION,
	.slots = readview_slots,
};
