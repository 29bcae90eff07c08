/* The hot paths of engine.py, in C (backprop._cvalue, see _cvalue.c): op methods, making a node.
 * backward()'s loop and the other graph walks are in _cvalue_graph.c.
 * Each does what its Python original in engine.py does, calling the same rules of ops.py (the
 * forward and backward lambdas), so the numbers are the same to the last bit. */

#include "_cvalue.h"

PyTypeObject *bp_ValueType;  /* engine.Value, set by bind() */
PyObject *bp_SCALAR, *bp_ZERO;
static PyObject *EMPTY, *LIFT, *OPENED;
static long open_blocks;  /* engine._open_blocks, kept in step by set_open() */
static int watching;      /* a watcher (detect_anomaly) is attached: every node takes the slow path */
/* On a thread whose open blocks are scope() blocks only (grad on): the label of its new op nodes
 * (scopes.py's, carrying the path), set by engine._block through set_scope_label(), so that
 * making a node there does _opened()'s work itself. NULL: the slow path, through _opened(). */
static _Thread_local PyObject *scope_label;

/* A new Value, untracked, every field empty: what tp_alloc gives and then PyObject_GC_UnTrack,
 * without its zeroing of the whole object, nor the tracking undone at once. */
static Node *new_node(void) {
    Node *out = PyObject_GC_New(Node, bp_ValueType);  /* takes a reference to the type */
    if (out == NULL) return NULL;
    out->data.bits = 0;
    out->grad = out->label = out->fn = out->a = out->b = out->arg = NULL;
    return out;
}

/* A node of fn over a (and b) with value data: engine._node(), or _opened() when a block is
 * open. Steals nothing. */
static PyObject *make(PyObject *fn, PyObject *data, PyObject *a, PyObject *b, PyObject *arg,
                      PyObject *label) {
    Node *out = new_node();
    if (out == NULL) return NULL;
    if (set_data((PyObject *)out, data) < 0) {
        Py_DECREF(out);
        return NULL;
    }
    out->grad = Py_NewRef(bp_ZERO);
    out->label = Py_NewRef(label);
    if (open_blocks && scope_label != NULL && !watching) {
        if (label == EMPTY) Py_SETREF(out->label, Py_NewRef(scope_label));  /* _opened() */
    } else if (open_blocks) {
        out->arg = Py_NewRef(Py_None);
        PyObject *args[] = {(PyObject *)out, fn, a, b ? b : Py_None, arg ? arg : Py_None};
        PyObject *result = PyObject_Vectorcall(OPENED, args, 5, NULL);
        Py_DECREF(out);
        return result;
    }
    out->fn = Py_NewRef(fn);
    out->a = Py_NewRef(a);
    out->b = Py_NewRef(b ? b : Py_None);
    out->arg = Py_NewRef(arg ? arg : Py_None);
    return (PyObject *)out;
}

/* engine._node(fn, data, a, b=None, arg=None, label='') */
PyObject *bp_node(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs < 3 || nargs > 6) {
        PyErr_SetString(PyExc_TypeError, "_node(fn, data, a, b=None, arg=None, label='')");
        return NULL;
    }
    PyObject *b = nargs > 3 && args[3] != Py_None ? args[3] : NULL;
    return make(args[0], args[1], args[2], b, nargs > 4 ? args[4] : NULL,
                nargs > 5 ? args[5] : EMPTY);
}

typedef struct {
    PyObject_HEAD
    PyObject *fn, *forward, *label, *name;
    int arity, mirrored, strict;
    vectorcallfunc vectorcall;
} OpMethod;

static PyObject *value_of(PyObject *x) { /* x as a Value, None for a non-number: _lift() */
    if (Py_TYPE(x) == bp_ValueType) return Py_NewRef(x);
    int plain = !open_blocks || (scope_label != NULL && !watching);
    if ((PyFloat_CheckExact(x) || PyLong_CheckExact(x)) && plain) {
        /* Value(x), as its __init__ makes it outside any block (or in scopes only, with the
         * scope's empty label): a leaf of float(x) */
        double d = PyFloat_AsDouble(x);
        if (d == -1.0 && PyErr_Occurred()) return NULL;
        PyObject *data = PyFloat_FromDouble(d);
        if (data == NULL) return NULL;
        Node *leaf = new_node();
        if (leaf != NULL) {
            set_data((PyObject *)leaf, data);
            leaf->grad = Py_NewRef(bp_ZERO);
            leaf->label = Py_NewRef(open_blocks ? scope_label : EMPTY);
            leaf->fn = Py_NewRef(Py_None);
            leaf->a = Py_NewRef(Py_None);
            leaf->b = Py_NewRef(Py_None);
            leaf->arg = Py_NewRef(Py_None);
        }
        Py_DECREF(data);
        return (PyObject *)leaf;
    }
    return PyObject_CallOneArg(LIFT, x);
}

static PyObject *OpMethod_call(OpMethod *self, PyObject *const *args, size_t nargsf,
                               PyObject *kwnames) {
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (nargs != self->arity || kwnames != NULL) {
        PyErr_Format(PyExc_TypeError, "%S takes %d argument(s)", self->name, self->arity);
        return NULL;
    }
    PyObject *a = args[0], *b = NULL, *result = NULL;
    if (!IS_NODE(a)) {
        PyErr_SetString(PyExc_TypeError, "an op method needs a Value");
        return NULL;
    }
    if (self->arity == 2) {
        PyObject *other = value_of(args[1]);
        if (other == NULL) return NULL;
        if (other == Py_None) {
            Py_DECREF(other);
            if (self->strict) {
                PyErr_Format(PyExc_TypeError,
                             "%S: a Value's other operand must be a Value or a number",
                             self->name);
                return NULL;
            }
            Py_RETURN_NOTIMPLEMENTED;
        }
        if (self->mirrored) {
            b = a;
            a = other;
        } else {
            b = other;
        }
        /* (one reference to other is held until the end) */
        PyObject *fa = data_of(a);
        PyObject *fb = fa ? data_of(b) : NULL;
        if (fa != NULL && fb != NULL) {
            PyObject *fargs[] = {bp_SCALAR, fa, fb};
            PyObject *value = PyObject_Vectorcall(self->forward, fargs, 3, NULL);
            if (value != NULL) {
                result = make(self->fn, value, a, b, NULL, self->label);
                Py_DECREF(value);
            }
        }
        Py_XDECREF(fa);
        Py_XDECREF(fb);
        Py_DECREF(other);
        return result;
    }
    PyObject *fa = data_of(a);
    if (fa == NULL) return NULL;
    PyObject *fargs[] = {bp_SCALAR, fa};
    PyObject *value = PyObject_Vectorcall(self->forward, fargs, 2, NULL);
    Py_DECREF(fa);
    if (value == NULL) return NULL;
    result = make(self->fn, value, a, NULL, NULL, self->label);
    Py_DECREF(value);
    return result;
}

static PyObject *OpMethod_get(PyObject *self, PyObject *obj, PyObject *type) {
    if (obj == NULL || obj == Py_None) return Py_NewRef(self);
    return PyMethod_New(self, obj);
}

static void OpMethod_dealloc(OpMethod *self) {
    Py_XDECREF(self->fn);
    Py_XDECREF(self->forward);
    Py_XDECREF(self->label);
    Py_XDECREF(self->name);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyTypeObject OpMethodType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "backprop._cvalue.OpMethod",
    .tp_doc = PyDoc_STR("engine._binary_method / _unary_method's method, in C"),
    .tp_basicsize = sizeof(OpMethod),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL | Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_vectorcall_offset = offsetof(OpMethod, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_descr_get = OpMethod_get,
    .tp_dealloc = (destructor)OpMethod_dealloc,
};

/* op_method(fn, arity, mirrored, strict, label): the C twin of engine's method for op fn */
PyObject *bp_op_method(PyObject *module, PyObject *args) {
    PyObject *fn, *label;
    int arity, mirrored, strict;
    if (!PyArg_ParseTuple(args, "OiiiO", &fn, &arity, &mirrored, &strict, &label)) return NULL;
    PyObject *forward = PyObject_GetAttrString(fn, "forward");
    if (forward == NULL) return NULL;
    PyObject *name = PyObject_GetAttrString(fn, "name");
    OpMethod *m = name == NULL ? NULL : PyObject_New(OpMethod, &OpMethodType);
    if (m == NULL) {
        Py_DECREF(forward);
        Py_XDECREF(name);
        return NULL;
    }
    m->name = name;
    m->fn = Py_NewRef(fn);
    m->forward = forward;
    m->label = Py_NewRef(label);
    m->arity = arity;
    m->mirrored = mirrored;
    m->strict = strict;
    m->vectorcall = (vectorcallfunc)OpMethod_call;
    return (PyObject *)m;
}

/* bind(Value, SCALAR, lift, opened): what the hot paths need from engine.py */
PyObject *bp_bind(PyObject *module, PyObject *args) {
    PyObject *value_type;
    if (!PyArg_ParseTuple(args, "O!OOO", &PyType_Type, &value_type, &bp_SCALAR, &LIFT, &OPENED))
        return NULL;
    Py_INCREF(bp_SCALAR);
    Py_INCREF(LIFT);
    Py_INCREF(OPENED);
    bp_ValueType = (PyTypeObject *)Py_NewRef(value_type);
    PyTypeObject *t = bp_ValueType;
    if (t->tp_base == &bp_BaseType && t->tp_basicsize == bp_BaseType.tp_basicsize &&
        t->tp_dictoffset == 0 && t->tp_weaklistoffset == 0 && t->tp_finalize == NULL &&
        t->tp_del == NULL && (t->tp_flags & Py_TPFLAGS_HEAPTYPE))
        t->tp_dealloc = bp_BaseType.tp_dealloc;  /* Node_dealloc */
    Py_RETURN_NONE;
}

PyObject *bp_set_open(PyObject *module, PyObject *args) {
    long n;
    int watched;
    if (!PyArg_ParseTuple(args, "lp", &n, &watched)) return NULL;
    open_blocks = n;
    watching = watched;
    Py_RETURN_NONE;
}

/* set_scope_label(label or None), for this thread (see scope_label) */
PyObject *bp_set_scope_label(PyObject *module, PyObject *label) {
    if (label != Py_None && !PyUnicode_Check(label)) {
        PyErr_SetString(PyExc_TypeError, "set_scope_label takes a str or None");
        return NULL;
    }
    Py_XSETREF(scope_label, label == Py_None ? NULL : Py_NewRef(label));
    Py_RETURN_NONE;
}

/* PyInit__cvalue's part for the ops: their type, and the 0.0 and '' every node starts with */
int bp_ops_init(void) {
    if (PyType_Ready(&OpMethodType) < 0) return -1;
    bp_ZERO = PyFloat_FromDouble(0.0);
    EMPTY = PyUnicode_FromString("");
    return bp_ZERO == NULL || EMPTY == NULL ? -1 : 0;
}
