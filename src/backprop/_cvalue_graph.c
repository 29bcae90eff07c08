/* The graph walks of backprop._cvalue (see _cvalue.c), in C: engine._topological_order,
 * backward()'s sweep over it, autodiff's create-graph sweep, and read_data for compiled replay.
 * Each does what its Python original does, calling the same backward rules of ops.py, so the
 * numbers are the same to the last bit. */

#include "_cvalue.h"

static void set_field(PyObject **slot, PyObject *value) { /* steals value */
    PyObject *old = *slot;
    *slot = value;
    Py_XDECREF(old);
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
    return PyFloat_CheckExact(sum) ? 0 : bp_watch(node, sum);
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
PyObject *bp_topological_order(PyObject *module, PyObject *roots) {
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
            PyObject *bargs[] = {bp_SCALAR, g, out, x, y};
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

PyObject *bp_sweep(PyObject *module, PyObject *order) {
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
    } else if (Py_TYPE(total) == bp_ValueType && Py_TYPE(t) == bp_ValueType) {
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
    return PyFloat_CheckExact(sum) ? 0 : bp_watch(node, sum);
}

/* sweep_graph(order, m, add, accumulate, skip): autodiff/sweep.py's _sweep_graph without a check,
 * in C: the rules get the nodes themselves and build the gradient as a graph. */
PyObject *bp_sweep_graph(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
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
PyObject *bp_backward(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !IS_NODE(args[0])) {
        PyErr_SetString(PyExc_TypeError, "backward(root, seed)");
        return NULL;
    }
    PyObject *root = args[0];
    PyObject *roots = PyTuple_Pack(1, root);
    if (roots == NULL) return NULL;
    PyObject *order = bp_topological_order(module, roots);
    Py_DECREF(roots);
    if (order == NULL) return NULL;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(order); i++) {
        Node *v = (Node *)PyList_GET_ITEM(order, i);
        if (v->fn != NULL && v->fn != Py_None) set_field(&v->grad, Py_NewRef(bp_ZERO));
    }
    int ok = add_grad(root, args[1]) == 0 && sweep_order(order) == 0;
    Py_DECREF(order);
    if (!ok) return NULL;
    Py_RETURN_NONE;
}

/* read_data(values, out) -> -1, or the index of the first value whose .data is not a number
 * held as a double here (or an exact float or int): compiled/_native.c's read_numbers for
 * .data, without making a float per value. out: a writable buffer of one float64 a value. */
PyObject *bp_read_data(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
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
