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
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    union {
        double d;
        uint64_t bits;
    } data;
    PyObject *grad;
    PyObject *label;
    PyObject *fn;
    PyObject *a;
    PyObject *b;
    PyObject *arg;
} Node;

static PyTypeObject BaseType;

/* .data holding an object: a signalling NaN whose top 16 bits are BOXED, the pointer below */
#define BOXED 0x7FF4000000000000ULL
#define TOP16 0xFFFF000000000000ULL
#define IS_BOXED(v) (((v)->data.bits & TOP16) == BOXED)
#define UNBOX(v) ((PyObject *)(uintptr_t)((v)->data.bits & ~TOP16))

static int watch(PyObject *self, PyObject *value);

/* .data as an object (a new reference) */
static PyObject *data_of(PyObject *node) {
    Node *v = (Node *)node;
    if (IS_BOXED(v)) {
        PyObject *o = UNBOX(v);
        if (o == NULL) PyErr_SetString(PyExc_AttributeError, "data");
        return Py_XNewRef(o);
    }
    return PyFloat_FromDouble(v->data.d);
}

/* .data = value (borrowed): a float as a double, anything else boxed */
static int set_data(PyObject *node, PyObject *value) {
    Node *v = (Node *)node;
    PyObject *old = IS_BOXED(v) ? UNBOX(v) : NULL;
    if (value != NULL && PyFloat_CheckExact(value)) {
        double d = PyFloat_AS_DOUBLE(value);
        uint64_t bits;
        memcpy(&bits, &d, sizeof bits);
        if ((bits & TOP16) != BOXED) {
            v->data.d = d;
            Py_XDECREF(old);
            return 0;
        }
    }
    uint64_t p = (uint64_t)(uintptr_t)value;
    if (p & TOP16) {
        PyErr_SetString(PyExc_MemoryError, "a pointer past 48 bits cannot be kept in .data");
        return -1;
    }
    Py_XINCREF(value);
    v->data.bits = BOXED | p;
    Py_XDECREF(old);
    return value == NULL || PyFloat_CheckExact(value) ? 0 : watch(node, value);
}

#define IS_NODE(o) PyObject_TypeCheck((o), &BaseType)

/* A growable stack of object pointers, on the C stack until it grows past STACK_INLINE. */
#define STACK_INLINE 64
typedef struct {
    PyObject **items;
    Py_ssize_t n, cap;
    PyObject *inline_items[STACK_INLINE];
} Stack;

static void stack_init(Stack *s) {
    s->items = s->inline_items;
    s->n = 0;
    s->cap = STACK_INLINE;
}

static int stack_push(Stack *s, PyObject *o) {
    if (s->n == s->cap) {
        Py_ssize_t cap = s->cap * 2;
        PyObject **items = s->items == s->inline_items
                               ? PyMem_Malloc(cap * sizeof(PyObject *))
                               : PyMem_Realloc(s->items, cap * sizeof(PyObject *));
        if (items == NULL) return -1;
        if (s->items == s->inline_items) memcpy(items, s->inline_items, s->n * sizeof(PyObject *));
        s->items = items;
        s->cap = cap;
    }
    s->items[s->n++] = o;
    return 0;
}

static void stack_free(Stack *s) {
    if (s->items != s->inline_items) PyMem_Free(s->items);
}

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
static int watch(PyObject *self, PyObject *value) {
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
    return Py_IS_TYPE(value, quiet) ? 0 : watch((PyObject *)self, value);
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

static PyTypeObject BaseType = {
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

/* ---- the hot paths of engine.py, in C: op methods, making a node, backward()'s loop --------
 * Each does what its Python original in engine.py does, calling the same rules of ops.py (the
 * forward and backward lambdas), so the numbers are the same to the last bit. */

static PyTypeObject *ValueType;  /* engine.Value, set by bind() */
static PyObject *SCALAR, *ZERO, *EMPTY, *LIFT, *OPENED;
static long open_blocks;  /* engine._open_blocks, kept in step by set_open() */

static void set_field(PyObject **slot, PyObject *value) { /* steals value */
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
}

/* A new Value, untracked, every field empty: what tp_alloc gives and then PyObject_GC_UnTrack,
 * without its zeroing of the whole object, nor the tracking undone at once. */
static Node *new_node(void) {
    Node *out = PyObject_GC_New(Node, ValueType);  /* takes a reference to the type */
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
    out->grad = Py_NewRef(ZERO);
    out->label = Py_NewRef(label);
    if (open_blocks) {
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
static PyObject *node(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
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
    if (Py_TYPE(x) == ValueType) return Py_NewRef(x);
    if ((PyFloat_CheckExact(x) || PyLong_CheckExact(x)) && !open_blocks) {
        /* Value(x), as its __init__ makes it outside any block: a leaf of float(x) */
        double d = PyFloat_AsDouble(x);
        if (d == -1.0 && PyErr_Occurred()) return NULL;
        PyObject *data = PyFloat_FromDouble(d);
        if (data == NULL) return NULL;
        Node *leaf = new_node();
        if (leaf != NULL) {
            set_data((PyObject *)leaf, data);
            leaf->grad = Py_NewRef(ZERO);
            leaf->label = Py_NewRef(EMPTY);
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
            PyObject *fargs[] = {SCALAR, fa, fb};
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
    PyObject *fargs[] = {SCALAR, fa};
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
static PyObject *op_method(PyObject *module, PyObject *args) {
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

/* a.grad += g, as Python does it (float + float for floats; any + otherwise) */
static int add_grad(PyObject *node, PyObject *g) {
    Node *v = (Node *)node;
    if (v->grad == NULL) {
        PyErr_SetString(PyExc_AttributeError, "grad");
        return -1;
    }
    if (PyFloat_CheckExact(v->grad) && PyFloat_CheckExact(g)) {  /* float + float: one add */
        PyObject *sum = PyFloat_FromDouble(PyFloat_AS_DOUBLE(v->grad) + PyFloat_AS_DOUBLE(g));
        if (sum == NULL) return -1;
        set_field(&v->grad, sum);
        return 0;
    }
    PyObject *sum = PyNumber_InPlaceAdd(v->grad, g);
    if (sum == NULL) return -1;
    set_field(&v->grad, sum);
    return PyFloat_CheckExact(sum) ? 0 : watch(node, sum);
}

/* ---- a set of pointers (open addressing), for the topological sort's visited nodes -------- */

typedef struct {
    void **slots;
    Py_ssize_t mask, n;
} PtrSet;

static int ptrset_init(PtrSet *s, Py_ssize_t expected) {
    Py_ssize_t size = 64;
    while (size < expected * 2) size *= 2;
    s->slots = PyMem_Calloc(size, sizeof(void *));
    s->mask = size - 1;
    s->n = 0;
    return s->slots ? 0 : -1;
}

static size_t ptr_hash(void *p) {
    size_t h = (size_t)p >> 4;
    return h ^ (h >> 16);
}

/* add p: 1 if it was new, 0 if present, -1 on no memory */
static int ptrset_add(PtrSet *s, void *p) {
    if ((s->n + 1) * 2 > s->mask + 1) {
        PtrSet bigger;
        if (ptrset_init(&bigger, s->mask + 1) < 0) return -1;
        for (Py_ssize_t i = 0; i <= s->mask; i++)
            if (s->slots[i]) ptrset_add(&bigger, s->slots[i]);
        PyMem_Free(s->slots);
        *s = bigger;
    }
    size_t i = ptr_hash(p) & s->mask;
    while (s->slots[i]) {
        if (s->slots[i] == p) return 0;
        i = (i + 1) & s->mask;
    }
    s->slots[i] = p;
    s->n++;
    return 1;
}

static int ptrset_has(PtrSet *s, void *p) {
    size_t i = ptr_hash(p) & s->mask;
    while (s->slots[i]) {
        if (s->slots[i] == p) return 1;
        i = (i + 1) & s->mask;
    }
    return 0;
}

/* engine._topological_order(roots): the same explicit-stack depth-first sort, the same order */
static PyObject *topological_order(PyObject *module, PyObject *roots) {
    PyObject *seq = PySequence_Fast(roots, "roots must be a sequence");
    if (seq == NULL) return NULL;
    PyObject *order = PyList_New(0);
    Stack st;
    PtrSet visited;
    stack_init(&st);
    if (order == NULL || ptrset_init(&visited, 1024) < 0) {
        Py_XDECREF(order);
        Py_DECREF(seq);
        return PyErr_NoMemory();
    }
    int failed = 0;
    /* NULL marks "the node under me has all its inputs in order" (None in the Python) */
    for (Py_ssize_t i = PySequence_Fast_GET_SIZE(seq) - 1; i >= 0 && !failed; i--)
        failed = stack_push(&st, PySequence_Fast_GET_ITEM(seq, i)) < 0;
    while (st.n && !failed) {
        PyObject *node = st.items[--st.n];
        if (node == NULL) {
            failed = PyList_Append(order, st.items[--st.n]) < 0;
            continue;
        }
        if (!IS_NODE(node)) {
            PyErr_SetString(PyExc_TypeError, "a graph of Values was expected");
            failed = 1;
            break;
        }
        int added = ptrset_add(&visited, node);
        if (added <= 0) {
            failed = added < 0;
            continue;
        }
        Node *v = (Node *)node;
        PyObject *a = v->a, *b = v->b;
        if (stack_push(&st, node) < 0 || stack_push(&st, NULL) < 0) failed = 1;
        else if (b != NULL && b != Py_None && !ptrset_has(&visited, b) && stack_push(&st, b) < 0)
            failed = 1;
        else if (a != NULL && a != Py_None && !ptrset_has(&visited, a) && stack_push(&st, a) < 0)
            failed = 1;
    }
    stack_free(&st);
    PyMem_Free(visited.slots);
    Py_DECREF(seq);
    if (failed) {
        if (!PyErr_Occurred()) PyErr_NoMemory();
        Py_DECREF(order);
        return NULL;
    }
    return order;
}

/* The rows' backward rules and has_arg, looked up once per op per sweep */
#define RULES 64
typedef struct {
    PyObject *fn[RULES], *backward[RULES];
    char has_arg[RULES];
    int n;
} Rules;

static int rule_of(Rules *r, PyObject *fn) {
    for (int i = 0; i < r->n; i++)
        if (r->fn[i] == fn) return i;
    if (r->n == RULES) return -2;
    PyObject *backward = PyObject_GetAttrString(fn, "backward");
    if (backward == NULL) return -1;
    PyObject *flag = PyObject_GetAttrString(fn, "has_arg");
    int has_arg = flag == NULL ? -1 : PyObject_IsTrue(flag);
    Py_XDECREF(flag);
    if (has_arg < 0) {
        Py_DECREF(backward);
        return -1;
    }
    int i = r->n++;
    r->fn[i] = fn;  /* borrowed: a node of the order holds it */
    r->backward[i] = backward;
    r->has_arg[i] = (char)has_arg;
    return i;
}

static void rules_free(Rules *r) {
    for (int i = 0; i < r->n; i++) Py_DECREF(r->backward[i]);
}

/* backward()'s loop over the nodes in reverse topological order, in C: for each node, its op's
 * backward rule (the Python lambda) and the sums into its inputs' .grad. */
static int sweep_order(PyObject *order) {
    Rules rules;
    rules.n = 0;
    int ok = 1;
    for (Py_ssize_t i = PyList_GET_SIZE(order) - 1; i >= 0 && ok; i--) {
        Node *v = (Node *)PyList_GET_ITEM(order, i);
        if (v->fn == NULL || v->fn == Py_None) continue;
        int k = rule_of(&rules, v->fn);
        if (k == -2) {  /* more ops than the cache holds: look this one up each time */
            PyErr_SetString(PyExc_RuntimeError, "too many distinct ops in one graph");
            k = -1;
        }
        PyObject *a = v->a, *b = v->b;
        if (k < 0 || v->grad == NULL || a == NULL || b == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_AttributeError, "a node without grad");
            ok = 0;
            break;
        }
        int has_b = b != Py_None, has_arg = rules.has_arg[k];
        Py_INCREF(v);  /* a rule may drop references: hold the node and its inputs */
        Py_INCREF(a);
        Py_INCREF(b);
        PyObject *grads = NULL, *g = Py_NewRef(v->grad);
        PyObject *out = data_of((PyObject *)v);
        PyObject *x = out ? data_of(a) : NULL;
        PyObject *y = !x ? NULL : has_b ? data_of(b) : (has_arg ? Py_NewRef(v->arg) : NULL);
        Py_ssize_t n = (has_b || has_arg) ? 5 : 4;
        if (out != NULL && x != NULL && (n == 4 || y != NULL)) {
            PyObject *bargs[] = {SCALAR, g, out, x, y};
            grads = PyObject_Vectorcall(rules.backward[k], bargs, n, NULL);
        }
        Py_DECREF(g);
        Py_XDECREF(out);
        Py_XDECREF(x);
        Py_XDECREF(y);
        ok = grads != NULL;
        if (ok) {
            Py_ssize_t want = has_b ? 2 : 1;
            if (PyTuple_CheckExact(grads) && PyTuple_GET_SIZE(grads) == want) {
                ok = add_grad(a, PyTuple_GET_ITEM(grads, 0)) == 0;
                if (ok && has_b) ok = add_grad(b, PyTuple_GET_ITEM(grads, 1)) == 0;
            } else {
                PyErr_SetString(PyExc_ValueError, "a backward rule must return a tuple, one "
                                                  "gradient per input");
                ok = 0;
            }
            Py_DECREF(grads);
        }
        Py_DECREF(v);
        Py_DECREF(a);
        Py_DECREF(b);
    }
    rules_free(&rules);
    return ok ? 0 : -1;
}

static PyObject *sweep(PyObject *module, PyObject *order) {
    if (!PyList_CheckExact(order)) {
        PyErr_SetString(PyExc_TypeError, "sweep() needs the list of nodes");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(order); i++)
        if (!IS_NODE(PyList_GET_ITEM(order, i))) {
            PyErr_SetString(PyExc_TypeError, "sweep() needs Values");
            return NULL;
        }
    if (sweep_order(order) < 0) return NULL;
    Py_RETURN_NONE;
}

/* node.grad = t into an adjoint being summed (autodiff/sweep.py's _sweep_graph, for one input):
 * None means nothing yet; two Values add with Value.__add__; SKIP (a leaf that gets none) stays;
 * anything else goes through _accumulate(total, t, True). */
static int add_adjoint(PyObject *node, PyObject *t, PyObject *add, PyObject *accumulate,
                       PyObject *skip) {
    Node *v = (Node *)node;
    PyObject *total = v->grad, *sum;
    if (total == NULL || total == Py_None) {
        sum = Py_NewRef(t);
    } else if (Py_TYPE(total) == ValueType && Py_TYPE(t) == ValueType) {
        PyObject *args[] = {total, t};
        sum = PyObject_Vectorcall(add, args, 2, NULL);
    } else if (total != skip) {
        PyObject *args[] = {total, t, Py_True};
        sum = PyObject_Vectorcall(accumulate, args, 3, NULL);
    } else {
        return 0;
    }
    if (sum == NULL) return -1;
    set_field(&v->grad, sum);
    return PyFloat_CheckExact(sum) ? 0 : watch(node, sum);
}

/* sweep_graph(order, m, add, accumulate, skip): autodiff/sweep.py's _sweep_graph without a check,
 * in C: the rules get the nodes themselves and build the gradient as a graph. */
static PyObject *sweep_graph(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 5 || !PyList_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "sweep_graph(order, m, add, accumulate, skip)");
        return NULL;
    }
    PyObject *order = args[0], *m = args[1], *add = args[2], *accumulate = args[3];
    PyObject *skip = args[4];
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(order); i++)
        if (!IS_NODE(PyList_GET_ITEM(order, i))) {
            PyErr_SetString(PyExc_TypeError, "sweep_graph() needs Values");
            return NULL;
        }
    Rules rules;
    rules.n = 0;
    int ok = 1;
    for (Py_ssize_t i = PyList_GET_SIZE(order) - 1; i >= 0 && ok; i--) {
        Node *v = (Node *)PyList_GET_ITEM(order, i);
        if (v->fn == NULL || v->fn == Py_None || v->grad == NULL || v->grad == Py_None) continue;
        int k = rule_of(&rules, v->fn);
        PyObject *a = v->a, *b = v->b;
        if (k < 0 || a == NULL || b == NULL) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_RuntimeError, "too many ops in a graph");
            ok = 0;
            break;
        }
        int has_b = b != Py_None;
        Py_INCREF(v);
        Py_INCREF(a);
        Py_INCREF(b);
        PyObject *g = Py_NewRef(v->grad);
        PyObject *third = has_b ? b : (rules.has_arg[k] ? v->arg : NULL);
        PyObject *bargs[] = {m, g, (PyObject *)v, a, third};
        PyObject *grads = PyObject_Vectorcall(rules.backward[k], bargs, third ? 5 : 4, NULL);
        Py_DECREF(g);
        ok = grads != NULL;
        if (ok) {
            Py_ssize_t want = has_b ? 2 : 1;
            if (PyTuple_CheckExact(grads) && PyTuple_GET_SIZE(grads) == want) {
                ok = add_adjoint(a, PyTuple_GET_ITEM(grads, 0), add, accumulate, skip) == 0;
                if (ok && has_b)
                    ok = add_adjoint(b, PyTuple_GET_ITEM(grads, 1), add, accumulate, skip) == 0;
            } else {
                PyErr_SetString(PyExc_ValueError, "a backward rule must return a tuple, one "
                                                  "gradient per input");
                ok = 0;
            }
            Py_DECREF(grads);
        }
        Py_DECREF(v);
        Py_DECREF(a);
        Py_DECREF(b);
    }
    rules_free(&rules);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* Value.backward(grad)'s float path, all in C: the order, every intermediate .grad to 0.0, the
 * seed added into the root's, then the sweep. */
static PyObject *backward(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !IS_NODE(args[0])) {
        PyErr_SetString(PyExc_TypeError, "backward(root, seed)");
        return NULL;
    }
    PyObject *root = args[0];
    PyObject *roots = PyTuple_Pack(1, root);
    if (roots == NULL) return NULL;
    PyObject *order = topological_order(module, roots);
    Py_DECREF(roots);
    if (order == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(order); i++) {
        Node *v = (Node *)PyList_GET_ITEM(order, i);
        if (v->fn != NULL && v->fn != Py_None) set_field(&v->grad, Py_NewRef(ZERO));
    }
    int ok = add_grad(root, args[1]) == 0 && sweep_order(order) == 0;
    Py_DECREF(order);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* read_data(values, out) -> -1, or the index of the first value whose .data is not a number
 * held as a double here (or an exact float or int): compiled/_native.c's read_numbers for
 * .data, without making a float per value. out: a writable buffer of one float64 a value. */
static PyObject *read_data(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "read_data(values, out)");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[0], "values must be a sequence");
    if (seq == NULL) return NULL;
    Py_buffer out;
    if (PyObject_GetBuffer(args[1], &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        Py_DECREF(seq);
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq), bad = -1;
    if (out.len != n * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "the array must hold one float64 a value");
        PyBuffer_Release(&out);
        Py_DECREF(seq);
        return NULL;
    }
    double *dst = out.buf;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n && bad < 0; i++) {
        PyObject *v = items[i];
        if (!IS_NODE(v)) {
            bad = i;
        } else if (!IS_BOXED((Node *)v)) {
            dst[i] = ((Node *)v)->data.d;
        } else {
            PyObject *x = UNBOX((Node *)v);
            if (x != NULL && PyFloat_CheckExact(x)) {
                dst[i] = PyFloat_AS_DOUBLE(x);
            } else if (x != NULL && PyLong_CheckExact(x)) {
                dst[i] = PyLong_AsDouble(x);
                if (dst[i] == -1.0 && PyErr_Occurred()) {
                    PyErr_Clear();
                    bad = i;
                }
            } else {
                bad = i;
            }
        }
    }
    PyBuffer_Release(&out);
    Py_DECREF(seq);
    return PyLong_FromSsize_t(bad);
}

/* bind(Value, SCALAR, lift, opened): what the hot paths need from engine.py */
static PyObject *bind(PyObject *module, PyObject *args) {
    PyObject *value_type;
    if (!PyArg_ParseTuple(args, "O!OOO", &PyType_Type, &value_type, &SCALAR, &LIFT, &OPENED))
        return NULL;
    Py_INCREF(SCALAR);
    Py_INCREF(LIFT);
    Py_INCREF(OPENED);
    ValueType = (PyTypeObject *)Py_NewRef(value_type);
    PyTypeObject *t = ValueType;
    if (t->tp_base == &BaseType && t->tp_basicsize == BaseType.tp_basicsize &&
        t->tp_dictoffset == 0 && t->tp_weaklistoffset == 0 && t->tp_finalize == NULL &&
        t->tp_del == NULL && (t->tp_flags & Py_TPFLAGS_HEAPTYPE))
        t->tp_dealloc = (destructor)Node_dealloc;
    Py_RETURN_NONE;
}

static PyObject *set_open(PyObject *module, PyObject *n) {
    open_blocks = PyLong_AsLong(n);
    if (open_blocks == -1 && PyErr_Occurred()) return NULL;
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"bind", bind, METH_VARARGS, "bind(Value, SCALAR, lift, opened)"},
    {"set_open", set_open, METH_O, "set_open(engine._open_blocks)"},
    {"op_method", op_method, METH_VARARGS, "op_method(fn, arity, mirrored, strict, label)"},
    {"node", (PyCFunction)(void (*)(void))node, METH_FASTCALL, "engine._node, in C"},
    {"sweep", sweep, METH_O, "backward()'s loop over a topological order, in C"},
    {"topological_order", topological_order, METH_O, "engine._topological_order, in C"},
    {"sweep_graph", (PyCFunction)(void (*)(void))sweep_graph, METH_FASTCALL,
     "autodiff.sweep._sweep_graph without a check, in C"},
    {"backward", (PyCFunction)(void (*)(void))backward, METH_FASTCALL,
     "Value.backward(grad)'s float path, in C"},
    {"read_data", (PyCFunction)(void (*)(void))read_data, METH_FASTCALL,
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
    if (PyType_Ready(&BaseType) < 0 || PyType_Ready(&OpMethodType) < 0) return NULL;
    /* the fields by name, as a slotted class lists them (code that copies a node reads it) */
    PyObject *slots = Py_BuildValue("(sssssss)", "data", "grad", "label", "_fn", "_a", "_b", "_arg");
    if (slots == NULL || PyDict_SetItemString(BaseType.tp_dict, "__slots__", slots) < 0) return NULL;
    Py_DECREF(slots);
    PyType_Modified(&BaseType);
    static const char *names[N_FIELDS] = {"data", "grad", "label", "_fn", "_a", "_b", "_arg"};
    for (int i = 0; i < N_FIELDS; i++)
        if ((DESCRIPTORS[i] = PyDict_GetItemString(BaseType.tp_dict, names[i])) == NULL)
            return NULL;
    ZERO = PyFloat_FromDouble(0.0);
    EMPTY = PyUnicode_FromString("");
    if (ZERO == NULL || EMPTY == NULL) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Base", (PyObject *)&BaseType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
