/* streamlog._speedups: the producer's per-record number crunching, in C.
 *
 * Optional: setup.py builds it with Extension(optional=True), and
 * streamlog.clients._partitioner falls back to its pure-Python functions when
 * this module is missing (no C compiler) or STREAMLOG_PURE_PYTHON=1 is set.
 * Both paths return the same values (tests/unit/test_partitioner.py).
 *
 * murmur2 is Java's org.apache.kafka.common.utils.Utils.murmur2 (seed
 * 0x9747b28c, m 0x5bd1e995, r 24), in unsigned 32-bit arithmetic; the bytes are
 * read little-endian one by one, so the result does not depend on the host's
 * byte order or alignment.
 *
 * Keys are whatever the pure functions accept: bytes (fast path), bytearray
 * and memoryview (buffer protocol), anything else through bytes(obj), exactly
 * as the pure code calls bytes(data) for a non-bytes key.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

static uint32_t
murmur2_u32(const unsigned char *p, Py_ssize_t n)
{
    const uint32_t m = 0x5bd1e995u;
    uint32_t h = 0x9747b28cu ^ (uint32_t)n;
    Py_ssize_t words = n >> 2;

    for (Py_ssize_t i = 0; i < words; i++, p += 4) {
        uint32_t k = (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16)
                     | ((uint32_t)p[3] << 24);
        k *= m;
        k ^= k >> 24;
        k *= m;
        h *= m;
        h ^= k;
    }
    switch (n & 3) {
    case 3:
        h ^= (uint32_t)p[2] << 16;
        /* fall through */
    case 2:
        h ^= (uint32_t)p[1] << 8;
        /* fall through */
    case 1:
        h ^= (uint32_t)p[0];
        h *= m;
    }
    h ^= h >> 13;
    h *= m;
    h ^= h >> 15;
    return h;
}

/* The unsigned hash of a key. 0 on success, -1 with an exception set. */
static int
hash_key(PyObject *key, uint32_t *out)
{
    if (PyBytes_CheckExact(key)) {
        *out = murmur2_u32((const unsigned char *)PyBytes_AS_STRING(key), PyBytes_GET_SIZE(key));
        return 0;
    }
    if (PyByteArray_CheckExact(key) || PyMemoryView_Check(key)) {
        Py_buffer view;
        if (PyObject_GetBuffer(key, &view, PyBUF_SIMPLE) == 0) {
            *out = murmur2_u32((const unsigned char *)view.buf, view.len);
            PyBuffer_Release(&view);
            return 0;
        }
        PyErr_Clear(); /* e.g. a non-contiguous view: bytes(key) below copies it */
    }
    PyObject *copy = PyObject_CallOneArg((PyObject *)&PyBytes_Type, key);
    if (copy == NULL) {
        return -1;
    }
    *out = murmur2_u32((const unsigned char *)PyBytes_AS_STRING(copy), PyBytes_GET_SIZE(copy));
    Py_DECREF(copy);
    return 0;
}

PyDoc_STRVAR(murmur2_doc,
"murmur2($module, data, /)\n--\n\n"
"Java's ``Utils.murmur2`` as a signed 32-bit int (compiled).");

static PyObject *
sp_murmur2(PyObject *module, PyObject *data)
{
    uint32_t h;
    if (hash_key(data, &h) < 0) {
        return NULL;
    }
    return PyLong_FromLong((long)(int32_t)h);
}

PyDoc_STRVAR(murmur2_positive_doc,
"murmur2_positive($module, data, /)\n--\n\n"
"``to_positive(murmur2(data))``: the hash with the sign bit cleared (compiled).");

static PyObject *
sp_murmur2_positive(PyObject *module, PyObject *data)
{
    uint32_t h;
    if (hash_key(data, &h) < 0) {
        return NULL;
    }
    return PyLong_FromLong((long)(h & 0x7fffffffu));
}

PyDoc_STRVAR(murmur2_partition_doc,
"murmur2_partition($module, key, num_partitions, /)\n--\n\n"
"``to_positive(murmur2(key)) % num_partitions``: Java's partition for a keyed record "
"(compiled).");

static PyObject *
sp_murmur2_partition(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError,
                     "murmur2_partition expected 2 arguments, got %zd", nargs);
        return NULL;
    }
    uint32_t h;
    if (hash_key(args[0], &h) < 0) {
        return NULL;
    }
    long positive = (long)(h & 0x7fffffffu);
    PyObject *n = args[1];
    if (PyLong_CheckExact(n)) {
        int overflow;
        long c = PyLong_AsLongAndOverflow(n, &overflow);
        if (c > 0) {
            return PyLong_FromLong(positive % c);
        }
        if (c == -1 && PyErr_Occurred()) {
            return NULL;
        }
    }
    /* zero, negative, huge or not an int: Python's % decides, as in the pure code */
    PyObject *hv = PyLong_FromLong(positive);
    if (hv == NULL) {
        return NULL;
    }
    PyObject *r = PyNumber_Remainder(hv, n);
    Py_DECREF(hv);
    return r;
}

static PyMethodDef speedups_methods[] = {
    {"murmur2", (PyCFunction)sp_murmur2, METH_O, murmur2_doc},
    {"murmur2_positive", (PyCFunction)sp_murmur2_positive, METH_O, murmur2_positive_doc},
    {"murmur2_partition", (PyCFunction)(void (*)(void))sp_murmur2_partition, METH_FASTCALL,
     murmur2_partition_doc},
    {NULL, NULL, 0, NULL},
};

static PyModuleDef_Slot speedups_slots[] = {
#ifdef Py_mod_multiple_interpreters
    {Py_mod_multiple_interpreters, Py_MOD_PER_INTERPRETER_GIL_SUPPORTED},
#endif
#ifdef Py_GIL_DISABLED
    {Py_mod_gil, Py_MOD_GIL_NOT_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef speedups_module = {
    PyModuleDef_HEAD_INIT,
    "streamlog._speedups",
    "Compiled murmur2 for the producer's partitioner (optional; see docs/design.md).",
    0,
    speedups_methods,
    speedups_slots,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    return PyModuleDef_Init(&speedups_module);
}
