/*
 * strategies._book_side: one side of an L2 book, compiled.
 *
 * The feed applies every Binance diff (about a dozen ["price", "qty"] string pairs) to the
 * book; in Python that loop costs more than the WebSocket read and the JSON parse together.
 * Here a side is two C arrays (keys ascending, quantities alongside) with the best level
 * last, where changes cluster: a level is found by galloping back from the best, so an
 * update near the top costs a handful of comparisons and no Python object at all.
 *
 * Keys are the prices, or the negated prices for asks (negate=True), so "best" is always the
 * last element. Semantics are exactly those of strategies.book._PySide, the pure-Python
 * fallback the tests compare this against:
 *
 *     price = float(lv[0]); qty = float(lv[1])          # NaN price: ValueError
 *     qty > 0: set (insert when new); otherwise remove the level if present
 *
 * Number conversion: a plain decimal string ("0.0024", "15", "3.50") with at most 15
 * significant digits and 22 fractional digits is m / 10^k with m < 2^53 and k <= 22, both
 * exactly representable, so one IEEE division gives the correctly rounded value, the very
 * float float() returns (Clinger's fast path). Anything else goes through float() itself.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

static const double POW10[] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

/* ------------------------------------------------------------------ numbers */

/* 1 and *out set when the fast path applies; 0 to fall back to float(). */
static int
decimal_fast(PyObject *s, double *out)
{
    /* 1-byte kind, not only compact ASCII: orjson builds its strings without the ASCII flag */
    if (PyUnicode_KIND(s) != PyUnicode_1BYTE_KIND) {
        return 0;
    }
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    const unsigned char *p = (const unsigned char *)PyUnicode_DATA(s);
    if (n == 0 || n > 40) {
        return 0;
    }
    uint64_t m = 0;
    int digits = 0; /* significant digits (leading zeros skipped) */
    int frac = -1;  /* digits after the point; -1 before the point */
    int any = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c >= '0' && c <= '9') {
            any = 1;
            if ((m != 0 || c != '0') && ++digits > 15) {
                return 0;
            }
            m = m * 10 + (uint64_t)(c - '0');
            if (frac >= 0) {
                frac++;
            }
        }
        else if (c == '.' && frac < 0) {
            frac = 0;
        }
        else {
            return 0; /* sign, exponent, spaces, underscores, inf/nan: float() decides */
        }
    }
    if (!any || frac > 22) {
        return 0;
    }
    *out = frac > 0 ? (double)m / POW10[frac] : (double)m;
    return 1;
}

/* float(obj) as a C double; -1 with an exception set on failure. */
static int
as_double(PyObject *obj, double *out)
{
    if (PyFloat_CheckExact(obj)) {
        *out = PyFloat_AS_DOUBLE(obj);
        return 0;
    }
    if (PyUnicode_CheckExact(obj) && decimal_fast(obj, out)) {
        return 0;
    }
    PyObject *f = PyUnicode_Check(obj) ? PyFloat_FromString(obj) : PyNumber_Float(obj);
    if (f == NULL) {
        return -1;
    }
    *out = PyFloat_AS_DOUBLE(f);
    Py_DECREF(f);
    return 0;
}

/* ------------------------------------------------------------------ the side */

typedef struct {
    PyObject_HEAD
    double *keys; /* ascending: prices, or negated prices when negate */
    double *qtys;
    Py_ssize_t n;
    Py_ssize_t cap;
    Py_ssize_t limit; /* levels kept after each apply; -1: all */
    int negate;
} SideObject;

static PyTypeObject SideType;
static PyTypeObject SideIterType;

/* First index whose key is >= x (bisect_left), galloping back from the best (last) level. */
static Py_ssize_t
lower_bound(const double *a, Py_ssize_t n, double x)
{
    Py_ssize_t hi = n, lo = 0, step = 1;
    for (;;) {
        Py_ssize_t probe = hi - step;
        if (probe <= 0) {
            break;
        }
        if (a[probe] < x) {
            lo = probe + 1;
            break;
        }
        hi = probe;
        step <<= 1;
    }
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

static int
side_reserve(SideObject *self, Py_ssize_t need)
{
    if (need <= self->cap) {
        return 0;
    }
    Py_ssize_t cap = self->cap ? self->cap : 64;
    while (cap < need) {
        cap *= 2;
    }
    double *keys = PyMem_Realloc(self->keys, (size_t)cap * sizeof(double));
    if (keys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->keys = keys;
    double *qtys = PyMem_Realloc(self->qtys, (size_t)cap * sizeof(double));
    if (qtys == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->qtys = qtys;
    self->cap = cap;
    return 0;
}

static int
side_set(SideObject *self, double price, double qty)
{
    if (isnan(price)) {
        PyErr_SetString(PyExc_ValueError, "a level's price is not a number");
        return -1;
    }
    double key = self->negate ? -price : price;
    Py_ssize_t n = self->n;
    Py_ssize_t i = lower_bound(self->keys, n, key);
    int found = i < n && self->keys[i] == key;
    if (qty > 0.0) {
        if (found) {
            self->qtys[i] = qty;
            return 0;
        }
        if (side_reserve(self, n + 1) < 0) {
            return -1;
        }
        memmove(self->keys + i + 1, self->keys + i, (size_t)(n - i) * sizeof(double));
        memmove(self->qtys + i + 1, self->qtys + i, (size_t)(n - i) * sizeof(double));
        self->keys[i] = key;
        self->qtys[i] = qty;
        self->n = n + 1;
    }
    else if (found) {
        memmove(self->keys + i, self->keys + i + 1, (size_t)(n - i - 1) * sizeof(double));
        memmove(self->qtys + i, self->qtys + i + 1, (size_t)(n - i - 1) * sizeof(double));
        self->n = n - 1;
    }
    return 0;
}

static int
level_pair(PyObject *level, PyObject **price, PyObject **qty)
{
    if (PyList_CheckExact(level) && PyList_GET_SIZE(level) >= 2) {
        *price = PyList_GET_ITEM(level, 0);
        *qty = PyList_GET_ITEM(level, 1);
        return 0;
    }
    if (PyTuple_CheckExact(level) && PyTuple_GET_SIZE(level) >= 2) {
        *price = PyTuple_GET_ITEM(level, 0);
        *qty = PyTuple_GET_ITEM(level, 1);
        return 0;
    }
    PyErr_SetString(PyExc_ValueError, "a level must be a [price, qty] list or tuple");
    return -1;
}

/* Keep the best ``limit`` levels: the worst sit at the front. */
static void
side_drop_worst(SideObject *self, Py_ssize_t limit)
{
    Py_ssize_t excess = self->n - limit;
    if (excess > 0) {
        memmove(self->keys, self->keys + excess, (size_t)limit * sizeof(double));
        memmove(self->qtys, self->qtys + excess, (size_t)limit * sizeof(double));
        self->n = limit;
    }
}

static PyObject *
side_apply(SideObject *self, PyObject *levels)
{
    PyObject *seq = PySequence_Fast(levels, "levels must be iterable");
    if (seq == NULL) {
        return NULL;
    }
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    PyObject **items = PySequence_Fast_ITEMS(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *price_s, *qty_s;
        double price, qty;
        if (level_pair(items[i], &price_s, &qty_s) < 0 || as_double(price_s, &price) < 0
            || as_double(qty_s, &qty) < 0 || side_set(self, price, qty) < 0) {
            Py_DECREF(seq);
            return NULL;
        }
    }
    Py_DECREF(seq);
    if (self->limit >= 0) {
        side_drop_worst(self, self->limit);
    }
    Py_RETURN_NONE;
}

static PyObject *
side_clear(SideObject *self, PyObject *Py_UNUSED(ignored))
{
    self->n = 0;
    Py_RETURN_NONE;
}

static PyObject *
side_trim(SideObject *self, PyObject *arg)
{
    Py_ssize_t limit = PyLong_AsSsize_t(arg);
    if (limit == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (limit < 0) {
        PyErr_SetString(PyExc_ValueError, "limit must be >= 0");
        return NULL;
    }
    side_drop_worst(self, limit);
    Py_RETURN_NONE;
}

static inline double
price_at(SideObject *self, Py_ssize_t i)
{
    return self->negate ? -self->keys[i] : self->keys[i];
}

/* (price, qty) of level i as a new tuple */
static PyObject *
level_tuple(SideObject *self, Py_ssize_t i)
{
    PyObject *price = PyFloat_FromDouble(price_at(self, i));
    if (price == NULL) {
        return NULL;
    }
    PyObject *qty = PyFloat_FromDouble(self->qtys[i]);
    if (qty == NULL) {
        Py_DECREF(price);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(price);
        Py_DECREF(qty);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, price);
    PyTuple_SET_ITEM(pair, 1, qty);
    return pair;
}

static PyObject *
side_best(SideObject *self, PyObject *Py_UNUSED(ignored))
{
    if (self->n == 0) {
        Py_RETURN_NONE;
    }
    return PyFloat_FromDouble(price_at(self, self->n - 1));
}

static PyObject *
side_best_qty(SideObject *self, PyObject *Py_UNUSED(ignored))
{
    return PyFloat_FromDouble(self->n ? self->qtys[self->n - 1] : 0.0);
}

static PyObject *
side_qty(SideObject *self, PyObject *arg)
{
    double price;
    if (as_double(arg, &price) < 0) {
        return NULL;
    }
    double key = self->negate ? -price : price;
    Py_ssize_t i = lower_bound(self->keys, self->n, key);
    return PyFloat_FromDouble(i < self->n && self->keys[i] == key ? self->qtys[i] : 0.0);
}

static PyObject *
side_depth_to(SideObject *self, PyObject *arg)
{
    double price;
    if (as_double(arg, &price) < 0) {
        return NULL;
    }
    double key = self->negate ? -price : price;
    double total = 0.0;
    /* worst included level first, as the Python side sums: identical floats */
    for (Py_ssize_t i = lower_bound(self->keys, self->n, key); i < self->n; i++) {
        total += self->qtys[i];
    }
    return PyFloat_FromDouble(total);
}

static PyObject *
side_top(SideObject *self, PyObject *arg)
{
    Py_ssize_t want = PyLong_AsSsize_t(arg);
    if (want == -1 && PyErr_Occurred()) {
        return NULL;
    }
    if (want < 0) {
        want = 0;
    }
    Py_ssize_t count = want < self->n ? want : self->n;
    PyObject *out = PyList_New(count);
    if (out == NULL) {
        return NULL;
    }
    for (Py_ssize_t j = 0; j < count; j++) {
        Py_ssize_t i = self->n - 1 - j;
        PyObject *pair = level_tuple(self, i);
        if (pair == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, j, pair);
    }
    return out;
}

typedef struct {
    PyObject_HEAD
    SideObject *side;
    Py_ssize_t next; /* levels already yielded, counted from the best */
} SideIterObject;

static PyObject *
side_levels(SideObject *self, PyObject *Py_UNUSED(ignored))
{
    SideIterObject *it = PyObject_New(SideIterObject, &SideIterType);
    if (it == NULL) {
        return NULL;
    }
    it->side = (SideObject *)Py_NewRef(self);
    it->next = 0;
    return (PyObject *)it;
}

static Py_ssize_t
side_len(SideObject *self)
{
    return self->n;
}

static int
side_init(SideObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"negate", "limit", NULL};
    int negate = 0;
    PyObject *limit = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|pO", kwlist, &negate, &limit)) {
        return -1;
    }
    self->limit = -1;
    if (limit != Py_None) {
        Py_ssize_t value = PyLong_AsSsize_t(limit);
        if (value == -1 && PyErr_Occurred()) {
            return -1;
        }
        if (value < 1) {
            PyErr_SetString(PyExc_ValueError, "limit must be at least 1 level");
            return -1;
        }
        self->limit = value;
    }
    self->negate = negate;
    self->n = 0;
    return 0;
}

static void
side_dealloc(SideObject *self)
{
    PyMem_Free(self->keys);
    PyMem_Free(self->qtys);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef side_methods[] = {
    {"apply", (PyCFunction)side_apply, METH_O,
     "apply(levels): set each [price, qty] (strings or numbers); a quantity <= 0 removes the level;\n"
     "then only the best ``limit`` levels are kept."},
    {"clear", (PyCFunction)side_clear, METH_NOARGS, "clear(): drop every level."},
    {"trim", (PyCFunction)side_trim, METH_O, "trim(limit): keep only the best ``limit`` levels."},
    {"best", (PyCFunction)side_best, METH_NOARGS, "best(): the best price, or None when empty."},
    {"best_qty", (PyCFunction)side_best_qty, METH_NOARGS, "best_qty(): quantity at the best price, 0.0 when empty."},
    {"qty", (PyCFunction)side_qty, METH_O, "qty(price): quantity resting at exactly this price (0.0 if none)."},
    {"depth_to", (PyCFunction)side_depth_to, METH_O,
     "depth_to(price): quantity priced at or better than ``price``."},
    {"top", (PyCFunction)side_top, METH_O, "top(n): the best n levels as (price, qty), best first."},
    {"levels", (PyCFunction)side_levels, METH_NOARGS, "levels(): iterator of (price, qty), best first."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods side_as_sequence = {
    .sq_length = (lenfunc)side_len,
};

static PyTypeObject SideType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "strategies._book_side.Side",
    .tp_doc = PyDoc_STR("Side(negate=False, limit=None): one side of an L2 book, best level last."),
    .tp_basicsize = sizeof(SideObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)side_init,
    .tp_dealloc = (destructor)side_dealloc,
    .tp_methods = side_methods,
    .tp_as_sequence = &side_as_sequence,
};

/* ------------------------------------------------------------------ iterator (best first) */

static PyObject *
side_iter_next(SideIterObject *it)
{
    SideObject *side = it->side;
    /* bounds re-checked on every step: a side changed while iterated never reads past its end */
    Py_ssize_t i = side->n - 1 - it->next;
    if (i < 0) {
        return NULL;
    }
    it->next++;
    return level_tuple(side, i);
}

static void
side_iter_dealloc(SideIterObject *it)
{
    Py_DECREF(it->side);
    PyObject_Free(it);
}

static PyTypeObject SideIterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "strategies._book_side.SideIterator",
    .tp_basicsize = sizeof(SideIterObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)side_iter_dealloc,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)side_iter_next,
};

/* ------------------------------------------------------------------ module */

static PyObject *
parse_decimal(PyObject *Py_UNUSED(module), PyObject *arg)
{
    double value;
    if (as_double(arg, &value) < 0) {
        return NULL;
    }
    return PyFloat_FromDouble(value);
}

static PyMethodDef methods[] = {
    {"parse_decimal", parse_decimal, METH_O,
     "parse_decimal(s): float(s) through the conversion Side.apply uses (for tests)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "strategies._book_side",
    "One side of an L2 book in C (see strategies/book.py).",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__book_side(void)
{
    if (PyType_Ready(&SideType) < 0 || PyType_Ready(&SideIterType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&SideType);
    if (PyModule_AddObject(module, "Side", (PyObject *)&SideType) < 0) {
        Py_DECREF(&SideType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
