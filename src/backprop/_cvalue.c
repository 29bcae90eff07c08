/* The optional native base of backprop.Value: its fields in C, out of the collector's way.
 *
 * engine.py stays the reference: Value subclasses this type with __slots__ = (), and every
 * method, rule and number is the Python one. What this type changes is only where the fields
 * live and what the cyclic garbage collector sees:
 *   - data is a C double (a graph node is 88 bytes with nothing else allocated). Anything
 *     else assigned to .data (an int, a marker of compiled mode, a float whose bits collide
 *     with the tag below) is kept as the object itself, its pointer in a NaN's payload, so
 *     that .data gives back exactly what was put there, as a slot would;
 *   - a node is not tracked by the collector: a graph built by the ops is acyclic (an op's
 *     operands are older than the node), so it cannot leak, and the collector's passes need not
 *     rescan it while a loop builds the next one. A cycle needs .grad (or .label) to hold an
 *     object that can reach the node back, as backward(create_graph=True) makes: setting such a
 *     .grad tracks the node and every untracked node it reaches, so the collector sees the
 *     whole cycle;
 *   - dropping a deep chain frees it with a loop, not one C call per node.
 *
 * This file is the node type and the module; _cvalue_ops.c the op methods and the making of a
 * node; _cvalue_graph.c the graph walks; _cvalue.h what they share.
 */
#include "_cvalue.h"

/* Is o a node this type leaves untracked when it is made: a Value (or a subclass adding no
 * fields)? A subclass with fields of its own stays tracked, since they may hold anything. */
static int plain(PyObject *o) {
    PyTypeObject *t = Py_TYPE(o);
    return t->tp_basicsize == (Py_ssize_t)sizeof(Node) && t->tp_dictoffset == 0;
}

/* Track node and every untracked node it reaches through its operands, .grad and .label. A
 * tracked plain node's reach is tracked already (this is the only place such nodes become
 * tracked), so the walk stops there and each node is walked once; it walks on through nodes of
 * other subclasses (tracked from birth), remembering them so that it ends. */
static int track_reach(PyObject *node) {
    Stack s;
    PyObject *seen = NULL;
    int failed = 0;
    stack_init(&s);
    if (stack_push(&s, node) < 0) return -1;
    while (s.n && !failed) {
        PyObject *o = s.items[--s.n];
        if (o == NULL || !IS_NODE(o)) continue;
        if (plain(o)) {
            if (PyObject_GC_IsTracked(o)) continue;
            PyObject_GC_Track(o);
        } else {
            PyObject *key = PyLong_FromVoidPtr(o);
            if (key == NULL || (seen == NULL && (seen = PySet_New(NULL)) == NULL)) {
                Py_XDECREF(key);
                failed = 1;
                break;
            }
            int found = PySet_Contains(seen, key);
            if (found == 0) found = PySet_Add(seen, key) < 0 ? -1 : 0; else if (found == 1) {
                Py_DECREF(key);
                continue;
            }
            Py_DECREF(key);
            if (found < 0) { failed = 1; break; }
        }
        Node *v = (Node *)o;
        if (stack_push(&s, v->a) < 0 || stack_push(&s, v->b) < 0 ||
            stack_push(&s, v->grad) < 0 || stack_push(&s, v->label) < 0) {
            PyErr_NoMemory();
            failed = 1;
        }
    }
    stack_free(&s);
    Py_XDECREF(seen);
    return failed ? -1 : 0;
}

/* After self.grad or self.label = value: could value close a cycle back to self? Then self,
 * and whatever untracked node it reaches, becomes tracked. Floats, ints, strings and other
 * objects the collector ignores change nothing. */
int bp_watch(PyObject *self, PyObject *value) {
    if (!PyObject_IS_GC(value) || PyUnicode_Check(value)) return 0;
    if (!PyObject_GC_IsTracked(self)) return track_reach(self);  /* walks value too */
    return IS_NODE(value) ? track_reach(value) : 0;
}

/* ---- making and freeing ------------------------------------------------------------------ */

static PyObject *Node_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    Node *self = (Node *)type->tp_alloc(type, 0);
    if (self != NULL && plain((PyObject *)self)) PyObject_GC_UnTrack(self);
    return (PyObject *)self;
}

static int Node_traverse(Node *self, visitproc visit, void *arg) {
    if (IS_BOXED(self)) Py_VISIT(UNBOX(self));
    Py_VISIT(self->grad);
    Py_VISIT(self->label);
    Py_VISIT(self->fn);
    Py_VISIT(self->a);
    Py_VISIT(self->b);
    Py_VISIT(self->arg);
    return 0;
}

static void clear_data(Node *self) {
    if (IS_BOXED(self)) {
        PyObject *o = UNBOX(self);
        self->data.d = 0.0;
        Py_XDECREF(o);
    }
}

static int Node_clear(Node *self) {
    clear_data(self);
    Py_CLEAR(self->grad);
    Py_CLEAR(self->label);
    Py_CLEAR(self->fn);
    Py_CLEAR(self->a);
    Py_CLEAR(self->b);
    Py_CLEAR(self->arg);
    return 0;
}

/* Drop self's operands without recursion: an operand that self held the last reference to has
 * its own operands taken first, onto this loop's stack, so freeing it frees nothing below. */
static void release_operands(Node *self) {
    Stack s;
    stack_init(&s);
    PyObject *a = self->a, *b = self->b;
    self->a = self->b = NULL;
    if (a != NULL) stack_push(&s, a);  /* cannot fail: the first pushes are inline */
    if (b != NULL) stack_push(&s, b);
    while (s.n) {
        PyObject *o = s.items[--s.n];
        if (Py_REFCNT(o) == 1 && IS_NODE(o)) {
            Node *v = (Node *)o;
            if (v->a != NULL && stack_push(&s, v->a) == 0) v->a = NULL;
            if (v->b != NULL && stack_push(&s, v->b) == 0) v->b = NULL;
        }
        Py_DECREF(o);
    }
    stack_free(&s);
}

/* Value's own tp_dealloc once bind() has seen it adds nothing to free (no slots, dict, weak
 * references or finalizer): a heap type's generic dealloc (subtype_dealloc) would only find
 * that out per node, re-track the node and call this. An instance of a heap type then owns a
 * reference to its type, which this lets go (subtype_dealloc does it only when the nearest
 * type with another dealloc is static: this one, called for Base's own, or before bind()). */
static void Node_dealloc(Node *self) {
    PyTypeObject *type = Py_TYPE(self), *owner = type;
    PyObject_GC_UnTrack(self);
    clear_data(self);
    Py_CLEAR(self->grad);
    Py_CLEAR(self->label);
    Py_CLEAR(self->fn);
    Py_CLEAR(self->arg);
    release_operands(self);
    while (owner->tp_dealloc != (destructor)Node_dealloc) owner = owner->tp_base;
    type->tp_free((PyObject *)self);
    if (owner->tp_flags & Py_TPFLAGS_HEAPTYPE) Py_DECREF(type);
}

/* ---- fields ------------------------------------------------------------------------------
 * Reads: grad, label and the op's fields are T_OBJECT_EX members, which Python 3.11's
 * specializing interpreter reads inline (LOAD_ATTR_SLOT: a version check and a load, as for a
 * __slots__ class), not through a descriptor call; data, a double, needs its getter (a float
 * made per read). Writes go through Node_setattro below, which finds the field by the
 * descriptor the name resolves to (a subclass's own property of that name wins, as it must)
 * and sets it directly, applying the hooks: a float into the double, a .grad or .label that
 * could close a cycle tracks the node. grad and label are READONLY members so that no other
 * path (a member descriptor's __set__, a specialized store) could skip those hooks. */

static int set_hooked(Node *self, PyObject **slot, PyObject *value, const char *name,
                      PyTypeObject *quiet) {
    if (value == NULL) {
        if (*slot == NULL) {
            PyErr_SetString(PyExc_AttributeError, name);
            return -1;
        }
        Py_CLEAR(*slot);
        return 0;
    }
    Py_XSETREF(*slot, Py_NewRef(value));
    return Py_IS_TYPE(value, quiet) ? 0 : bp_watch((PyObject *)self, value);
}

static PyObject *Node_get_data(Node *self, void *closure) {
    return data_of((PyObject *)self);
}

static int Node_set_data(Node *self, PyObject *value, void *closure) {
    return set_data((PyObject *)self, value);
}

static PyGetSetDef Node_getset[] = {
    {"data", (getter)Node_get_data, (setter)Node_set_data, "the node's value", NULL},
    {NULL},
};

static PyMemberDef Node_members[] = {
    {"grad", T_OBJECT_EX, offsetof(Node, grad), READONLY, "d(root)/d(this node)"},
    {"label", T_OBJECT_EX, offsetof(Node, label), READONLY, "the node's name"},
    {"_fn", T_OBJECT_EX, offsetof(Node, fn), 0, "the op's row in ops.OPS, None for a leaf"},
    {"_a", T_OBJECT_EX, offsetof(Node, a), 0, "the first operand, or None"},
    {"_b", T_OBJECT_EX, offsetof(Node, b), 0, "the second operand, or None"},
    {"_arg", T_OBJECT_EX, offsetof(Node, arg), 0, "the op's constant (the 2 of x**2), or None"},
    {NULL},
};

/* Base's descriptors of data, grad, label, _fn, _a, _b, _arg (borrowed from its dict) */
enum { F_DATA, F_GRAD, F_LABEL, F_FN, F_A, F_B, F_ARG, N_FIELDS };
static PyObject *DESCRIPTORS[N_FIELDS];

static int Node_setattro(PyObject *self, PyObject *name, PyObject *value) {
    PyObject *d = _PyType_Lookup(Py_TYPE(self), name);  /* borrowed; cached by the type */
    int i = 0;
    if (d != NULL)
        while (i < N_FIELDS && DESCRIPTORS[i] != d) i++;
    Node *v = (Node *)self;
    PyObject **slot;
    switch (d == NULL ? N_FIELDS : i) {
    case F_DATA:
        if (value == NULL && IS_BOXED(v) && UNBOX(v) == NULL) {  /* del of an absent .data */
            PyErr_SetString(PyExc_AttributeError, "data");
            return -1;
        }
        return set_data(self, value);
    case F_GRAD:
        return set_hooked(v, &v->grad, value, "grad", &PyFloat_Type);
    case F_LABEL:
        return set_hooked(v, &v->label, value, "label", &PyUnicode_Type);
    case F_FN: slot = &v->fn; break;
    case F_A: slot = &v->a; break;
    case F_B: slot = &v->b; break;
    case F_ARG: slot = &v->arg; break;
    default:
        return PyObject_GenericSetAttr(self, name, value);
    }
    if (value == NULL && *slot == NULL) {
        PyErr_SetObject(PyExc_AttributeError, name);
        return -1;
    }
    Py_XSETREF(*slot, Py_XNewRef(value));
    return 0;
}

/* ---- copying and pickling: the fields as a dict, as a slotted class gives them ------------ */

static const char *FIELD_NAMES[] = {"grad", "label", "_fn", "_a", "_b", "_arg"};

static PyObject **field(Node *self, int i) {
    PyObject **fields[] = {&self->grad, &self->label, &self->fn, &self->a, &self->b, &self->arg};
    return fields[i];
}

static PyObject *Node_getstate(Node *self, PyObject *unused) {
    PyObject *state = PyDict_New();
    if (state == NULL) return NULL;
    PyObject *data = data_of((PyObject *)self);
    if (data == NULL || PyDict_SetItemString(state, "data", data) < 0) goto fail;
    Py_DECREF(data);
    for (int i = 0; i < 6; i++) {
        PyObject *value = *field(self, i);
        if (value != NULL && PyDict_SetItemString(state, FIELD_NAMES[i], value) < 0) goto fail;
    }
    return state;
fail:
    Py_XDECREF(data);
    Py_DECREF(state);
    return NULL;
}

static PyObject *Node_setstate(Node *self, PyObject *state) {
    if (!PyDict_Check(state)) {
        PyErr_SetString(PyExc_TypeError, "Value state must be a dict");
        return NULL;
    }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(state, &pos, &key, &value)) {
        if (PyObject_SetAttr((PyObject *)self, key, value) < 0) return NULL;
    }
    Py_RETURN_NONE;
}

static PyMethodDef Node_methods[] = {
    {"__getstate__", (PyCFunction)Node_getstate, METH_NOARGS, NULL},
    {"__setstate__", (PyCFunction)Node_setstate, METH_O, NULL},
    {NULL},
};

PyTypeObject bp_BaseType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "backprop._cvalue.Base",
    .tp_doc = PyDoc_STR("Value's fields in C, untracked by the collector (see _cvalue.c)"),
    .tp_basicsize = sizeof(Node),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = Node_new,
    .tp_dealloc = (destructor)Node_dealloc,
    .tp_traverse = (traverseproc)Node_traverse,
    .tp_clear = (inquiry)Node_clear,
    .tp_setattro = Node_setattro,
    .tp_members = Node_members,
    .tp_getset = Node_getset,
    .tp_methods = Node_methods,
};

static PyMethodDef module_methods[] = {
    {"bind", bp_bind, METH_VARARGS, "bind(Value, SCALAR, lift, opened)"},
    {"set_open", bp_set_open, METH_VARARGS, "set_open(engine._open_blocks, watching)"},
    {"set_scope_label", bp_set_scope_label, METH_O,
     "set_scope_label(label or None): this thread's scope label, when only scopes are open"},
    {"op_method", bp_op_method, METH_VARARGS, "op_method(fn, arity, mirrored, strict, label)"},
    {"node", (PyCFunction)(void (*)(void))bp_node, METH_FASTCALL, "engine._node, in C"},
    {"sweep", bp_sweep, METH_O, "backward()'s loop over a topological order, in C"},
    {"topological_order", bp_topological_order, METH_O, "engine._topological_order, in C"},
    {"sweep_graph", (PyCFunction)(void (*)(void))bp_sweep_graph, METH_FASTCALL,
     "autodiff.sweep._sweep_graph without a check, in C"},
    {"backward", (PyCFunction)(void (*)(void))bp_backward, METH_FASTCALL,
     "Value.backward(grad)'s float path, in C"},
    {"read_data", (PyCFunction)(void (*)(void))bp_read_data, METH_FASTCALL,
     "read_data(values, out) -> -1, or the index of the first non-number .data"},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "backprop._cvalue",
    .m_doc = "The optional native base of backprop.Value (see _base.py).",
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__cvalue(void) {
    if (PyType_Ready(&bp_BaseType) < 0) return NULL;
    /* the fields by name, as a slotted class lists them (code that copies a node reads it) */
    PyObject *slots = Py_BuildValue("(sssssss)", "data", "grad", "label", "_fn", "_a", "_b", "_arg");
    if (slots == NULL || PyDict_SetItemString(bp_BaseType.tp_dict, "__slots__", slots) < 0) return NULL;
    Py_DECREF(slots);
    PyType_Modified(&bp_BaseType);
    static const char *names[N_FIELDS] = {"data", "grad", "label", "_fn", "_a", "_b", "_arg"};
    for (int i = 0; i < N_FIELDS; i++)
        if ((DESCRIPTORS[i] = PyDict_GetItemString(bp_BaseType.tp_dict, names[i])) == NULL)
            return NULL;
    if (bp_ops_init() < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Base", (PyObject *)&bp_BaseType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
