/*
 * shieldwall.detect._native — the detector's hot path in C (optional; see native.py).
 *
 * Two types:
 *
 *   Windows  fail2ban's window buckets (maxretry hits within findtime), the same state and
 *            the same answers as the pure-Python BucketSet: LRU eviction beyond max_tracked,
 *            out-of-order hits sorted in, touched-key tracking, export and restore.
 *   Scanner  one rule's block regex compiled by PCRE2 (JIT), run over a block of ASCII log
 *            lines; per hit it checks the prefilter, parses the source (IPv4 in C, anything
 *            else through Python), dates the line (a per-minute syslog stamp cache, misses
 *            through Python), counts the hit per source and pours it into a Windows.
 *
 * The Python layer (native.py, detector.py) decides when a block may take this path and
 * translates the rule's regex to PCRE2 syntax with Python's semantics; anything this file
 * cannot decide exactly (a match running past its line, a host that is not a plain IPv4
 * address, a stamp not cached) is handed back to Python for that one line.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

/* ------------------------------------------------------------------ keys and index */

typedef struct {
    uint64_t hi, lo;
    uint32_t ver;
    PyObject *rule; /* borrowed from the owner's slot (Windows) or NULL */
} Key;

static inline uint64_t mix64(uint64_t x) {
    x ^= x >> 30; x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27; x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t key_hash(const Key *k) {
    uint64_t h = mix64(k->lo ^ ((uint64_t)k->ver << 56)) ^ mix64(k->hi + 0x9e3779b97f4a7c15ULL);
    if (k->rule != NULL) h ^= mix64((uint64_t)PyObject_Hash(k->rule));
    return h;
}

static inline int key_eq(const Key *a, const Key *b) {
    if (a->lo != b->lo || a->hi != b->hi || a->ver != b->ver) return 0;
    if (a->rule == b->rule) return 1;
    if (a->rule == NULL || b->rule == NULL) return 0;
    return PyUnicode_Compare(a->rule, b->rule) == 0;
}

/* Open addressing, linear probing, backward-shift deletion: slot numbers into an owner's
 * key array (the owner passes its array on every call: it may move when it grows). */
typedef struct {
    int32_t *cells;
    size_t mask; /* cells - 1; 0 when unallocated */
} Index;

static int index_reset(Index *ix, size_t want) {
    size_t n = 16;
    while (n < want * 2) n <<= 1;
    int32_t *cells = PyMem_Malloc(n * sizeof(int32_t));
    if (cells == NULL) { PyErr_NoMemory(); return -1; }
    memset(cells, 0xff, n * sizeof(int32_t));
    PyMem_Free(ix->cells);
    ix->cells = cells;
    ix->mask = n - 1;
    return 0;
}

static int32_t index_find(const Index *ix, const Key *keys, const Key *k) {
    if (ix->mask == 0) return -1;
    size_t i = key_hash(k) & ix->mask;
    for (;;) {
        int32_t s = ix->cells[i];
        if (s < 0) return -1;
        if (key_eq(&keys[s], k)) return s;
        i = (i + 1) & ix->mask;
    }
}

static void index_put(Index *ix, const Key *keys, int32_t slot) {
    size_t i = key_hash(&keys[slot]) & ix->mask;
    while (ix->cells[i] >= 0) i = (i + 1) & ix->mask;
    ix->cells[i] = slot;
}

static void index_remove(Index *ix, const Key *keys, int32_t slot) {
    size_t mask = ix->mask;
    size_t i = key_hash(&keys[slot]) & mask;
    while (ix->cells[i] != slot) i = (i + 1) & mask;
    size_t j = i;
    for (;;) {
        j = (j + 1) & mask;
        int32_t s = ix->cells[j];
        if (s < 0) break;
        size_t home = key_hash(&keys[s]) & mask;
        /* move s back into the hole at i unless its home lies cyclically in (i, j] */
        int stays = (i <= j) ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            ix->cells[i] = s;
            i = j;
        }
    }
    ix->cells[i] = -1;
}

/* ------------------------------------------------------------------ key of an address */

static PyObject *S_ip, *S_version, *S_epoch, *S_minute_base;

static int key_of_address(PyObject *addr, Key *k) {
    PyObject *ip = PyObject_GetAttr(addr, S_ip);
    if (ip == NULL) return -1;
    PyObject *ver = PyObject_GetAttr(addr, S_version);
    if (ver == NULL) { Py_DECREF(ip); return -1; }
    k->ver = (uint32_t)PyLong_AsLong(ver);
    Py_DECREF(ver);
    k->lo = PyLong_AsUnsignedLongLongMask(ip);
    PyObject *sixty_four = PyLong_FromLong(64);
    PyObject *high = sixty_four ? PyNumber_Rshift(ip, sixty_four) : NULL;
    Py_XDECREF(sixty_four);
    Py_DECREF(ip);
    if (high == NULL) return -1;
    k->hi = PyLong_AsUnsignedLongLongMask(high);
    Py_DECREF(high);
    k->rule = NULL;
    return PyErr_Occurred() ? -1 : 0;
}

/* ------------------------------------------------------------------ Windows */

typedef struct {
    PyObject_HEAD
    int32_t maxretry;
    double findtime;
    Py_ssize_t max_tracked;
    Py_ssize_t evidence; /* lines are kept to this many characters */
    /* slots */
    Py_ssize_t cap, len;
    Key *keys;          /* keys[s].rule is a strong reference while the slot is used */
    PyObject **sources; /* strong */
    int32_t *prev, *next, *count;
    double *times;      /* cap * maxretry */
    PyObject **lines;   /* cap * maxretry, strong */
    int32_t *free_list;
    Py_ssize_t nfree, used_top;
    int32_t head, tail; /* least and most recently touched */
    Index index;
    /* touched keys (strong rule and source references) */
    int tracking;
    Key *tkeys;
    PyObject **tsources;
    Py_ssize_t tcap, tlen;
    Index tindex;
    /* counts the Python side drains */
    Py_ssize_t evicted, touched_overflow;
} Windows;

static void touched_clear(Windows *w) {
    for (Py_ssize_t i = 0; i < w->tlen; i++) {
        Py_DECREF(w->tkeys[i].rule);
        Py_DECREF(w->tsources[i]);
    }
    w->tlen = 0;
    if (w->tindex.mask) memset(w->tindex.cells, 0xff, (w->tindex.mask + 1) * sizeof(int32_t));
}

static int touch(Windows *w, const Key *k, PyObject *source) {
    if (!w->tracking) return 0;
    int32_t s = index_find(&w->tindex, w->tkeys, k);
    if (s >= 0) {
        Py_INCREF(source);
        Py_SETREF(w->tsources[s], source);
        return 0;
    }
    if (w->tlen == w->tcap) {
        Py_ssize_t cap = w->tcap ? w->tcap * 2 : 64;
        Key *keys = PyMem_Realloc(w->tkeys, cap * sizeof(Key));
        if (keys == NULL) { PyErr_NoMemory(); return -1; }
        w->tkeys = keys;
        PyObject **sources = PyMem_Realloc(w->tsources, cap * sizeof(PyObject *));
        if (sources == NULL) { PyErr_NoMemory(); return -1; }
        w->tsources = sources;
        w->tcap = cap;
        if (index_reset(&w->tindex, (size_t)cap) < 0) return -1;
        for (Py_ssize_t i = 0; i < w->tlen; i++) index_put(&w->tindex, w->tkeys, (int32_t)i);
    }
    Py_ssize_t i = w->tlen++;
    w->tkeys[i] = *k;
    Py_INCREF(k->rule);
    Py_INCREF(source);
    w->tsources[i] = source;
    index_put(&w->tindex, w->tkeys, (int32_t)i);
    if (w->tlen > 4 * w->max_tracked) {
        /* nobody is collecting: stop (the next touched() resyncs every live key) */
        touched_clear(w);
        w->tracking = 0;
        w->touched_overflow++;
    }
    return 0;
}

static int windows_grow(Windows *w) {
    Py_ssize_t cap = w->cap ? w->cap * 2 : 64;
    if (cap > w->max_tracked + 1) cap = w->max_tracked + 1;
    if (cap <= w->cap) cap = w->cap + 1;
    size_t m = (size_t)w->maxretry;
#define GROW(field, type, n)                                                   \
    do {                                                                       \
        type *p = PyMem_Realloc(w->field, (size_t)(n) * sizeof(type));         \
        if (p == NULL) { PyErr_NoMemory(); return -1; }                        \
        w->field = p;                                                          \
    } while (0)
    GROW(keys, Key, cap);
    GROW(sources, PyObject *, cap);
    GROW(prev, int32_t, cap);
    GROW(next, int32_t, cap);
    GROW(count, int32_t, cap);
    GROW(free_list, int32_t, cap);
    GROW(times, double, cap * m);
    GROW(lines, PyObject *, cap * m);
#undef GROW
    w->cap = cap;
    if (index_reset(&w->index, (size_t)cap) < 0) return -1;
    for (int32_t s = w->head; s >= 0; s = w->next[s]) index_put(&w->index, w->keys, s);
    return 0;
}

static int32_t slot_new(Windows *w, const Key *k, PyObject *source) {
    int32_t s;
    if (w->nfree > 0) {
        s = w->free_list[--w->nfree];
    } else {
        if (w->used_top == w->cap && windows_grow(w) < 0) return -1;
        s = (int32_t)w->used_top++;
    }
    w->keys[s] = *k;
    Py_INCREF(k->rule);
    Py_INCREF(source);
    w->sources[s] = source;
    w->count[s] = 0;
    w->prev[s] = w->tail;
    w->next[s] = -1;
    if (w->tail >= 0) w->next[w->tail] = s; else w->head = s;
    w->tail = s;
    index_put(&w->index, w->keys, s);
    w->len++;
    return s;
}

static void lru_unlink(Windows *w, int32_t s) {
    if (w->prev[s] >= 0) w->next[w->prev[s]] = w->next[s]; else w->head = w->next[s];
    if (w->next[s] >= 0) w->prev[w->next[s]] = w->prev[s]; else w->tail = w->prev[s];
}

static void lru_to_end(Windows *w, int32_t s) {
    if (w->tail == s) return;
    lru_unlink(w, s);
    w->prev[s] = w->tail;
    w->next[s] = -1;
    w->next[w->tail] = s;
    w->tail = s;
}

static void slot_free(Windows *w, int32_t s) {
    index_remove(&w->index, w->keys, s);
    lru_unlink(w, s);
    PyObject **lines = w->lines + (size_t)s * w->maxretry;
    for (int32_t i = 0; i < w->count[s]; i++) Py_DECREF(lines[i]);
    w->count[s] = 0;
    Py_DECREF(w->keys[s].rule);
    Py_DECREF(w->sources[s]);
    w->free_list[w->nfree++] = s;
    w->len--;
}

/* (source, times, lines, count): the alert's material; the Python side builds the Alert */
static PyObject *alert_tuple(PyObject *source, const double *times, PyObject *const *lines,
                             int32_t n, int32_t count) {
    PyObject *t = PyTuple_New(n), *l = PyTuple_New(n);
    if (t == NULL || l == NULL) { Py_XDECREF(t); Py_XDECREF(l); return NULL; }
    for (int32_t i = 0; i < n; i++) {
        PyObject *f = PyFloat_FromDouble(times[i]);
        if (f == NULL) { Py_DECREF(t); Py_DECREF(l); return NULL; }
        PyTuple_SET_ITEM(t, i, f);
        Py_INCREF(lines[i]);
        PyTuple_SET_ITEM(l, i, lines[i]);
    }
    return Py_BuildValue("(ONNi)", source, t, l, (int)count);
}

/* One hit; *alert gets a new reference when the bucket overflows. `line` is borrowed. */
static int windows_hit(Windows *w, const Key *k, PyObject *source, double epoch, PyObject *line,
                       PyObject **alert) {
    *alert = NULL;
    int32_t s = index_find(&w->index, w->keys, k);
    if (s < 0) {
        if (w->maxretry == 1) {
            if (touch(w, k, source) < 0) return -1;
            *alert = alert_tuple(source, &epoch, &line, 1, 1);
            return *alert == NULL ? -1 : 0;
        }
        s = slot_new(w, k, source);
        if (s < 0) return -1;
        if (w->len > w->max_tracked) {
            int32_t victim = w->head;
            Key gone = w->keys[victim];
            PyObject *gone_source = w->sources[victim];
            Py_INCREF(gone.rule);
            Py_INCREF(gone_source);
            slot_free(w, victim);
            w->evicted++;
            int rc = touch(w, &gone, gone_source);
            Py_DECREF(gone.rule);
            Py_DECREF(gone_source);
            if (rc < 0) return -1;
        }
    } else {
        lru_to_end(w, s);
    }
    int32_t m = w->maxretry, n = w->count[s];
    double *t = w->times + (size_t)s * m;
    PyObject **l = w->lines + (size_t)s * m;
    int32_t pos = n;
    while (pos > 0 && t[pos - 1] > epoch) pos--; /* after equal times, as bisect.insort */
    memmove(t + pos + 1, t + pos, (size_t)(n - pos) * sizeof(double));
    memmove(l + pos + 1, l + pos, (size_t)(n - pos) * sizeof(PyObject *));
    t[pos] = epoch;
    Py_INCREF(line);
    l[pos] = line;
    n++;
    double cutoff = t[n - 1] - w->findtime;
    int32_t keep = 0;
    while (t[keep] < cutoff) keep++;
    if (keep) {
        for (int32_t i = 0; i < keep; i++) Py_DECREF(l[i]);
        memmove(t, t + keep, (size_t)(n - keep) * sizeof(double));
        memmove(l, l + keep, (size_t)(n - keep) * sizeof(PyObject *));
        n -= keep;
    }
    w->count[s] = n;
    if (touch(w, k, source) < 0) return -1;
    if (n >= m) {
        *alert = alert_tuple(source, t + (n - m), l + (n - m), m, n);
        slot_free(w, s);
        if (*alert == NULL) return -1;
    }
    return 0;
}

static int windows_init(Windows *w, PyObject *args, PyObject *kw) {
    static char *names[] = {"maxretry", "findtime", "max_tracked", "evidence_chars", NULL};
    int maxretry;
    double findtime;
    Py_ssize_t max_tracked, evidence;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "idnn", names, &maxretry, &findtime, &max_tracked,
                                     &evidence))
        return -1;
    if (maxretry < 1 || !(findtime > 0) || max_tracked < 1 || max_tracked > (1 << 30) ||
        evidence < 1) {
        PyErr_SetString(PyExc_ValueError,
                        "maxretry >= 1, findtime > 0, 1 <= max_tracked, evidence_chars >= 1");
        return -1;
    }
    if (w->cap) {
        PyErr_SetString(PyExc_RuntimeError, "Windows is already initialised");
        return -1;
    }
    w->maxretry = maxretry;
    w->findtime = findtime;
    w->max_tracked = max_tracked;
    w->evidence = evidence;
    w->head = w->tail = -1;
    return 0;
}

static void windows_clear_all(Windows *w) {
    while (w->head >= 0) slot_free(w, w->head);
    touched_clear(w);
}

static void windows_dealloc(Windows *w) {
    windows_clear_all(w);
    PyMem_Free(w->keys); PyMem_Free(w->sources); PyMem_Free(w->prev); PyMem_Free(w->next);
    PyMem_Free(w->count); PyMem_Free(w->free_list); PyMem_Free(w->times); PyMem_Free(w->lines);
    PyMem_Free(w->index.cells);
    PyMem_Free(w->tkeys); PyMem_Free(w->tsources); PyMem_Free(w->tindex.cells);
    Py_TYPE(w)->tp_free((PyObject *)w);
}

static int parse_key(PyObject *rule, PyObject *source, Key *k) {
    if (!PyUnicode_Check(rule)) {
        PyErr_SetString(PyExc_TypeError, "rule must be a str");
        return -1;
    }
    if (key_of_address(source, k) < 0) return -1;
    k->rule = rule;
    return 0;
}

/* hit(rule, source, epoch, line) -> None | (source, times, lines, count) */
static PyObject *windows_py_hit(Windows *w, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4) { PyErr_SetString(PyExc_TypeError, "hit(rule, source, epoch, line)"); return NULL; }
    Key k;
    if (parse_key(args[0], args[1], &k) < 0) return NULL;
    double epoch = PyFloat_AsDouble(args[2]);
    if (epoch == -1.0 && PyErr_Occurred()) return NULL;
    if (!PyUnicode_Check(args[3])) { PyErr_SetString(PyExc_TypeError, "line must be a str"); return NULL; }
    PyObject *line = PyUnicode_Substring(args[3], 0, w->evidence);
    if (line == NULL) return NULL;
    PyObject *alert;
    int rc = windows_hit(w, &k, args[1], epoch, line, &alert);
    Py_DECREF(line);
    if (rc < 0) return NULL;
    if (alert == NULL) Py_RETURN_NONE;
    return alert;
}

/* get(rule, source) -> None | (times list, lines list) */
static PyObject *windows_py_get(Windows *w, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "get(rule, source)"); return NULL; }
    Key k;
    if (parse_key(args[0], args[1], &k) < 0) return NULL;
    int32_t s = index_find(&w->index, w->keys, &k);
    if (s < 0) Py_RETURN_NONE;
    int32_t n = w->count[s];
    PyObject *t = PyList_New(n), *l = PyList_New(n);
    if (t == NULL || l == NULL) { Py_XDECREF(t); Py_XDECREF(l); return NULL; }
    for (int32_t i = 0; i < n; i++) {
        PyObject *f = PyFloat_FromDouble(w->times[(size_t)s * w->maxretry + i]);
        if (f == NULL) { Py_DECREF(t); Py_DECREF(l); return NULL; }
        PyList_SET_ITEM(t, i, f);
        PyObject *line = w->lines[(size_t)s * w->maxretry + i];
        Py_INCREF(line);
        PyList_SET_ITEM(l, i, line);
    }
    return Py_BuildValue("(NN)", t, l);
}

/* put(rule, source, times, lines): a restored bucket (sorted, at most maxretry - 1 hits, at
 * least one), newest in LRU order; beyond max_tracked the oldest goes (not touched). */
static PyObject *windows_py_put(Windows *w, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 4 || !PyList_Check(args[2]) || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "put(rule, source, times: list, lines: list)");
        return NULL;
    }
    Key k;
    if (parse_key(args[0], args[1], &k) < 0) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(args[2]);
    if (n < 1 || n >= w->maxretry || PyList_GET_SIZE(args[3]) != n) {
        PyErr_SetString(PyExc_ValueError, "put: 1 <= hits < maxretry, one line per time");
        return NULL;
    }
    int32_t s = index_find(&w->index, w->keys, &k);
    if (s >= 0) slot_free(w, s);
    s = slot_new(w, &k, args[1]);
    if (s < 0) return NULL;
    double *t = w->times + (size_t)s * w->maxretry;
    PyObject **l = w->lines + (size_t)s * w->maxretry;
    for (Py_ssize_t i = 0; i < n; i++) {
        double v = PyFloat_AsDouble(PyList_GET_ITEM(args[2], i));
        if (v == -1.0 && PyErr_Occurred()) { slot_free(w, s); return NULL; }
        t[i] = v;
        PyObject *line = PyList_GET_ITEM(args[3], i);
        Py_INCREF(line);
        l[i] = line;
        w->count[s] = (int32_t)(i + 1);
    }
    if (w->len > w->max_tracked) {
        slot_free(w, w->head);
        w->evicted++;
    }
    Py_RETURN_NONE;
}

/* drop(rule, source): forget a bucket (restore of an emptied row; not touched) */
static PyObject *windows_py_drop(Windows *w, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) { PyErr_SetString(PyExc_TypeError, "drop(rule, source)"); return NULL; }
    Key k;
    if (parse_key(args[0], args[1], &k) < 0) return NULL;
    int32_t s = index_find(&w->index, w->keys, &k);
    if (s >= 0) slot_free(w, s);
    Py_RETURN_NONE;
}

/* prune(cutoff) -> int: drop buckets whose newest hit is older than cutoff (touched) */
static PyObject *windows_py_prune(Windows *w, PyObject *arg) {
    double cutoff = PyFloat_AsDouble(arg);
    if (cutoff == -1.0 && PyErr_Occurred()) return NULL;
    Py_ssize_t gone = 0;
    int32_t s = w->head;
    while (s >= 0) {
        int32_t after = w->next[s];
        if (w->times[(size_t)s * w->maxretry + w->count[s] - 1] < cutoff) {
            Key k = w->keys[s];
            PyObject *source = w->sources[s];
            Py_INCREF(k.rule);
            Py_INCREF(source);
            slot_free(w, s);
            int rc = touch(w, &k, source);
            Py_DECREF(k.rule);
            Py_DECREF(source);
            if (rc < 0) return NULL;
            gone++;
        }
        s = after;
    }
    return PyLong_FromSsize_t(gone);
}

/* touched() -> list[(rule, source)]: the first call starts tracking and returns every live
 * key; later calls return the keys touched since the previous call. */
/* append (rule, source) to out; -1 on error */
static int append_pair(PyObject *out, PyObject *rule, PyObject *source) {
    PyObject *pair = PyTuple_Pack(2, rule, source);
    if (pair == NULL) return -1;
    int rc = PyList_Append(out, pair);
    Py_DECREF(pair);
    return rc;
}

static PyObject *windows_py_touched(Windows *w, PyObject *Py_UNUSED(ignored)) {
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    if (!w->tracking) {
        touched_clear(w);
        w->tracking = 1;
        for (int32_t s = w->head; s >= 0; s = w->next[s]) {
            if (append_pair(out, w->keys[s].rule, w->sources[s]) < 0) { Py_DECREF(out); return NULL; }
        }
        return out;
    }
    for (Py_ssize_t i = 0; i < w->tlen; i++) {
        if (append_pair(out, w->tkeys[i].rule, w->tsources[i]) < 0) { Py_DECREF(out); return NULL; }
    }
    touched_clear(w);
    return out;
}

/* take_counts() -> (evicted, touched_overflow) since the last call */
static PyObject *windows_py_take_counts(Windows *w, PyObject *Py_UNUSED(ignored)) {
    PyObject *r = Py_BuildValue("(nn)", w->evicted, w->touched_overflow);
    w->evicted = w->touched_overflow = 0;
    return r;
}

static Py_ssize_t windows_len(Windows *w) { return w->len; }

static PyMethodDef windows_methods[] = {
    {"hit", (PyCFunction)(void (*)(void))windows_py_hit, METH_FASTCALL, NULL},
    {"get", (PyCFunction)(void (*)(void))windows_py_get, METH_FASTCALL, NULL},
    {"put", (PyCFunction)(void (*)(void))windows_py_put, METH_FASTCALL, NULL},
    {"drop", (PyCFunction)(void (*)(void))windows_py_drop, METH_FASTCALL, NULL},
    {"prune", (PyCFunction)windows_py_prune, METH_O, NULL},
    {"touched", (PyCFunction)windows_py_touched, METH_NOARGS, NULL},
    {"take_counts", (PyCFunction)windows_py_take_counts, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods windows_as_sequence = {.sq_length = (lenfunc)windows_len};

static PyTypeObject WindowsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shieldwall.detect._native.Windows",
    .tp_basicsize = sizeof(Windows),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)windows_init,
    .tp_dealloc = (destructor)windows_dealloc,
    .tp_methods = windows_methods,
    .tp_as_sequence = &windows_as_sequence,
    .tp_doc = "fail2ban window buckets of one rule (see bucket.py)",
};

/* ------------------------------------------------------------------ Scanner */

typedef struct {
    PyObject *address; /* strong */
    PyObject *ip;      /* strong: the address as int */
    PyObject *version; /* strong */
} Source;

typedef struct {
    PyObject_HEAD
    pcre2_code *scan, *anchored;
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;
    int32_t *alt_group, *alt_index, *alt_host;
    Py_ssize_t nalt;
    PyObject *literals; /* tuple of bytes */
    /* addresses seen (IPv4 parsed here, others by Python): key -> Source */
    Key *akeys;
    Source *asrc;
    Py_ssize_t acap, alen;
    Index aindex;
    /* per scan: hits counted per source */
    Key *tkeys;
    int32_t *tsrc; /* index into asrc, or -1 with tobj holding the Source */
    Source *tobj;
    Py_ssize_t *tcount;
    double *tfirst, *tlast;
    Py_ssize_t tcap, tlen;
    Index tindex;
    int busy; /* a scan is running (its callbacks must not start another on this scanner) */
} Scanner;

#define ADDRESS_CACHE 65536

static void sources_release(Source *src, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(src[i].address); Py_XDECREF(src[i].ip); Py_XDECREF(src[i].version);
    }
}

static int compile_pattern(PyObject *text, uint32_t options, pcre2_code **out) {
    Py_ssize_t n;
    const char *p = PyUnicode_AsUTF8AndSize(text, &n);
    if (p == NULL) return -1;
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (cc == NULL) { PyErr_NoMemory(); return -1; }
    pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
    int err;
    PCRE2_SIZE at;
    pcre2_code *code = pcre2_compile((PCRE2_SPTR)p, (PCRE2_SIZE)n, options, &err, &at, cc);
    pcre2_compile_context_free(cc);
    if (code == NULL) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(err, msg, sizeof msg);
        PyErr_Format(PyExc_ValueError, "PCRE2: %s at %zu", (char *)msg, (size_t)at);
        return -1;
    }
    if (pcre2_jit_compile(code, PCRE2_JIT_COMPLETE) != 0) {
        pcre2_code_free(code);
        PyErr_SetString(PyExc_ValueError, "PCRE2: JIT compilation failed");
        return -1;
    }
    *out = code;
    return 0;
}

/* Scanner(pattern, slots, literals): pattern in PCRE2 syntax (lines joined by "\n", the
 * block starting with one); slots = ((group, index, host group), ...) per alternative;
 * literals = prefilter literals as bytes (a hit's line must hold one). */
static int scanner_init(Scanner *sc, PyObject *args, PyObject *kw) {
    static char *names[] = {"pattern", "slots", "literals", NULL};
    PyObject *pattern, *slots, *literals;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "UO!O!", names, &pattern, &PyTuple_Type, &slots,
                                     &PyTuple_Type, &literals))
        return -1;
    if (sc->scan != NULL) { PyErr_SetString(PyExc_RuntimeError, "already initialised"); return -1; }
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(literals); i++) {
        if (!PyBytes_Check(PyTuple_GET_ITEM(literals, i)) || PyBytes_GET_SIZE(PyTuple_GET_ITEM(literals, i)) == 0) {
            PyErr_SetString(PyExc_TypeError, "literals must be non-empty bytes");
            return -1;
        }
    }
    if (compile_pattern(pattern, PCRE2_MULTILINE, &sc->scan) < 0) return -1;
    if (compile_pattern(pattern, PCRE2_MULTILINE | PCRE2_ANCHORED, &sc->anchored) < 0) return -1;
    uint32_t groups;
    pcre2_pattern_info(sc->scan, PCRE2_INFO_CAPTURECOUNT, &groups);
    Py_ssize_t n = PyTuple_GET_SIZE(slots);
    sc->alt_group = PyMem_Malloc((n + 1) * sizeof(int32_t));
    sc->alt_index = PyMem_Malloc((n + 1) * sizeof(int32_t));
    sc->alt_host = PyMem_Malloc((n + 1) * sizeof(int32_t));
    if (!sc->alt_group || !sc->alt_index || !sc->alt_host) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        int g, idx, h;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(slots, i), "iii", &g, &idx, &h)) return -1;
        if (g < 1 || h < 1 || (uint32_t)g > groups || (uint32_t)h > groups) {
            PyErr_SetString(PyExc_ValueError, "slot group out of range");
            return -1;
        }
        sc->alt_group[i] = g; sc->alt_index[i] = idx; sc->alt_host[i] = h;
    }
    sc->nalt = n;
    sc->md = pcre2_match_data_create_from_pattern(sc->scan, NULL);
    sc->mctx = pcre2_match_context_create(NULL);
    sc->jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    if (!sc->md || !sc->mctx || !sc->jit_stack) { PyErr_NoMemory(); return -1; }
    pcre2_jit_stack_assign(sc->mctx, NULL, sc->jit_stack);
    Py_INCREF(literals);
    sc->literals = literals;
    return 0;
}

static void scanner_dealloc(Scanner *sc) {
    if (sc->scan) pcre2_code_free(sc->scan);
    if (sc->anchored) pcre2_code_free(sc->anchored);
    if (sc->md) pcre2_match_data_free(sc->md);
    if (sc->mctx) pcre2_match_context_free(sc->mctx);
    if (sc->jit_stack) pcre2_jit_stack_free(sc->jit_stack);
    PyMem_Free(sc->alt_group); PyMem_Free(sc->alt_index); PyMem_Free(sc->alt_host);
    Py_XDECREF(sc->literals);
    sources_release(sc->asrc, sc->alen);
    PyMem_Free(sc->akeys); PyMem_Free(sc->asrc); PyMem_Free(sc->aindex.cells);
    PyMem_Free(sc->tkeys); PyMem_Free(sc->tsrc); PyMem_Free(sc->tobj); PyMem_Free(sc->tcount);
    PyMem_Free(sc->tfirst); PyMem_Free(sc->tlast); PyMem_Free(sc->tindex.cells);
    Py_TYPE(sc)->tp_free((PyObject *)sc);
}

/* Python's ipaddress.IPv4Address text: four decimal octets, 0-255, no leading zero. */
static int parse_ipv4(const char *s, size_t n, uint32_t *out) {
    uint32_t v = 0;
    size_t i = 0;
    for (int part = 0; part < 4; part++) {
        size_t start = i;
        uint32_t octet = 0;
        while (i < n && s[i] >= '0' && s[i] <= '9' && i - start < 3) octet = octet * 10 + (uint32_t)(s[i++] - '0');
        if (i == start || (i < n && s[i] >= '0' && s[i] <= '9')) return 0;
        if (i - start > 1 && s[start] == '0') return 0;
        if (octet > 255) return 0;
        v = (v << 8) | octet;
        if (part < 3) {
            if (i >= n || s[i] != '.') return 0;
            i++;
        }
    }
    if (i != n) return 0;
    *out = v;
    return 1;
}

static int address_grow(Scanner *sc) {
    Py_ssize_t cap = sc->acap ? sc->acap * 2 : 1024;
    Key *k = PyMem_Realloc(sc->akeys, cap * sizeof(Key));
    if (k == NULL) { PyErr_NoMemory(); return -1; }
    sc->akeys = k;
    Source *s = PyMem_Realloc(sc->asrc, cap * sizeof(Source));
    if (s == NULL) { PyErr_NoMemory(); return -1; }
    sc->asrc = s;
    sc->acap = cap;
    if (index_reset(&sc->aindex, (size_t)cap) < 0) return -1;
    for (Py_ssize_t i = 0; i < sc->alen; i++) index_put(&sc->aindex, sc->akeys, (int32_t)i);
    return 0;
}

/* remember an address; returns its slot, or -1 on error */
static int32_t address_add(Scanner *sc, const Key *k, PyObject *address) {
    if (sc->alen >= ADDRESS_CACHE) { /* full: start again (the tally holds its own refs) */
        sources_release(sc->asrc, sc->alen);
        sc->alen = 0;
        memset(sc->aindex.cells, 0xff, (sc->aindex.mask + 1) * sizeof(int32_t));
    }
    if (sc->alen == sc->acap && address_grow(sc) < 0) return -1;
    PyObject *ip = PyObject_GetAttr(address, S_ip);
    if (ip == NULL) return -1;
    PyObject *version = PyObject_GetAttr(address, S_version);
    if (version == NULL) { Py_DECREF(ip); return -1; }
    int32_t s = (int32_t)sc->alen++;
    sc->akeys[s] = *k;
    Py_INCREF(address);
    sc->asrc[s].address = address;
    sc->asrc[s].ip = ip;
    sc->asrc[s].version = version;
    index_put(&sc->aindex, sc->akeys, s);
    return s;
}

typedef struct {
    Scanner *sc;
    Windows *windows;
    PyObject *rule, *tally, *tallied, *addresses, *resolve, *stamp, *now, *ignore, *one_line;
    double now_epoch;
    PyObject *alerts;
    Py_ssize_t hits, ignored, invalid_host, no_timestamp;
    /* minute cache of syslog stamps */
    int minute_valid;
    char minute_key[13];
    double minute_base;
} Run;

static int tally_grow(Scanner *sc) {
    Py_ssize_t cap = sc->tcap ? sc->tcap * 2 : 1024;
#define TGROW(field, type)                                                     \
    do {                                                                       \
        type *p = PyMem_Realloc(sc->field, (size_t)cap * sizeof(type));        \
        if (p == NULL) { PyErr_NoMemory(); return -1; }                        \
        sc->field = p;                                                         \
    } while (0)
    TGROW(tkeys, Key); TGROW(tsrc, int32_t); TGROW(tobj, Source); TGROW(tcount, Py_ssize_t);
    TGROW(tfirst, double); TGROW(tlast, double);
#undef TGROW
    sc->tcap = cap;
    if (index_reset(&sc->tindex, (size_t)cap) < 0) return -1;
    for (Py_ssize_t i = 0; i < sc->tlen; i++) index_put(&sc->tindex, sc->tkeys, (int32_t)i);
    return 0;
}

static int tally_add(Run *run, const Key *k, const Source *src, double epoch) {
    Scanner *sc = run->sc;
    int32_t t = index_find(&sc->tindex, sc->tkeys, k);
    if (t >= 0) {
        sc->tcount[t]++;
        if (epoch < sc->tfirst[t]) sc->tfirst[t] = epoch;
        else if (epoch > sc->tlast[t]) sc->tlast[t] = epoch;
        return 0;
    }
    if (sc->tlen == sc->tcap && tally_grow(sc) < 0) return -1;
    t = (int32_t)sc->tlen++;
    sc->tkeys[t] = *k;
    sc->tobj[t] = *src;
    Py_INCREF(src->address); Py_INCREF(src->ip); Py_INCREF(src->version);
    sc->tcount[t] = 1;
    sc->tfirst[t] = sc->tlast[t] = epoch;
    index_put(&sc->tindex, sc->tkeys, t);
    return 0;
}

/* the per-scan tally into the caller's dict {(rule, ip, version): Tallied} */
static int tally_flush(Run *run) {
    Scanner *sc = run->sc;
    int rc = 0;
    for (Py_ssize_t i = 0; i < sc->tlen; i++) {
        Source *src = &sc->tobj[i];
        if (rc == 0 && run->tally != NULL) {
            PyObject *key = PyTuple_Pack(3, run->rule, src->ip, src->version);
            PyObject *count = PyLong_FromSsize_t(sc->tcount[i]);
            PyObject *first = PyFloat_FromDouble(sc->tfirst[i]);
            PyObject *last = PyFloat_FromDouble(sc->tlast[i]);
            PyObject *old = key ? PyDict_GetItemWithError(run->tally, key) : NULL;
            if (key == NULL || count == NULL || first == NULL || last == NULL || PyErr_Occurred()) {
                rc = -1;
            } else if (old != NULL) { /* merge: count, and widen first/last */
                PyObject *r = PyObject_CallMethod(old, "merge", "OOO", count, first, last);
                if (r == NULL) rc = -1;
                Py_XDECREF(r);
            } else {
                PyObject *argv[5] = {run->rule, src->address, count, first, last};
                PyObject *entry = PyObject_Vectorcall(run->tallied, argv, 5, NULL);
                if (entry == NULL || PyDict_SetItem(run->tally, key, entry) < 0) rc = -1;
                Py_XDECREF(entry);
            }
            Py_XDECREF(key); Py_XDECREF(count); Py_XDECREF(first); Py_XDECREF(last);
        }
        Py_DECREF(src->address); Py_DECREF(src->ip); Py_DECREF(src->version);
    }
    sc->tlen = 0;
    if (sc->tindex.mask) memset(sc->tindex.cells, 0xff, (sc->tindex.mask + 1) * sizeof(int32_t));
    return rc;
}

static inline int is_digit(char c) { return c >= '0' && c <= '9'; }

/* "Mmm dd HH:MM:SS " at the line start (the day may be " d") */
static inline int syslog_shape(const char *p, size_t n) {
    return n >= 16 && p[0] >= 'A' && p[0] <= 'Z' && p[1] >= 'a' && p[1] <= 'z' && p[2] >= 'a' &&
           p[2] <= 'z' && p[3] == ' ' && (p[4] == ' ' || is_digit(p[4])) && is_digit(p[5]) &&
           p[6] == ' ' && is_digit(p[7]) && is_digit(p[8]) && p[9] == ':' && is_digit(p[10]) &&
           is_digit(p[11]) && p[12] == ':' && is_digit(p[13]) && is_digit(p[14]) && p[15] == ' ';
}

/* The line's time as epoch seconds: 1 found, 0 none, -1 error. */
static int line_time(Run *run, const char *line, size_t n, PyObject **text, double *epoch) {
    int shaped = syslog_shape(line, n);
    int second = shaped ? (line[13] - '0') * 10 + (line[14] - '0') : 99;
    if (shaped && second <= 59 && run->minute_valid && memcmp(line, run->minute_key, 13) == 0) {
        *epoch = run->minute_base + second;
        return 1;
    }
    if (*text == NULL && (*text = PyUnicode_DecodeASCII(line, (Py_ssize_t)n, NULL)) == NULL) return -1;
    PyObject *r = PyObject_CallMethodObjArgs(run->stamp, S_epoch, *text, run->now, NULL);
    if (r == NULL) return -1;
    if (r == Py_None) { Py_DECREF(r); return 0; }
    *epoch = PyFloat_AsDouble(r);
    Py_DECREF(r);
    if (*epoch == -1.0 && PyErr_Occurred()) return -1;
    if (shaped && second <= 59) { /* remember the minute if Python vouches for all of it */
        PyObject *base = PyObject_CallMethodObjArgs(run->stamp, S_minute_base, *text, run->now, NULL);
        if (base == NULL) return -1;
        if (base != Py_None) {
            double b = PyFloat_AsDouble(base);
            if (!(b == -1.0 && PyErr_Occurred()) && b + second == *epoch) {
                memcpy(run->minute_key, line, 13);
                run->minute_base = b;
                run->minute_valid = 1;
            }
        }
        Py_DECREF(base);
        if (PyErr_Occurred()) return -1;
    }
    return 1;
}

/* One hit's source: the Source of the host text (NULL and *skip when it is no address). */
static int host_source(Run *run, const char *host, size_t n, Key *k, Source *out, int *skip) {
    Scanner *sc = run->sc;
    uint32_t v4;
    *skip = 0;
    if (parse_ipv4(host, n, &v4)) {
        k->hi = 0; k->lo = v4; k->ver = 4; k->rule = NULL;
        int32_t s = index_find(&sc->aindex, sc->akeys, k);
        if (s < 0) {
            PyObject *text = PyUnicode_DecodeASCII(host, (Py_ssize_t)n, NULL);
            if (text == NULL) return -1;
            PyObject *address = PyObject_CallOneArg(run->resolve, text);
            Py_DECREF(text);
            if (address == NULL) return -1;
            if (address == Py_None) { /* cannot happen for a valid dotted quad; stay exact */
                Py_DECREF(address);
                *skip = 1;
                return 0;
            }
            Key got;
            if (key_of_address(address, &got) < 0 || !(got.ver == 4 && got.lo == v4 && got.hi == 0)) {
                Py_DECREF(address);
                if (!PyErr_Occurred()) PyErr_SetString(PyExc_AssertionError, "IPv4 parse differs");
                return -1;
            }
            s = address_add(sc, k, address);
            Py_DECREF(address);
            if (s < 0) return -1;
        }
        *out = sc->asrc[s];
        return 0;
    }
    /* anything else (IPv6, odd text): Python's parse, through the rule's text cache */
    PyObject *text = PyUnicode_DecodeASCII(host, (Py_ssize_t)n, NULL);
    if (text == NULL) return -1;
    PyObject *address = PyDict_GetItemWithError(run->addresses, text);
    if (address != NULL) {
        Py_INCREF(address);
    } else if (PyErr_Occurred()) {
        Py_DECREF(text);
        return -1;
    } else {
        address = PyObject_CallOneArg(run->resolve, text);
    }
    Py_DECREF(text);
    if (address == NULL) return -1;
    if (address == Py_None) { Py_DECREF(address); *skip = 1; return 0; }
    if (key_of_address(address, k) < 0) { Py_DECREF(address); return -1; }
    int32_t s = index_find(&sc->aindex, sc->akeys, k);
    if (s < 0) s = address_add(sc, k, address);
    Py_DECREF(address);
    if (s < 0) return -1;
    *out = sc->asrc[s];
    return 0;
}

/* The source of a hit that Python matched (the line alone), as a Source. */
static int python_source(Run *run, PyObject *address, Key *k, Source *out) {
    if (key_of_address(address, k) < 0) return -1;
    int32_t s = index_find(&run->sc->aindex, run->sc->akeys, k);
    if (s < 0) s = address_add(run->sc, k, address);
    if (s < 0) return -1;
    *out = run->sc->asrc[s];
    return 0;
}

static int holds_literal(Scanner *sc, const char *line, size_t n) {
    Py_ssize_t count = PyTuple_GET_SIZE(sc->literals);
    if (count == 0) return 1;
    for (Py_ssize_t i = 0; i < count; i++) {
        PyObject *lit = PyTuple_GET_ITEM(sc->literals, i);
        if (memmem(line, n, PyBytes_AS_STRING(lit), (size_t)PyBytes_GET_SIZE(lit)) != NULL) return 1;
    }
    return 0;
}

/* The hit at [start, end) whose regex match ended at `mend`: everything after the match. */
static int one_hit(Run *run, const char *block, size_t start, size_t end, size_t mend) {
    Scanner *sc = run->sc;
    const char *line = block + start;
    size_t n = end - start;
    if (!holds_literal(sc, line, n)) return 0; /* the per-line prefilter would refuse it */
    PyObject *text = NULL;
    Key k;
    Source src;
    int rc = -1;
    if (mend > end) { /* the match ran past its line: Python matches the line alone */
        text = PyUnicode_DecodeASCII(line, (Py_ssize_t)n, NULL);
        if (text == NULL) return -1;
        PyObject *address = PyObject_CallOneArg(run->one_line, text);
        if (address == NULL) goto done;
        if (address == Py_None) { Py_DECREF(address); rc = 0; goto done; }
        int r = python_source(run, address, &k, &src);
        Py_DECREF(address);
        if (r < 0) goto done;
    } else {
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
        Py_ssize_t alt = -1;
        for (Py_ssize_t i = 0; i < sc->nalt; i++) {
            if (ov[2 * sc->alt_group[i]] != PCRE2_UNSET) { alt = i; break; }
        }
        if (alt < 0) { PyErr_SetString(PyExc_AssertionError, "no alternative matched"); return -1; }
        if (run->ignore != Py_None) {
            text = PyUnicode_DecodeASCII(line, (Py_ssize_t)n, NULL);
            if (text == NULL) return -1;
            PyObject *found = PyObject_CallOneArg(run->ignore, text);
            if (found == NULL) goto done;
            int ignored = found != Py_None;
            Py_DECREF(found);
            if (ignored) { run->ignored++; rc = 0; goto done; }
        }
        int32_t h = sc->alt_host[alt];
        if (ov[2 * h] == PCRE2_UNSET) { run->invalid_host++; rc = 0; goto done; }
        int skip;
        if (host_source(run, block + ov[2 * h], ov[2 * h + 1] - ov[2 * h], &k, &src, &skip) < 0) goto done;
        if (skip) { run->invalid_host++; rc = 0; goto done; }
    }
    double epoch;
    int found = line_time(run, line, n, &text, &epoch);
    if (found < 0) goto done;
    if (found == 0) { run->no_timestamp++; epoch = run->now_epoch; }
    run->hits++;
    k.rule = NULL;
    if (tally_add(run, &k, &src, epoch) < 0) goto done;
    if (run->windows != NULL) {
        Py_ssize_t keep = run->windows->evidence;
        PyObject *evidence = text;
        if (evidence == NULL || (Py_ssize_t)n > keep) {
            evidence = PyUnicode_DecodeASCII(line, (Py_ssize_t)n > keep ? keep : (Py_ssize_t)n, NULL);
            if (evidence == NULL) goto done;
        } else {
            Py_INCREF(evidence);
        }
        Key wk = k;
        wk.rule = run->rule;
        PyObject *alert;
        int r = windows_hit(run->windows, &wk, src.address, epoch, evidence, &alert);
        Py_DECREF(evidence);
        if (r < 0) goto done;
        if (alert != NULL) {
            r = PyList_Append(run->alerts, alert);
            Py_DECREF(alert);
            if (r < 0) goto done;
        }
    }
    rc = 0;
done:
    Py_XDECREF(text);
    return rc;
}

static int match_error(int rc) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(rc, msg, sizeof msg);
    PyErr_Format(PyExc_RuntimeError, "PCRE2 match: %s", (char *)msg);
    return -1;
}

/* PCRE2 gave up on a line for its own limits (JIT stack, match or depth limit): that line
 * goes through Python's regex alone; any other error is a bug and raised. */
static int resource_limit(int rc) {
    return rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_MATCHLIMIT ||
           rc == PCRE2_ERROR_DEPTHLIMIT;
}

/* Run the line [start, end) through Python alone (a match error inside the engine). */
static int python_line(Run *run, const char *block, size_t start, size_t end) {
    return one_hit(run, block, start, end, end + 1);
}

/* scan(block, literal_mode, windows, rule, tally, tallied, addresses, resolve, stamp, now,
 *      now_epoch, ignore, one_line) -> (hits, ignored, invalid_host, no_timestamp, alerts)
 *
 * block: ASCII bytes, "\n" + lines joined by "\n" (no CR, no NUL). literal_mode: visit only
 * lines holding the (single) prefilter literal and match each at its start. */
static PyObject *scanner_scan(Scanner *sc, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 13 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan(block: bytes, literal_mode, windows, rule, tally, "
                        "tallied, addresses, resolve, stamp, now, now_epoch, ignore, one_line)");
        return NULL;
    }
    Run run = {0};
    run.sc = sc;
    int literal_mode = PyObject_IsTrue(args[1]);
    if (args[2] != Py_None) {
        if (!PyObject_TypeCheck(args[2], &WindowsType)) { PyErr_SetString(PyExc_TypeError, "windows"); return NULL; }
        run.windows = (Windows *)args[2];
    }
    run.rule = args[3];
    run.tally = args[4] == Py_None ? NULL : args[4];
    if (run.tally != NULL && !PyDict_Check(run.tally)) { PyErr_SetString(PyExc_TypeError, "tally"); return NULL; }
    if (!PyDict_Check(args[6])) { PyErr_SetString(PyExc_TypeError, "addresses"); return NULL; }
    run.tallied = args[5]; run.addresses = args[6]; run.resolve = args[7]; run.stamp = args[8];
    run.now = args[9];
    run.now_epoch = PyFloat_AsDouble(args[10]);
    if (run.now_epoch == -1.0 && PyErr_Occurred()) return NULL;
    run.ignore = args[11]; run.one_line = args[12];
    if (literal_mode && PyTuple_GET_SIZE(sc->literals) != 1) {
        PyErr_SetString(PyExc_ValueError, "literal mode needs exactly one literal");
        return NULL;
    }
    if (sc->busy) {
        PyErr_SetString(PyExc_RuntimeError, "Scanner.scan is not reentrant (one detector, one thread)");
        return NULL;
    }
    run.alerts = PyList_New(0);
    if (run.alerts == NULL) return NULL;
    sc->busy = 1;

    const char *block = PyBytes_AS_STRING(args[0]);
    size_t size = (size_t)PyBytes_GET_SIZE(args[0]);
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(sc->md);
    int failed = 0;
    size_t pos = 0;
    if (!literal_mode) {
        while (pos < size) {
            int rc = pcre2_jit_match(sc->scan, (PCRE2_SPTR)block, size, pos, 0, sc->md, sc->mctx);
            if (rc == PCRE2_ERROR_NOMATCH) break;
            size_t start, end;
            const char *nl;
            if (rc < 0) { /* e.g. the JIT stack ran out: the line at pos goes through Python */
                if (!resource_limit(rc)) {
                    failed = match_error(rc);
                    break;
                }
                start = pos + 1;
                if (start > size) break;
                nl = memchr(block + start, '\n', size - start);
                end = nl ? (size_t)(nl - block) : size;
                if (python_line(&run, block, start, end) < 0) { failed = 1; break; }
                pos = end;
                continue;
            }
            start = ov[0] + 1;
            nl = memchr(block + start, '\n', size - start);
            end = nl ? (size_t)(nl - block) : size;
            size_t mend = ov[1];
            pos = end;
            if (one_hit(&run, block, start, end, mend) < 0) { failed = 1; break; }
        }
    } else {
        PyObject *lit = PyTuple_GET_ITEM(sc->literals, 0);
        const char *needle = PyBytes_AS_STRING(lit);
        size_t nlen = (size_t)PyBytes_GET_SIZE(lit);
        while (pos < size) {
            const char *hit = memmem(block + pos, size - pos, needle, nlen);
            if (hit == NULL) break;
            size_t at = (size_t)(hit - block);
            size_t start = at;
            while (start > 0 && block[start - 1] != '\n') start--;
            const char *nl = memchr(block + at, '\n', size - at);
            size_t end = nl ? (size_t)(nl - block) : size;
            pos = end;
            if (start == 0) continue; /* cannot happen: the block starts with "\n" */
            int rc = pcre2_jit_match(sc->anchored, (PCRE2_SPTR)block, size, start - 1, 0, sc->md, sc->mctx);
            if (rc == PCRE2_ERROR_NOMATCH) continue;
            if (rc < 0) {
                if (!resource_limit(rc)) {
                    failed = match_error(rc);
                    break;
                }
                if (python_line(&run, block, start, end) < 0) { failed = 1; break; }
                continue;
            }
            if (one_hit(&run, block, start, end, ov[1]) < 0) { failed = 1; break; }
        }
    }
    if (tally_flush(&run) < 0) failed = 1;
    sc->busy = 0;
    if (failed) { Py_DECREF(run.alerts); return NULL; }
    return Py_BuildValue("(nnnnN)", run.hits, run.ignored, run.invalid_host, run.no_timestamp, run.alerts);
}

static PyMethodDef scanner_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))scanner_scan, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shieldwall.detect._native.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)scanner_init,
    .tp_dealloc = (destructor)scanner_dealloc,
    .tp_methods = scanner_methods,
    .tp_doc = "one rule's block regex (PCRE2, JIT) and the per-hit work (see native.py)",
};

/* ------------------------------------------------------------------ module */

/* search(pattern, subject, pos) -> None | tuple of (start, end) per group (-1 unset):
 * the translated regex alone, for tests that compare it with Python's re. */
static PyObject *native_search(PyObject *Py_UNUSED(m), PyObject *args) {
    PyObject *pattern;
    const char *subject;
    Py_ssize_t n, pos;
    if (!PyArg_ParseTuple(args, "Uy#n", &pattern, &subject, &n, &pos)) return NULL;
    pcre2_code *code;
    if (compile_pattern(pattern, PCRE2_MULTILINE, &code) < 0) return NULL;
    pcre2_match_data *md = pcre2_match_data_create_from_pattern(code, NULL);
    if (md == NULL) { pcre2_code_free(code); return PyErr_NoMemory(); }
    int rc = pcre2_match(code, (PCRE2_SPTR)subject, (PCRE2_SIZE)n, (PCRE2_SIZE)pos, 0, md, NULL);
    PyObject *out;
    if (rc == PCRE2_ERROR_NOMATCH) {
        out = Py_NewRef(Py_None);
    } else if (rc < 0) {
        match_error(rc);
        out = NULL;
    } else {
        uint32_t groups = pcre2_get_ovector_count(md);
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        out = PyTuple_New(groups);
        for (uint32_t i = 0; out != NULL && i < groups; i++) {
            Py_ssize_t a = i < (uint32_t)rc && ov[2 * i] != PCRE2_UNSET ? (Py_ssize_t)ov[2 * i] : -1;
            Py_ssize_t b = a >= 0 ? (Py_ssize_t)ov[2 * i + 1] : -1;
            PyObject *span = Py_BuildValue("(nn)", a, b);
            if (span == NULL) { Py_CLEAR(out); break; }
            PyTuple_SET_ITEM(out, i, span);
        }
    }
    pcre2_match_data_free(md);
    pcre2_code_free(code);
    return out;
}

static PyMethodDef module_methods[] = {
    {"search", native_search, METH_VARARGS, "the translated regex alone (tests)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "shieldwall.detect._native",
    "The detector's hot path in C (see shieldwall/detect/native.py).", -1, module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&WindowsType) < 0 || PyType_Ready(&ScannerType) < 0) return NULL;
    S_ip = PyUnicode_InternFromString("_ip");
    S_version = PyUnicode_InternFromString("_version");
    S_epoch = PyUnicode_InternFromString("epoch");
    S_minute_base = PyUnicode_InternFromString("minute_base");
    if (!S_ip || !S_version || !S_epoch || !S_minute_base) return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL) return NULL;
    Py_INCREF(&WindowsType);
    Py_INCREF(&ScannerType);
    if (PyModule_AddObject(m, "Windows", (PyObject *)&WindowsType) < 0 ||
        PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    PyObject *version = PyUnicode_FromFormat("%d.%d", PCRE2_MAJOR, PCRE2_MINOR);
    if (version == NULL || PyModule_AddObject(m, "PCRE2_VERSION", version) < 0) {
        Py_XDECREF(version);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
