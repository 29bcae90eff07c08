/* What the three sources of backprop._cvalue share (one extension module, built from):
 *   - _cvalue.c        the node type Base: its fields, attribute access, freeing, pickling;
 *                      the module's table and PyInit;
 *   - _cvalue_ops.c    engine.py's op methods and the making of a node, bind() and set_open();
 *   - _cvalue_graph.c  the graph walks: topological order, backward()'s sweep, the
 *                      create-graph sweep, read_data.
 * Here: the Node struct, the .data boxing, the explicit stack, and the few names the files use
 * across (bp_ prefix, hidden from outside the module: only PyInit__cvalue is exported).
 */
#ifndef BACKPROP_CVALUE_H
#define BACKPROP_CVALUE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#if defined(__GNUC__) || defined(__clang__)
#define BP_HIDDEN __attribute__((visibility("hidden")))
#else
#define BP_HIDDEN
#endif

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

/* _cvalue.c */
extern BP_HIDDEN PyTypeObject bp_BaseType;
BP_HIDDEN int bp_watch(PyObject *self, PyObject *value);

/* _cvalue_ops.c: what bind() takes from engine.py, and the module's constants */
extern BP_HIDDEN PyTypeObject *bp_ValueType;  /* engine.Value */
extern BP_HIDDEN PyObject *bp_SCALAR, *bp_ZERO;
BP_HIDDEN int bp_ops_init(void);  /* PyInit's part for the ops: their type, 0.0 and '' */
BP_HIDDEN PyObject *bp_bind(PyObject *module, PyObject *args);
BP_HIDDEN PyObject *bp_set_open(PyObject *module, PyObject *args);
BP_HIDDEN PyObject *bp_set_scope_label(PyObject *module, PyObject *label);
BP_HIDDEN PyObject *bp_op_method(PyObject *module, PyObject *args);
BP_HIDDEN PyObject *bp_node(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* _cvalue_graph.c */
BP_HIDDEN PyObject *bp_topological_order(PyObject *module, PyObject *roots);
BP_HIDDEN PyObject *bp_sweep(PyObject *module, PyObject *order);
BP_HIDDEN PyObject *bp_sweep_graph(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
BP_HIDDEN PyObject *bp_backward(PyObject *module, PyObject *const *args, Py_ssize_t nargs);
BP_HIDDEN PyObject *bp_read_data(PyObject *module, PyObject *const *args, Py_ssize_t nargs);

/* .data holding an object: a signalling NaN whose top 16 bits are BOXED, the pointer below */
#define BOXED 0x7FF4000000000000ULL
#define TOP16 0xFFFF000000000000ULL
#define IS_BOXED(v) (((v)->data.bits & TOP16) == BOXED)
#define UNBOX(v) ((PyObject *)(uintptr_t)((v)->data.bits & ~TOP16))

#define IS_NODE(o) PyObject_TypeCheck((o), &bp_BaseType)

/* .data as an object (a new reference) */
static inline PyObject *data_of(PyObject *node) {
    Node *v = (Node *)node;
    if (IS_BOXED(v)) {
        PyObject *o = UNBOX(v);
        if (o == NULL) PyErr_SetString(PyExc_AttributeError, "data");
        return Py_XNewRef(o);
    }
    return PyFloat_FromDouble(v->data.d);
}

/* .data = value (borrowed): a float as a double, anything else boxed */
static inline int set_data(PyObject *node, PyObject *value) {
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
    return value == NULL || PyFloat_CheckExact(value) ? 0 : bp_watch(node, value);
}

/* A growable stack of object pointers, on the C stack until it grows past STACK_INLINE. */
#define STACK_INLINE 64
typedef struct {
    PyObject **items;
    Py_ssize_t n, cap;
    PyObject *inline_items[STACK_INLINE];
} Stack;

static inline void stack_init(Stack *s) {
    s->items = s->inline_items;
    s->n = 0;
    s->cap = STACK_INLINE;
}

static inline int stack_push(Stack *s, PyObject *o) {
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

static inline void stack_free(Stack *s) {
    if (s->items != s->inline_items) PyMem_Free(s->items);
}

#endif /* BACKPROP_CVALUE_H */
