/* Native kernels for the numpy backend's replay (optional: numpy does the same work when this
 * module is not built).
 *
 * A kernel is bound once, when a Program is prepared, to the memory it reads and writes (the
 * executor's slot arrays), and is then called with no arguments at every replay: a call costs
 * tens of nanoseconds where a numpy call costs a microsecond, and each kernel does in one pass
 * what takes numpy several (relu's derivative is a comparison, a select and a store).
 *
 * Every loop computes exactly what the op's rule in ops.py computes, operation by operation in
 * the same order (the build turns off fused multiply-adds), so the results are bit for bit the
 * numpy backend's:
 *   relu forward      y = x if (x > 0 or x is nan) else 0     (ScalarMath.maximum(x, 0.0))
 *   relu backward     0 if out <= 0 else g                    (ops._relu_grad)
 *   tanh backward     g * (1 - out^2), rounded once            (ops._one_minus_square)
 *   sigmoid backward  g * (1 - out) * out
 * each backward stored into the input's gradient slots, or added to them. tanh's and sigmoid's
 * forward stay numpy's (its tanh and exp are not libm's, to the last digit).
 * The buffers are float64 or float32 (compile(..., dtype="float32")), C-contiguous, and
 * the kernel holds them (a buffer export) for as long as it lives.
 *
 * trace_graph(root), at the end, is tracing's sort and operand lookup in one pass (tape.py
 * falls back to Python and numpy without it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>
#include <float.h>
#include <string.h>
#include <stdint.h>
#include <structmember.h>

/* Exactness needs IEEE arithmetic in each type's own precision, one rounding per operation. */
#if defined(__FAST_MATH__) || FLT_EVAL_METHOD != 0
#error "the native kernels need IEEE arithmetic: build without -ffast-math, on SSE (not x87)"
#endif

enum { RELU_FORWARD, RELU_BACKWARD, TANH_BACKWARD, SIGMOID_BACKWARD };
static const char *kind_names[] = {"relu_forward", "relu_backward", "tanh_backward",
                                   "sigmoid_backward"};

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int kind;
    int add;    /* a backward kernel adds into its destination instead of storing */
    int single; /* float32 rather than float64 */
    Py_ssize_t n;
    Py_buffer views[3];
    int n_views;
} Kernel;

/* Every operand is loaded unconditionally, so that the compiler turns relu's select into a
 * vector blend (a branch would be mispredicted half the time on a layer's activations). The
 * written buffer never overlaps a read one (bind() checks), hence restrict. */
#define RELU_D(T, y, g) ((y) <= 0 ? (T)0 : (g))
#define SIGMOID_D(T, y, g) ((g) * ((T)1 - (y)) * (y))
#define TANH_D(T, y, g) ((g) * one_minus_square_##T(y))

/* 1 - y*y rounded once: Veltkamp's split, Dekker's exact product, Fast2Sum (ops.py) */
#define ONE_MINUS_SQUARE(T)                                                                   \
    static inline T one_minus_square_##T(T y)                                                 \
    {                                                                                         \
        T c = (T)134217729.0 * y;                                                             \
        T hi = c - (c - y);                                                                   \
        T lo = y - hi;                                                                        \
        T p = y * y;                                                                          \
        T e = ((hi * hi - p) + (T)2 * hi * lo) + lo * lo;                                     \
        T s = (T)1 - p;                                                                       \
        T t = ((T)1 - s) - p;                                                                 \
        return s + (t - e);                                                                   \
    }

#define BACKWARD_LOOP(T, NAME, D)                                                             \
    static void NAME##_##T(const T *restrict y, const T *restrict g, T *restrict d,          \
                           Py_ssize_t n, int add)                                            \
    {                                                                                         \
        if (add)                                                                              \
            for (Py_ssize_t i = 0; i < n; i++) {                                              \
                T yi = y[i], gi = g[i];                                                       \
                d[i] += D(T, yi, gi);                                                         \
            }                                                                                 \
        else                                                                                  \
            for (Py_ssize_t i = 0; i < n; i++) {                                              \
                T yi = y[i], gi = g[i];                                                       \
                d[i] = D(T, yi, gi);                                                          \
            }                                                                                 \
    }

#define LOOPS(T)                                                                              \
    ONE_MINUS_SQUARE(T)                                                                       \
    static void relu_forward_##T(const T *restrict x, T *restrict y, Py_ssize_t n)           \
    {                                                                                         \
        for (Py_ssize_t i = 0; i < n; i++) {                                                  \
            T v = x[i];                                                                       \
            y[i] = (v > 0 || v != v) ? v : (T)0;                                              \
        }                                                                                     \
    }                                                                                         \
    BACKWARD_LOOP(T, relu_backward, RELU_D)                                                   \
    BACKWARD_LOOP(T, tanh_backward, TANH_D)                                                   \
    BACKWARD_LOOP(T, sigmoid_backward, SIGMOID_D)                                             \
    static void run_##T(Kernel *k)                                                            \
    {                                                                                         \
        void *p0 = k->views[0].buf, *p1 = k->views[1].buf;                                    \
        void *p2 = k->n_views > 2 ? k->views[2].buf : NULL;                                   \
        switch (k->kind) {                                                                    \
        case RELU_FORWARD:                                                                    \
            relu_forward_##T(p0, p1, k->n);                                                   \
            break;                                                                            \
        case RELU_BACKWARD:                                                                   \
            relu_backward_##T(p0, p1, p2, k->n, k->add);                                      \
            break;                                                                            \
        case TANH_BACKWARD:                                                                   \
            tanh_backward_##T(p0, p1, p2, k->n, k->add);                                      \
            break;                                                                            \
        case SIGMOID_BACKWARD:                                                                \
            sigmoid_backward_##T(p0, p1, p2, k->n, k->add);                                   \
            break;                                                                            \
        }                                                                                     \
    }

LOOPS(double)
LOOPS(float)

static PyObject *
kernel_vectorcall(PyObject *callable, PyObject *const *Py_UNUSED(args), size_t nargsf,
                  PyObject *kwnames)
{
    Kernel *k = (Kernel *)callable;
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "a bound kernel takes no arguments");
        return NULL;
    }
    if (k->single)
        run_float(k);
    else
        run_double(k);
    Py_RETURN_NONE;
}

static void
kernel_dealloc(Kernel *k)
{
    for (int i = 0; i < k->n_views; i++)
        PyBuffer_Release(&k->views[i]);
    Py_TYPE(k)->tp_free((PyObject *)k);
}

static PyObject *
kernel_repr(Kernel *k)
{
    return PyUnicode_FromFormat("<backprop kernel %s%s x%zd, %s>", kind_names[k->kind],
                                k->kind == RELU_FORWARD ? "" : (k->add ? "(add)" : "(store)"), k->n,
                                k->single ? "float32" : "float64");
}

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "backprop.compiled._native.Kernel",
    .tp_doc = "A kernel bound to its buffers: call it with no arguments to run it once.",
    .tp_basicsize = sizeof(Kernel),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_vectorcall_offset = offsetof(Kernel, vectorcall),
    .tp_call = PyVectorcall_Call,
    .tp_dealloc = (destructor)kernel_dealloc,
    .tp_repr = (reprfunc)kernel_repr,
};

/* A kernel over n buffers of one dtype and length; the last one is written. */
static PyObject *
bind(int kind, PyObject *const *objs, int n_objs)
{
    Kernel *k = PyObject_New(Kernel, &KernelType);
    if (k == NULL)
        return NULL;
    k->vectorcall = kernel_vectorcall;
    k->kind = kind;
    k->add = 0;
    k->n_views = 0;
    for (int i = 0; i < n_objs; i++) {
        int flags = PyBUF_FORMAT | PyBUF_C_CONTIGUOUS | (i == n_objs - 1 ? PyBUF_WRITABLE : 0);
        if (PyObject_GetBuffer(objs[i], &k->views[i], flags) < 0)
            goto fail;
        k->n_views++;
        Py_buffer *v = &k->views[i];
        const char *f = v->format ? v->format : "B";
        int single = f[0] == 'f' && f[1] == '\0';
        if (!single && !(f[0] == 'd' && f[1] == '\0')) {
            PyErr_Format(PyExc_TypeError, "kernel buffer %d holds '%s', not float64 or float32",
                         i, f);
            goto fail;
        }
        Py_ssize_t n = v->len / v->itemsize;
        if (i == 0) {
            k->single = single;
            k->n = n;
        }
        else if (single != k->single || n != k->n) {
            PyErr_Format(PyExc_ValueError,
                         "kernel buffer %d has %zd %s items, buffer 0 has %zd %s", i, n,
                         single ? "float32" : "float64", k->n,
                         k->single ? "float32" : "float64");
            goto fail;
        }
    }
    Py_buffer *w = &k->views[n_objs - 1];
    for (int i = 0; i < n_objs - 1; i++) {
        Py_buffer *r = &k->views[i];
        if ((char *)r->buf < (char *)w->buf + w->len && (char *)w->buf < (char *)r->buf + r->len) {
            PyErr_Format(PyExc_ValueError, "kernel buffer %d overlaps the buffer written", i);
            goto fail;
        }
    }
    return (PyObject *)k;
fail:
    Py_DECREF(k);
    return NULL;
}

static PyObject *
relu_forward(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "relu_forward(x, y) takes 2 buffers");
        return NULL;
    }
    return bind(RELU_FORWARD, args, 2);
}

static PyObject *
backward(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "backward(op, out, g, d, add) takes an op name, 3 buffers "
                                         "and a bool");
        return NULL;
    }
    const char *op = NULL;
    if (PyUnicode_Check(args[0]) && (op = PyUnicode_AsUTF8(args[0])) == NULL)
        return NULL;
    static const char *ops[] = {"relu", "tanh", "sigmoid"}; /* RELU_BACKWARD onwards */
    int kind = -1;
    for (int i = 0; op != NULL && i < 3; i++)
        if (strcmp(op, ops[i]) == 0)
            kind = RELU_BACKWARD + i;
    if (kind < 0) {
        PyErr_Format(PyExc_ValueError, "no backward kernel for op %R (relu, tanh, sigmoid)",
                     args[0]);
        return NULL;
    }
    int add = PyObject_IsTrue(args[4]);
    if (add < 0)
        return NULL;
    Kernel *k = (Kernel *)bind(kind, args + 1, 3);
    if (k != NULL)
        k->add = add;
    return (PyObject *)k;
}

/* ---- tracing: a graph of Values in topological order ------------------------------------
 * trace_graph(root, Value[, codes]) -> (order, a, b, ids, op codes): the nodes under root in
 * Value.topological_order()'s order (the same iterative depth-first sort), and as bytes of
 * int64 each node's operands' positions in it (-1 for none) and its id(); with codes (a dict
 * from each op, and None, to its code) each node's op code as int16 (KeyError for an op not
 * in it). What tape.trace() computes with a Python loop and numpy's sorting, in one pass with
 * a hash table from node to position. The operands _a and _b (None when absent) are read at
 * their slots' offsets: no Python code runs during the walk, so borrowed references are safe.
 */

typedef struct { uintptr_t key; Py_ssize_t val; } Entry; /* key 0: empty */

typedef struct {
    Entry *at; /* a key and its value side by side: one cache line a lookup */
    size_t mask, used;
} Table;

static int
table_init(Table *t, size_t capacity)
{
    size_t n = 1024;
    while (n < 2 * capacity)
        n <<= 1;
    t->at = PyMem_Calloc(n, sizeof(Entry));
    t->mask = n - 1;
    t->used = 0;
    if (t->at == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static inline size_t
table_slot(const Table *t, uintptr_t key)
{
    size_t h = (size_t)((key >> 4) * 0x9E3779B97F4A7C15ull) & t->mask;
    while (t->at[h].key != 0 && t->at[h].key != key)
        h = (h + 1) & t->mask;
    return h;
}

static int
table_put(Table *t, uintptr_t key, Py_ssize_t val)
{
    if (2 * (t->used + 1) > t->mask + 1) { /* grow: keep the load under a half */
        Table bigger;
        if (table_init(&bigger, 2 * (t->mask + 1)) < 0)
            return -1;
        for (size_t i = 0; i <= t->mask; i++)
            if (t->at[i].key != 0) {
                bigger.at[table_slot(&bigger, t->at[i].key)] = t->at[i];
                bigger.used++;
            }
        PyMem_Free(t->at);
        *t = bigger;
    }
    size_t h = table_slot(t, key);
    if (t->at[h].key == 0) {
        t->at[h].key = key;
        t->used++;
    }
    t->at[h].val = val;
    return 0;
}

#define table_has(t, k) ((t)->at[table_slot((t), (k))].key != 0)

static inline Py_ssize_t
table_get(const Table *t, uintptr_t key)
{
    size_t h = table_slot(t, key);
    return t->at[h].key != 0 ? t->at[h].val : -1;
}

/* Where a Value keeps its operands: the offsets of its slots _a and _b, read straight from a
 * node of that exact type (the descriptors are looked up once, from the class passed in);
 * any other object goes through getattr. */
typedef struct {
    PyTypeObject *type;
    Py_ssize_t off_a, off_b;
} Slots;

static PyObject *name_a = NULL, *name_b = NULL, *name_fn = NULL;

static Py_ssize_t
slot_offset(PyTypeObject *type, PyObject *name)
{
    PyObject *descr = PyObject_GetAttr((PyObject *)type, name);
    Py_ssize_t offset = -1;
    if (descr == NULL) {
        PyErr_Clear();
        return -1;
    }
    if (Py_TYPE(descr) == &PyMemberDescr_Type) {
        PyMemberDef *member = ((PyMemberDescrObject *)descr)->d_member;
        if (member->type == T_OBJECT_EX || member->type == T_OBJECT)
            offset = member->offset;
    }
    Py_DECREF(descr);
    return offset;
}

/* node's operand (borrowed: the node's slot holds it), or NULL for None; *failed on error */
static inline PyObject *
operand(PyObject *node, const Slots *slots, int which, int *failed)
{
    PyObject *x;
    if (Py_TYPE(node) == slots->type) {
        x = *(PyObject **)((char *)node + (which ? slots->off_b : slots->off_a));
        if (x == NULL) {
            PyErr_SetString(PyExc_AttributeError, which ? "_b" : "_a");
            *failed = 1;
            return NULL;
        }
    }
    else {
        x = PyObject_GetAttr(node, which ? name_b : name_a);
        if (x == NULL) {
            *failed = 1;
            return NULL;
        }
        Py_DECREF(x); /* the node's slot still holds it */
    }
    return x == Py_None ? NULL : x;
}

static PyObject *
trace_graph(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 2 || nargs > 3 || !PyType_Check(args[1]) ||
        (nargs == 3 && !PyDict_Check(args[2]))) {
        PyErr_SetString(PyExc_TypeError, "trace_graph(root, Value[, codes]): a node, its "
                                         "class, and a dict from each op (and None) to its code");
        return NULL;
    }
    PyObject *code_of = nargs == 3 ? args[2] : NULL;
    if (name_a == NULL && ((name_a = PyUnicode_InternFromString("_a")) == NULL ||
                           (name_b = PyUnicode_InternFromString("_b")) == NULL ||
                           (name_fn = PyUnicode_InternFromString("_fn")) == NULL))
        return NULL;
    Slots slots = {(PyTypeObject *)args[1], -1, -1};
    Py_ssize_t off_fn = slot_offset(slots.type, name_fn);
    slots.off_a = slot_offset(slots.type, name_a);
    slots.off_b = slot_offset(slots.type, name_b);
    if (slots.off_a < 0 || slots.off_b < 0)
        slots.type = NULL; /* not plain slots: getattr for every node */
    PyObject *root = args[0];
    PyObject *order = PyList_New(0), *result = NULL;
    Py_ssize_t cap = 1024, top = 0, ncol = 0, colcap = 1024;
    PyObject **stack = PyMem_Malloc(cap * sizeof(PyObject *));
    int64_t *cols = PyMem_Malloc(2 * colcap * sizeof(int64_t)); /* a, b per node */
    Table seen = {NULL, 0, 0};
    int failed = 0;
    if (order == NULL || stack == NULL || cols == NULL || table_init(&seen, 1024) < 0) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        goto done;
    }
    stack[top++] = root;
    while (top > 0) {
        if (top + 6 > cap) {
            PyObject **grown = PyMem_Realloc(stack, 2 * cap * sizeof(PyObject *));
            if (grown == NULL) {
                PyErr_NoMemory();
                goto done;
            }
            stack = grown;
            cap *= 2;
        }
        PyObject *node = stack[--top];
        if (node == NULL) { /* the marker: the node under it has all its inputs in order */
            PyObject *b = stack[--top], *a = stack[--top];
            node = stack[--top];
            if (ncol == colcap) {
                int64_t *grown = PyMem_Realloc(cols, 4 * colcap * sizeof(int64_t));
                if (grown == NULL) {
                    PyErr_NoMemory();
                    goto done;
                }
                cols = grown;
                colcap *= 2;
            }
            cols[2 * ncol] = a == NULL ? -1 : (int64_t)table_get(&seen, (uintptr_t)a);
            cols[2 * ncol + 1] = b == NULL ? -1 : (int64_t)table_get(&seen, (uintptr_t)b);
            ncol++;
            if (table_put(&seen, (uintptr_t)node, PyList_GET_SIZE(order)) < 0 ||
                PyList_Append(order, node) < 0)
                goto done;
            continue;
        }
        if (table_has(&seen, (uintptr_t)node))
            continue;
        if (table_put(&seen, (uintptr_t)node, -1) < 0)
            goto done;
        PyObject *a = operand(node, &slots, 0, &failed);
        PyObject *b = failed ? NULL : operand(node, &slots, 1, &failed);
        if (failed)
            goto done;
        stack[top++] = node; /* with its operands, for when it is placed */
        stack[top++] = a;
        stack[top++] = b;
        stack[top++] = NULL;
        if (b != NULL && !table_has(&seen, (uintptr_t)b))
            stack[top++] = b;
        if (a != NULL && !table_has(&seen, (uintptr_t)a))
            stack[top++] = a;
    }
    Py_ssize_t n = PyList_GET_SIZE(order);
    PyObject *col_a = PyBytes_FromStringAndSize(NULL, n * 8);
    PyObject *col_b = PyBytes_FromStringAndSize(NULL, n * 8);
    PyObject *ids = PyBytes_FromStringAndSize(NULL, n * 8);
    PyObject *codes = code_of == NULL ? Py_NewRef(Py_None) : PyBytes_FromStringAndSize(NULL, n * 2);
    if (col_a != NULL && col_b != NULL && ids != NULL && codes != NULL) {
        int64_t *ca = (int64_t *)PyBytes_AS_STRING(col_a);
        int64_t *cb = (int64_t *)PyBytes_AS_STRING(col_b);
        int64_t *id = (int64_t *)PyBytes_AS_STRING(ids);
        int16_t *code = code_of == NULL ? NULL : (int16_t *)PyBytes_AS_STRING(codes);
        for (Py_ssize_t i = 0; i < n && !failed; i++) {
            PyObject *node = PyList_GET_ITEM(order, i);
            ca[i] = cols[2 * i];
            cb[i] = cols[2 * i + 1];
            id[i] = (int64_t)(intptr_t)node;
            if (code == NULL)
                continue;
            PyObject *fn = NULL;
            if (off_fn >= 0 && Py_TYPE(node) == slots.type)
                fn = Py_XNewRef(*(PyObject **)((char *)node + off_fn));
            else
                fn = PyObject_GetAttr(node, name_fn);
            PyObject *k = fn == NULL ? NULL : PyDict_GetItemWithError(code_of, fn);
            long c = k == NULL ? -1 : PyLong_AsLong(k);
            if (k == NULL || (c == -1 && PyErr_Occurred())) {
                if (!PyErr_Occurred()) /* an op outside the table: the caller names it */
                    PyErr_SetObject(PyExc_KeyError, fn == NULL ? Py_None : fn);
                failed = 1;
            }
            code[i] = (int16_t)c;
            Py_XDECREF(fn);
        }
        if (!failed)
            result = PyTuple_Pack(5, order, col_a, col_b, ids, codes);
    }
    Py_XDECREF(col_a);
    Py_XDECREF(col_b);
    Py_XDECREF(ids);
    Py_XDECREF(codes);
done:
    Py_XDECREF(order);
    PyMem_Free(stack);
    PyMem_Free(cols);
    PyMem_Free(seen.at);
    return result;
}

/* levels(a, b, rise) -> bytes of int64: each node's level, one more (rise[i], 0 or 1) than
 * its operands' highest, for operand positions a and b (int64, -1 for none: level 0) in
 * topological order. numpy_plan's levelling loop, which is serial by nature. */
static PyObject *
levels(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "levels(a, b, rise) takes 3 buffers");
        return NULL;
    }
    Py_buffer view[3];
    int got = 0;
    PyObject *result = NULL;
    for (; got < 3; got++)
        if (PyObject_GetBuffer(args[got], &view[got], PyBUF_C_CONTIGUOUS) < 0)
            goto done;
    Py_ssize_t n = view[0].len / 8;
    if (view[1].len != view[0].len || view[2].len != n) {
        PyErr_SetString(PyExc_ValueError, "levels: a and b are int64, rise bytes, all n long");
        goto done;
    }
    result = PyBytes_FromStringAndSize(NULL, n * 8);
    if (result == NULL)
        goto done;
    const int64_t *a = view[0].buf, *b = view[1].buf;
    const unsigned char *rise = view[2].buf;
    int64_t *level = (int64_t *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < n; i++) {
        int64_t p = 0, q = 0;
        if (a[i] >= 0 && a[i] < i)
            p = level[a[i]];
        if (b[i] >= 0 && b[i] < i)
            q = level[b[i]];
        level[i] = (p > q ? p : q) + (rise[i] != 0);
    }
done:
    while (got-- > 0)
        PyBuffer_Release(&view[got]);
    return result;
}

/* ---- leaves' numbers: .data or .grad of many Values, read into or written from an array --
 *
 * read_numbers(values, Value, name, out) -> -1, or the index of the first value whose
 * attribute is not an exact float or int (the caller then reads them all in Python, which
 * also names the culprit). write_numbers(values, Value, name, numbers) sets each attribute to
 * a new float. What Program does at every forward() and backward() for the leaves whose
 * Values hold their numbers, in one pass each instead of a map(), a list and an array. */

/* the common arguments: values as a fast sequence, the array as a buffer of one float64 a
 * value, the attribute's slot offset (-1: getattr); 0, or -1 with an error set */
static int
numbers_args(PyObject *const *args, Py_ssize_t nargs, int flags, PyObject **seq,
             Py_buffer *buf, Py_ssize_t *offset)
{
    if (nargs != 4 || !PyType_Check(args[1]) || !PyUnicode_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "(values, Value, name, array) expected");
        return -1;
    }
    if ((*seq = PySequence_Fast(args[0], "values must be a sequence")) == NULL)
        return -1;
    if (PyObject_GetBuffer(args[3], buf, PyBUF_C_CONTIGUOUS | flags) < 0) {
        Py_DECREF(*seq);
        return -1;
    }
    if (buf->len != PySequence_Fast_GET_SIZE(*seq) * (Py_ssize_t)sizeof(double)) {
        PyErr_SetString(PyExc_ValueError, "the array must hold one float64 a value");
        PyBuffer_Release(buf);
        Py_DECREF(*seq);
        return -1;
    }
    *offset = slot_offset((PyTypeObject *)args[1], args[2]);
    return 0;
}

static PyObject *
read_numbers(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *seq;
    Py_buffer out;
    Py_ssize_t offset, bad = -1;
    if (numbers_args(args, nargs, PyBUF_WRITABLE, &seq, &out, &offset) < 0)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    double *dst = out.buf;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n && bad < 0; i++) {
        PyObject *v = items[i], *x;
        if (offset >= 0 && Py_TYPE(v) == (PyTypeObject *)args[1])
            x = Py_XNewRef(*(PyObject **)((char *)v + offset));
        else if ((x = PyObject_GetAttr(v, args[2])) == NULL)
            PyErr_Clear();
        if (x != NULL && PyFloat_CheckExact(x))
            dst[i] = PyFloat_AS_DOUBLE(x);
        else if (x != NULL && PyLong_CheckExact(x)) {
            dst[i] = PyLong_AsDouble(x);
            if (dst[i] == -1.0 && PyErr_Occurred()) {
                PyErr_Clear();
                bad = i;
            }
        }
        else
            bad = i;
        Py_XDECREF(x);
    }
    PyBuffer_Release(&out);
    Py_DECREF(seq);
    return PyLong_FromSsize_t(bad);
}

static PyObject *
write_numbers(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *seq, *result = NULL, *old;
    Py_buffer src;
    Py_ssize_t offset;
    if (numbers_args(args, nargs, 0, &seq, &src, &offset) < 0)
        return NULL;
    /* the attributes' old objects other than floats, let go after the loop, so that no
     * __del__ runs mid-walk (a float's deallocation runs no Python code) */
    if ((old = PyList_New(0)) == NULL)
        goto done;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    const double *from = src.buf;
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *v = items[i], *x = PyFloat_FromDouble(from[i]);
        if (x == NULL)
            goto done;
        if (offset >= 0 && Py_TYPE(v) == (PyTypeObject *)args[1]) {
            PyObject **slot = (PyObject **)((char *)v + offset), *previous = *slot;
            *slot = x;
            int kept = previous == NULL || PyFloat_CheckExact(previous) ||
                       PyList_Append(old, previous) == 0;
            Py_XDECREF(previous);
            if (!kept)
                goto done;
        }
        else {
            int failed = PyObject_SetAttr(v, args[2], x);
            Py_DECREF(x);
            if (failed < 0)
                goto done;
        }
    }
    result = Py_NewRef(Py_None);
done:
    PyBuffer_Release(&src);
    Py_DECREF(seq);
    Py_XDECREF(old);
    return result;
}

static PyMethodDef methods[] = {
    {"relu_forward", (PyCFunction)(void (*)(void))relu_forward, METH_FASTCALL,
     "relu_forward(x, y) -> a kernel that sets y = max(x, 0) (nan stays nan)"},
    {"backward", (PyCFunction)(void (*)(void))backward, METH_FASTCALL,
     "backward(op, out, g, d, add) -> a kernel that sets (or, with add, adds to) d the op's "
     "gradient g * d(out)/d(x), from its output out: op is 'relu', 'tanh' or 'sigmoid'"},
    {"trace_graph", (PyCFunction)(void (*)(void))trace_graph, METH_FASTCALL,
     "trace_graph(root, Value[, codes]) -> (nodes in topological order, operand a positions, "
     "operand b positions, ids, op codes): bytes of int64, and of int16 (None without codes)"},
    {"read_numbers", (PyCFunction)(void (*)(void))read_numbers, METH_FASTCALL,
     "read_numbers(values, Value, name, out) -> -1, or the index of a non-number"},
    {"write_numbers", (PyCFunction)(void (*)(void))write_numbers, METH_FASTCALL,
     "write_numbers(values, Value, name, numbers): each value's attribute to a new float"},
    {"levels", (PyCFunction)(void (*)(void))levels, METH_FASTCALL,
     "levels(a, b, rise) -> bytes of int64 levels (see _native.c)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_native",
    "Optional native kernels for the numpy backend (see _native.c).", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__native(void)
{
    if (PyType_Ready(&KernelType) < 0)
        return NULL;
    return PyModule_Create(&module);
}
