/* Module init, its exceptions and functions, and what the types share (module.h). */
#include <string.h>

#include "args.h"

const char enter_doc[] = "__enter__($self, /)\n--\n\n";

PyObject *self_enter(PyObject *self, PyObject *unused)
{
	return Py_NewRef(self);
}

PyObject *not_picklable(PyObject *self, PyObject *unused)
{
	PyErr_Format(PyExc_TypeError,
		     "cannot pickle '%.100s' objects: they are bound to one process; send the Channel and call "
		     "channel.producer() in the receiving process",
		     Py_TYPE(self)->tp_name);
	return NULL;
}

modstate *state_of_subtype(PyTypeObject *tp)
{
#if PY_VERSION_HEX >= 0x030B0000
	PyObject *m = PyType_GetModuleByDef(tp, &ringmpsc_module_def); /* walks the MRO */
	return m ? (modstate *)PyModule_GetState(m) : NULL;
#else
	for (PyTypeObject *t = tp; t; t = t->tp_base)
		if (PyType_HasFeature(t, Py_TPFLAGS_HEAPTYPE) && ((PyHeapTypeObject *)t)->ht_module &&
		    PyModule_GetDef(((PyHeapTypeObject *)t)->ht_module) == &ringmpsc_module_def)
			return (modstate *)PyModule_GetState(((PyHeapTypeObject *)t)->ht_module);
	PyErr_Format(PyExc_TypeError, "'%.100s' is not a ringmpsc.Channel type", tp->tp_name);
	return NULL;
#endif
}

/* ------------------------------------------------------------------------- */
/* Module functions. */

PyDoc_STRVAR(unlink_doc,
"unlink(name)\n--\n\n\
Remove a named channel's name (/dev/shm/NAME). Processes that have it open keep\n\
using it; the memory is freed when the last one lets go.");
static PyObject *mod_unlink(PyObject *m, PyObject *args, PyObject *kwds)
{
	static char *kwlist[] = { "name", NULL };
	PyObject *o_name;
	if (!PyArg_ParseTupleAndKeywords(args, kwds, "O:unlink", kwlist, &o_name))
		return NULL;
	const char *name = parse_name(o_name, "name");
	if (!name)
		return NULL;
	int rc = rmpsc_unlink(name);
	if (rc < 0) {
		raise_rc(PyModule_GetState(m), rc, errno, ON_OTHER, o_name);
		return NULL;
	}
	Py_RETURN_NONE;
}

PyDoc_STRVAR(after_fork_doc, "_after_fork_child()\n--\n\nRegistered with os.register_at_fork (after_in_child).");
static PyObject *mod_after_fork_child(PyObject *m, PyObject *unused)
{
	modstate *st = PyModule_GetState(m);
	st->fork_gen++;
	Py_RETURN_NONE;
}

PyDoc_STRVAR(strerror_doc, "_strerror(code, /)\n--\n\nThe C core's name for an error code.");
static PyObject *mod_strerror(PyObject *m, PyObject *arg)
{
	long long code;
	if (parse_int(arg, "code", INT32_MIN, INT32_MAX, &code) < 0)
		return NULL;
	return PyUnicode_FromString(rmpsc_strerror((int)code));
}

/* ------------------------------------------------------------------------- */
/* Module. */

static PyMethodDef module_methods[] = {
	{ "unlink", (PyCFunction)(void (*)(void))mod_unlink, METH_VARARGS | METH_KEYWORDS, unlink_doc },
	{ "_after_fork_child", mod_after_fork_child, METH_NOARGS, after_fork_doc },
	{ "_strerror", mod_strerror, METH_O, strerror_doc },
	{ NULL },
};

static PyObject *new_exception(PyObject *m, const char *name, const char *doc, PyObject *bases)
{
	PyObject *e = PyErr_NewExceptionWithDoc(name, doc, bases, NULL);
	if (!e)
		return NULL;
	const char *shortname = strrchr(name, '.') + 1;
	if (PyModule_AddObject(m, shortname, Py_NewRef(e)) < 0) {
		Py_DECREF(e);
		Py_DECREF(e);
		return NULL;
	}
	return e;
}

static PyObject *bases2(PyObject *a, PyObject *b)
{
	return PyTuple_Pack(2, a, b);
}

static int module_exec(PyObject *m)
{
	modstate *st = PyModule_GetState(m);
	PyObject *queue = PyImport_ImportModule("queue");
	if (!queue)
		return -1;
	PyObject *qfull = PyObject_GetAttrString(queue, "Full");
	PyObject *qempty = PyObject_GetAttrString(queue, "Empty");
	Py_DECREF(queue);
	PyObject *b = NULL;
	int ok = 0;
	if (!qfull || !qempty)
		goto done;
	if (!(st->Error = new_exception(m, "ringmpsc.Error", "Base class of ringmpsc's errors.", NULL)))
		goto done;
	if (!(b = bases2(st->Error, qfull)) ||
	    !(st->Full = new_exception(m, "ringmpsc.Full", "No space: the ring (or slab pool) is full. Also a queue.Full.", b)))
		goto done;
	Py_CLEAR(b);
	if (!(b = bases2(st->Error, qempty)) ||
	    !(st->Empty = new_exception(m, "ringmpsc.Empty", "No record arrived in time. Also a queue.Empty.", b)))
		goto done;
	Py_CLEAR(b);
	if (!(st->Closed = new_exception(m, "ringmpsc.Closed",
					 "The channel is closed (for the consumer: closed and drained).", st->Error)))
		goto done;
	if (!(st->TooManyProducers = new_exception(m, "ringmpsc.TooManyProducers",
						   "Every producer slot is held by a live producer.", st->Error)))
		goto done;
	if (!(st->ConsumerBusy = new_exception(m, "ringmpsc.ConsumerBusy",
					       "No consumer place is free: the one consumer role, or every member place "
					       "(max_consumers), is held by live processes, or no group place (max_groups) "
					       "is left. The message says which (and names the owner's pid with one "
					       "consumer place).", st->Error)))
		goto done;
	if (!(st->CorruptRegion = new_exception(m, "ringmpsc.CorruptRegion",
						"The region is not a valid (or compatible) channel, or a ring was "
						"fenced off for impossible positions.", st->Error)))
		goto done;
	if (!(st->ChannelType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &channel_spec, NULL)) ||
	    PyModule_AddType(m, st->ChannelType) < 0)
		goto done;
	if (!(st->ConsumerType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &consumer_spec, NULL)) ||
	    PyModule_AddType(m, st->ConsumerType) < 0)
		goto done;
	if (!(st->ProducerType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &producer_spec, NULL)) ||
	    PyModule_AddType(m, st->ProducerType) < 0)
		goto done;
	if (!(st->ReservationType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &reservation_spec, NULL)) ||
	    PyModule_AddType(m, st->ReservationType) < 0)
		goto done;
	if (!(st->ReadViewType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &readview_spec, NULL)) ||
	    PyModule_AddType(m, st->ReadViewType) < 0)
		goto done;
	if (!(st->BlockType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &block_spec, NULL)) ||
	    PyModule_AddType(m, st->BlockType) < 0)
		goto done;
	block_cache_open(st);
#if PY_VERSION_HEX < 0x030A0000
	/* No Py_TPFLAGS_DISALLOW_INSTANTIATION before 3.10: refuse "T()" the old way. */
	st->ConsumerType->tp_new = NULL;
	st->ProducerType->tp_new = NULL;
	st->ReservationType->tp_new = NULL;
	st->ReadViewType->tp_new = NULL;
	st->BlockType->tp_new = NULL;
#endif
	if (!(st->str_release = PyUnicode_InternFromString("release")))
		goto done;
	st->fork_gen = 0;
	if (PyModule_AddIntConstant(m, "MAX_RECORD_SIZE", RMPSC_MAX_RECORD_SIZE) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_CAPACITY", RMPSC_MAX_CAPACITY) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_PRODUCERS", RMPSC_MAX_PRODUCERS) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_SLAB_SIZE", RMPSC_MAX_SLAB_SIZE) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_SLABS", RMPSC_MAX_SLAB_COUNT) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_CONSUMERS", RMPSC_MAX_CONSUMERS) < 0 ||
	    PyModule_AddIntConstant(m, "MAX_GROUPS", RMPSC_MAX_GROUPS) < 0 ||
	    PyModule_AddStringConstant(m, "DEFAULT_GROUP", RMPSC_DEFAULT_GROUP) < 0)
		goto done;
	if (aio_init(m) < 0 || pickle_init(m) < 0)
		goto done;
	ok = 1;
done:
	Py_XDECREF(b);
	Py_XDECREF(qfull);
	Py_XDECREF(qempty);
	return ok ? 0 : -1;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg)
{
	modstate *st = PyModule_GetState(m);
	Py_VISIT(st->Error);
	Py_VISIT(st->Full);
	Py_VISIT(st->Empty);
	Py_VISIT(st->Closed);
	Py_VISIT(st->TooManyProducers);
	Py_VISIT(st->ConsumerBusy);
	Py_VISIT(st->CorruptRegion);
	Py_VISIT(st->ChannelType);
	Py_VISIT(st->ConsumerType);
	Py_VISIT(st->ProducerType);
	Py_VISIT(st->ReservationType);
	Py_VISIT(st->ReadViewType);
	Py_VISIT(st->BlockType);
	Py_VISIT(st->str_release);
	return pickle_traverse(st, visit, arg);
}

static int module_clear(PyObject *m)
{
	modstate *st = PyModule_GetState(m);
	Py_CLEAR(st->Error);
	Py_CLEAR(st->Full);
	Py_CLEAR(st->Empty);
	Py_CLEAR(st->Closed);
	Py_CLEAR(st->TooManyProducers);
	Py_CLEAR(st->ConsumerBusy);
	Py_CLEAR(st->CorruptRegion);
	Py_CLEAR(st->ChannelType);
	Py_CLEAR(st->ConsumerType);
	Py_CLEAR(st->ProducerType);
	Py_CLEAR(st->ReservationType);
	Py_CLEAR(st->ReadViewType);
	Py_CLEAR(st->BlockType);
	block_cache_close(st);
	Py_CLEAR(st->str_release);
	pickle_clear(st);
	return 0;
}

static void module_free(void *m)
{
	module_clear((PyObject *)m);
}

static PyModuleDef_Slot module_slots[] = {
	{ Py_mod_exec, module_exec },
	{ 0, NULL },
};

PyDoc_STRVAR(module_doc, "The C extension behind the ringmpsc package (import ringmpsc instead).");

struct PyModuleDef ringmpsc_module_def = {
	PyModuleDef_HEAD_INIT,
	.m_name = "ringmpsc._ringmpsc",
	.m_doc = module_doc,
	.m_size = sizeof(modstate),
	.m_methods = module_methods,
	.m_slots = module_slots,
	.m_traverse = module_traverse,
	.m_clear = module_clear,
	.m_free = module_free,
};

PyMODINIT_FUNC PyInit__ringmpsc(void)
{
	return PyModuleDef_Init(&ringmpsc_module_def);
}

