/* Native kernels for the numpy backend's replay (optional: numpy does the same work when this
 * module is not built).
 *
 * A kernel is bound once, when a Program is prepared, to the memory it reads and writes (the
 * executor's slot arrays), and is then called with no arguments at every replay: a call costs
 * tens of nanoseconds where a numpy call costs a microsecond, and each kernel does in one pass
 * what takes numpy several (relu's derivative is a comparison, a select and a store).
 *
 * Every loop computes exactly what the op's rule in ops.py computes, in the same order, so
 * the results are bit for bit the numpy backend's:
 *   relu forward      y = x if (x > 0 or x is nan) else 0     (ScalarMath.maximum(x, 0.0))
 *   relu backward     d = 0 if c <= 0 else g                  (ops._relu_grad: where(c <= 0, 0, g))
 *                     stored into d, or added to it
 * The buffers are float64 or float32 (compile(..., dtype="float32")), C-contiguous, and
 * the kernel holds them (a buffer export) for as long as it lives.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stddef.h>

enum { RELU_FORWARD, RELU_BACKWARD_STORE, RELU_BACKWARD_ADD };

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int kind;
    int single; /* float32 rather than float64 */
    Py_ssize_t n;
    Py_buffer views[3];
    int n_views;
} Kernel;

/* Both operands are loaded unconditionally, so that the compiler turns the select into a
 * vector blend (a branch would be mispredicted half the time on a layer's activations). The
 * written buffer never overlaps a read one (bind() checks), hence restrict. */
#define RELU_LOOPS(T, SUFFIX)                                                                 \
    static void relu_forward_##SUFFIX(const T *restrict x, T *restrict y, Py_ssize_t n)      \
    {                                                                                         \
        for (Py_ssize_t i = 0; i < n; i++) {                                                  \
            T v = x[i];                                                                       \
            y[i] = (v > 0 || v != v) ? v : (T)0;                                              \
        }                                                                                     \
    }                                                                                         \
    static void relu_backward_store_##SUFFIX(const T *restrict c, const T *restrict g,       \
                                             T *restrict d, Py_ssize_t n)                    \
    {                                                                                         \
        for (Py_ssize_t i = 0; i < n; i++) {                                                  \
            T ci = c[i], gi = g[i];                                                           \
            d[i] = ci <= 0 ? (T)0 : gi;                                                       \
        }                                                                                     \
    }                                                                                         \
    static void relu_backward_add_##SUFFIX(const T *restrict c, const T *restrict g,         \
                                           T *restrict d, Py_ssize_t n)                      \
    {                                                                                         \
        for (Py_ssize_t i = 0; i < n; i++) {                                                  \
            T ci = c[i], gi = g[i];                                                           \
            d[i] += ci <= 0 ? (T)0 : gi;                                                      \
        }                                                                                     \
    }

RELU_LOOPS(double, d)
RELU_LOOPS(float, f)

static PyObject *
kernel_vectorcall(PyObject *callable, PyObject *const *Py_UNUSED(args), size_t nargsf,
                  PyObject *kwnames)
{
    Kernel *k = (Kernel *)callable;
    if (PyVectorcall_NARGS(nargsf) != 0 || (kwnames != NULL && PyTuple_GET_SIZE(kwnames))) {
        PyErr_SetString(PyExc_TypeError, "a bound kernel takes no arguments");
        return NULL;
    }
    void *p0 = k->views[0].buf, *p1 = k->views[1].buf;
    void *p2 = k->n_views > 2 ? k->views[2].buf : NULL;
    Py_ssize_t n = k->n;
    switch (k->kind * 2 + k->single) {
    case RELU_FORWARD * 2:
        relu_forward_d(p0, p1, n);
        break;
    case RELU_FORWARD * 2 + 1:
        relu_forward_f(p0, p1, n);
        break;
    case RELU_BACKWARD_STORE * 2:
        relu_backward_store_d(p0, p1, p2, n);
        break;
    case RELU_BACKWARD_STORE * 2 + 1:
        relu_backward_store_f(p0, p1, p2, n);
        break;
    case RELU_BACKWARD_ADD * 2:
        relu_backward_add_d(p0, p1, p2, n);
        break;
    case RELU_BACKWARD_ADD * 2 + 1:
        relu_backward_add_f(p0, p1, p2, n);
        break;
    }
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
    static const char *names[] = {"relu_forward", "relu_backward(store)", "relu_backward(add)"};
    return PyUnicode_FromFormat("<backprop kernel %s x%zd, %s>", names[k->kind], k->n,
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
relu_backward(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "relu_backward(c, g, d, add) takes 3 buffers and a bool");
        return NULL;
    }
    int add = PyObject_IsTrue(args[3]);
    if (add < 0)
        return NULL;
    return bind(add ? RELU_BACKWARD_ADD : RELU_BACKWARD_STORE, args, 3);
}

static PyMethodDef methods[] = {
    {"relu_forward", (PyCFunction)(void (*)(void))relu_forward, METH_FASTCALL,
     "relu_forward(x, y) -> a kernel that sets y = max(x, 0) (nan stays nan)"},
    {"relu_backward", (PyCFunction)(void (*)(void))relu_backward, METH_FASTCALL,
     "relu_backward(c, g, d, add) -> a kernel that sets (or, with add, adds to) d the value "
     "0 where c <= 0 and g elsewhere"},
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
