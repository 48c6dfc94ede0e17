/*
 * shieldwall.detect._native — the detector's hot path in C (optional; see native.py).
 *
 * Four types:
 *
 *   Windows       fail2ban's window buckets (maxretry hits within findtime), the same state
 *                 and the same answers as the pure-Python BucketSet: LRU eviction beyond
 *                 max_tracked, out-of-order hits sorted in, touched-key tracking, export and
 *                 restore.
 *   Scanner       one rule's block regex compiled by PCRE2 (JIT), run over a block of ASCII
 *                 log lines; per hit it checks the prefilter, parses the source (IPv4 in C,
 *                 anything else through Python), dates the line (a per-minute syslog stamp
 *                 cache, misses through Python), counts the hit per source and pours it into
 *                 a Windows.
 *   FailureCache  fail2ban's multi-line failure cache (<F-MLFID>), shared by both paths.
 *   Filter        a fail2ban filter (maxlines = 1): the dialect engine's evaluation of each
 *                 line of an ASCII block, then the same per-hit work as a Scanner.
 *
 * The Python layer (native.py, detector.py) decides when a block may take this path and
 * translates the rule's regex to PCRE2 syntax with Python's semantics; anything this file
 * cannot decide exactly (a match running past its line, a host that is not a plain IPv4
 * address, a stamp not cached) is handed back to Python for that one line.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
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
static PyObject *IPv4Address, *Four; /* ipaddress.IPv4Address, the int 4 */

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
    double floor;       /* hits before it are history: counted in `stale`, never bucketed */
    Py_ssize_t stale;
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
    if (s >= 0) return 0; /* the source it holds is the same address */
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
    if (epoch < w->floor) {
        w->stale++;
        return 0;
    }
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
    w->floor = -Py_HUGE_VAL;
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
static int append_pair(PyObject *out, Windows *Py_UNUSED(w), const Key *k, PyObject *source) {
    PyObject *pair = PyTuple_Pack(2, k->rule, source);
    if (pair == NULL) return -1;
    int rc = PyList_Append(out, pair);
    Py_DECREF(pair);
    return rc;
}

typedef int (*emit_fn)(PyObject *out, Windows *w, const Key *k, PyObject *source);

/* emit() every bucket touched since the last call (every live one at the first call, which
 * starts the tracking) into a new list, then forget them */
static PyObject *collect_touched(Windows *w, emit_fn emit) {
    PyObject *out = PyList_New(0);
    if (out == NULL) return NULL;
    if (!w->tracking) {
        touched_clear(w);
        w->tracking = 1;
        for (int32_t s = w->head; s >= 0; s = w->next[s]) {
            if (emit(out, w, &w->keys[s], w->sources[s]) < 0) { Py_DECREF(out); return NULL; }
        }
        return out;
    }
    for (Py_ssize_t i = 0; i < w->tlen; i++) {
        if (emit(out, w, &w->tkeys[i], w->tsources[i]) < 0) { Py_DECREF(out); return NULL; }
    }
    touched_clear(w);
    return out;
}

static PyObject *windows_py_touched(Windows *w, PyObject *Py_UNUSED(ignored)) {
    return collect_touched(w, append_pair);
}

/* [rule, source as text, {"timestamps": [...], "evidence": [...]} or None (gone)]: one
 * changed bucket as the agent's state stores it (an IPv4 source's text made here) */
static PyObject *windows_row(Windows *w, const Key *k, PyObject *source) {
    PyObject *text;
    if (k->ver == 4) {
        char buf[16];
        uint32_t v = (uint32_t)k->lo;
        int n = snprintf(buf, sizeof buf, "%u.%u.%u.%u", v >> 24, (v >> 16) & 255u,
                         (v >> 8) & 255u, v & 255u);
        text = PyUnicode_FromStringAndSize(buf, n);
    } else {
        text = PyObject_Str(source);
    }
    if (text == NULL) return NULL;
    int32_t s = index_find(&w->index, w->keys, k);
    PyObject *data;
    if (s < 0) {
        data = Py_None;
        Py_INCREF(data);
    } else {
        int32_t n = w->count[s];
        PyObject *t = PyList_New(n), *l = PyList_New(n);
        if (t == NULL || l == NULL) { Py_XDECREF(t); Py_XDECREF(l); Py_DECREF(text); return NULL; }
        for (int32_t i = 0; i < n; i++) {
            PyObject *f = PyFloat_FromDouble(w->times[(size_t)s * w->maxretry + i]);
            if (f == NULL) { Py_DECREF(t); Py_DECREF(l); Py_DECREF(text); return NULL; }
            PyList_SET_ITEM(t, i, f);
            PyObject *line = w->lines[(size_t)s * w->maxretry + i];
            Py_INCREF(line);
            PyList_SET_ITEM(l, i, line);
        }
        data = Py_BuildValue("{sNsN}", "timestamps", t, "evidence", l);
        if (data == NULL) { Py_DECREF(text); return NULL; }
    }
    return Py_BuildValue("[ONN]", k->rule, text, data);
}

static int append_row(PyObject *out, Windows *w, const Key *k, PyObject *source) {
    PyObject *row = windows_row(w, k, source);
    if (row == NULL) return -1;
    int rc = PyList_Append(out, row);
    Py_DECREF(row);
    return rc;
}

/* take_rows() -> [[rule, source text, data or None], ...]: the buckets touched() would
 * name, each as the agent's state stores it (one call for the whole batch) */
static PyObject *windows_py_take_rows(Windows *w, PyObject *Py_UNUSED(ignored)) {
    return collect_touched(w, append_row);
}

/* take_counts() -> (evicted, touched_overflow, stale) since the last call */
static PyObject *windows_py_take_counts(Windows *w, PyObject *Py_UNUSED(ignored)) {
    PyObject *r = Py_BuildValue("(nnn)", w->evicted, w->touched_overflow, w->stale);
    w->evicted = w->touched_overflow = w->stale = 0;
    return r;
}

/* set_floor(epoch): hits before it are history from now on (-inf: none is) */
static PyObject *windows_py_set_floor(Windows *w, PyObject *arg) {
    double floor = PyFloat_AsDouble(arg);
    if (floor == -1.0 && PyErr_Occurred()) return NULL;
    w->floor = floor;
    Py_RETURN_NONE;
}

static Py_ssize_t windows_len(Windows *w) { return w->len; }

static PyMethodDef windows_methods[] = {
    {"hit", (PyCFunction)(void (*)(void))windows_py_hit, METH_FASTCALL, NULL},
    {"get", (PyCFunction)(void (*)(void))windows_py_get, METH_FASTCALL, NULL},
    {"put", (PyCFunction)(void (*)(void))windows_py_put, METH_FASTCALL, NULL},
    {"drop", (PyCFunction)(void (*)(void))windows_py_drop, METH_FASTCALL, NULL},
    {"prune", (PyCFunction)windows_py_prune, METH_O, NULL},
    {"touched", (PyCFunction)windows_py_touched, METH_NOARGS, NULL},
    {"take_rows", (PyCFunction)windows_py_take_rows, METH_NOARGS, NULL},
    {"take_counts", (PyCFunction)windows_py_take_counts, METH_NOARGS, NULL},
    {"set_floor", (PyCFunction)windows_py_set_floor, METH_O, NULL},
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

static int compile_pattern_jit(PyObject *text, uint32_t options, uint32_t jit, pcre2_code **out);

static int compile_pattern(PyObject *text, uint32_t options, pcre2_code **out) {
    return compile_pattern_jit(text, options, PCRE2_JIT_COMPLETE, out);
}

/* `jit`: the JIT modes (PCRE2_JIT_COMPLETE, and PCRE2_JIT_PARTIAL_HARD for the date probe) */
static int compile_pattern_jit(PyObject *text, uint32_t options, uint32_t jit, pcre2_code **out) {
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
    if (pcre2_jit_compile(code, jit) != 0) {
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

/* remember an address with its ip and version (both stolen); returns its slot, or -1 */
static int32_t address_put(Scanner *sc, const Key *k, PyObject *address, PyObject *ip,
                           PyObject *version) {
    if (sc->alen >= ADDRESS_CACHE) { /* full: start again (the tally holds its own refs) */
        sources_release(sc->asrc, sc->alen);
        sc->alen = 0;
        memset(sc->aindex.cells, 0xff, (sc->aindex.mask + 1) * sizeof(int32_t));
    }
    if (sc->alen == sc->acap && address_grow(sc) < 0) {
        Py_DECREF(ip);
        Py_DECREF(version);
        return -1;
    }
    int32_t s = (int32_t)sc->alen++;
    sc->akeys[s] = *k;
    Py_INCREF(address);
    sc->asrc[s].address = address;
    sc->asrc[s].ip = ip;
    sc->asrc[s].version = version;
    index_put(&sc->aindex, sc->akeys, s);
    return s;
}

/* remember an address (its ip and version read from it); returns its slot, or -1 */
static int32_t address_add(Scanner *sc, const Key *k, PyObject *address) {
    PyObject *ip = PyObject_GetAttr(address, S_ip);
    if (ip == NULL) return -1;
    PyObject *version = PyObject_GetAttr(address, S_version);
    if (version == NULL) { Py_DECREF(ip); return -1; }
    return address_put(sc, k, address, ip, version);
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

/* Python's parse of the text [s, s + n) through the rule's text cache (`addresses`, else
 * `resolve`): a new reference to the address or None, NULL on error. UTF-8: a fail2ban
 * filter's failure cache may hold a value the Python path found. */
static PyObject *python_address(Run *run, const char *s, size_t n) {
    PyObject *text = PyUnicode_DecodeUTF8(s, (Py_ssize_t)n, NULL);
    if (text == NULL) return NULL;
    PyObject *address = PyDict_GetItemWithError(run->addresses, text);
    if (address != NULL) Py_INCREF(address);
    else if (!PyErr_Occurred()) address = PyObject_CallOneArg(run->resolve, text);
    Py_DECREF(text);
    return address;
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
            /* ipaddress.IPv4Address of the int: what parse_address gives for this text (a
             * dotted quad parse_ipv4 accepts is one ipaddress accepts, with the same value:
             * tests/detect/test_native.py), without parsing the text again */
            PyObject *ip = PyLong_FromUnsignedLong(v4);
            if (ip == NULL) return -1;
            PyObject *address = PyObject_CallOneArg(IPv4Address, ip);
            if (address == NULL) { Py_DECREF(ip); return -1; }
            s = address_put(sc, k, address, ip, Py_NewRef(Four));
            Py_DECREF(address);
            if (s < 0) return -1;
        }
        *out = sc->asrc[s];
        return 0;
    }
    /* anything else (IPv6, odd text): Python's parse */
    PyObject *address = python_address(run, host, n);
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

/* tally and window bucket of one hit */
static int record_hit(Run *run, Key *k, const Source *src, double epoch, const char *line,
                      size_t n, PyObject *text) {
    run->hits++;
    k->rule = NULL;
    if (tally_add(run, k, src, epoch) < 0) return -1;
    if (run->windows == NULL) return 0;
    Py_ssize_t keep = run->windows->evidence;
    PyObject *evidence = text;
    if (evidence == NULL || (Py_ssize_t)n > keep) {
        evidence = PyUnicode_DecodeASCII(line, (Py_ssize_t)n > keep ? keep : (Py_ssize_t)n, NULL);
        if (evidence == NULL) return -1;
    } else {
        Py_INCREF(evidence);
    }
    Key wk = *k;
    wk.rule = run->rule;
    PyObject *alert;
    int r = windows_hit(run->windows, &wk, src->address, epoch, evidence, &alert);
    Py_DECREF(evidence);
    if (r < 0) return -1;
    if (alert != NULL) {
        r = PyList_Append(run->alerts, alert);
        Py_DECREF(alert);
    }
    return r;
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
    rc = record_hit(run, &k, &src, epoch, line, n, text);
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

/* ------------------------------------------------------------------ FailureCache */

/* fail2ban's multi-line failure cache (multiline.py FailureCache), keyed by <F-MLFID>: the
 * same semantics over slot arrays (one value per group name of the filter; NULL = None).
 * Values are UTF-8 copies. Python's merge() takes and returns dicts (the engine's line-by-line
 * path); the C filter merges slot arrays directly. */

typedef struct {
    const char *p; /* NULL: None */
    Py_ssize_t n;
} Val;

static inline int val_true(Val v) { return v.p != NULL && v.n > 0; }

typedef struct CEntry {
    char *id;     /* in the entry's own block */
    Py_ssize_t idn;
    uint64_t hash;
    Val *vals;    /* nslots, in the entry's block; each value in [store, store_end] (the first
                   * values, copied with the entry) or an owned heap copy */
    const char *store, *store_end;
    Val *users;   /* distinct user names, owned copies */
    Py_ssize_t nusers, capusers;
    int pending;
    double expires;
    struct CEntry *prev, *next; /* first in, first out */
    struct CEntry *chain;       /* hash bucket */
} CEntry;

typedef struct {
    PyObject_HEAD
    PyObject *names; /* tuple of str */
    PyObject *index; /* dict name -> slot */
    Py_ssize_t nslots, size;
    double max_age;
    CEntry *head, *tail;
    CEntry **buckets;
    size_t bmask;
    Py_ssize_t len;
    CEntry *dropped; /* an entry forgotten by the last merge (its values are still read) */
    Val *scratch;    /* the result when the line's groups are not cached */
    int s_user, s_nofail, s_mlfgained, s_mlfforget;
} FailureCache;

static uint64_t bytes_hash(const char *p, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (Py_ssize_t i = 0; i < n; i++) { h ^= (unsigned char)p[i]; h *= 1099511628211ULL; }
    return mix64(h);
}

static char *dup_bytes(const char *p, Py_ssize_t n) {
    char *out = PyMem_Malloc(n > 0 ? (size_t)n : 1);
    if (out == NULL) { PyErr_NoMemory(); return NULL; }
    if (n > 0) memcpy(out, p, (size_t)n);
    return out;
}

/* a value of entry e dropped (a heap copy freed; the entry's block keeps its bytes). The
 * block has one byte past store_end, so no other allocation starts at store_end. */
static void entry_val_free(const CEntry *e, Val *v) {
    if (v->p != NULL && !(v->p >= e->store && v->p <= e->store_end)) PyMem_Free((void *)v->p);
    v->p = NULL;
}

static int entry_val_set(const CEntry *e, Val *dst, Val src) {
    char *copy = NULL;
    if (src.p != NULL && (copy = dup_bytes(src.p, src.n)) == NULL) return -1;
    entry_val_free(e, dst);
    dst->p = copy;
    dst->n = src.p != NULL ? src.n : 0;
    return 0;
}

/* a new entry: one block with its values, its id and the bytes of the values `in` */
static CEntry *entry_new(FailureCache *fc, const char *id, Py_ssize_t idn, const Val *in) {
    size_t nslots = (size_t)fc->nslots, need = nslots * sizeof(Val) + (size_t)idn + 1;
    for (size_t i = 0; i < nslots; i++)
        if (in[i].p != NULL) need += (size_t)in[i].n;
    CEntry *e = PyMem_Calloc(1, sizeof(CEntry) + need);
    if (e == NULL) { PyErr_NoMemory(); return NULL; }
    e->vals = (Val *)(e + 1);
    char *w = (char *)(e->vals + nslots);
    e->id = w;
    if (idn > 0) memcpy(w, id, (size_t)idn);
    w += idn;
    e->idn = idn;
    e->store = w;
    for (size_t i = 0; i < nslots; i++) {
        if (in[i].p == NULL) continue;
        if (in[i].n > 0) memcpy(w, in[i].p, (size_t)in[i].n);
        e->vals[i].p = w;
        e->vals[i].n = in[i].n;
        w += in[i].n;
    }
    e->store_end = w;
    return e;
}

static void entry_free(FailureCache *fc, CEntry *e) {
    if (e == NULL) return;
    for (Py_ssize_t i = 0; i < fc->nslots; i++) entry_val_free(e, &e->vals[i]);
    for (Py_ssize_t i = 0; i < e->nusers; i++) PyMem_Free((void *)e->users[i].p);
    PyMem_Free(e->users);
    PyMem_Free(e);
}

static CEntry *cache_find(FailureCache *fc, const char *id, Py_ssize_t n, uint64_t h) {
    for (CEntry *e = fc->buckets[h & fc->bmask]; e != NULL; e = e->chain)
        if (e->hash == h && e->idn == n && memcmp(e->id, id, (size_t)n) == 0) return e;
    return NULL;
}

static void cache_unlink(FailureCache *fc, CEntry *e) {
    CEntry **at = &fc->buckets[e->hash & fc->bmask];
    while (*at != e) at = &(*at)->chain;
    *at = e->chain;
    if (e->prev) e->prev->next = e->next; else fc->head = e->next;
    if (e->next) e->next->prev = e->prev; else fc->tail = e->prev;
    e->prev = e->next = e->chain = NULL;
    fc->len--;
}

static void cache_append(FailureCache *fc, CEntry *e) {
    CEntry **at = &fc->buckets[e->hash & fc->bmask];
    e->chain = *at;
    *at = e;
    e->prev = fc->tail;
    e->next = NULL;
    if (fc->tail) fc->tail->next = e; else fc->head = e;
    fc->tail = e;
    fc->len++;
}

static void cache_clear(FailureCache *fc) {
    while (fc->head != NULL) {
        CEntry *e = fc->head;
        cache_unlink(fc, e);
        entry_free(fc, e);
    }
    entry_free(fc, fc->dropped);
    fc->dropped = NULL;
}

/* add a user name to the entry's set; the set's size */
static int entry_add_user(CEntry *e, Val user) {
    for (Py_ssize_t i = 0; i < e->nusers; i++)
        if (e->users[i].n == user.n && memcmp(e->users[i].p, user.p, (size_t)user.n) == 0) return 0;
    if (e->nusers == e->capusers) {
        Py_ssize_t cap = e->capusers ? e->capusers * 2 : 2;
        Val *u = PyMem_Realloc(e->users, (size_t)cap * sizeof(Val));
        if (u == NULL) { PyErr_NoMemory(); return -1; }
        e->users = u;
        e->capusers = cap;
    }
    char *copy = dup_bytes(user.p, user.n);
    if (copy == NULL) return -1;
    e->users[e->nusers].p = copy;
    e->users[e->nusers].n = user.n;
    e->nusers++;
    return 0;
}

/* merge the groups `in` (nslots values, modified) of one line into failure `id`.
 * *out: the merged values (the entry's own storage, or `in` when nothing is cached), valid
 * until the next merge. now: NAN for None. Returns 0, or -1 with an exception. */
static int cache_merge(FailureCache *fc, const char *id, Py_ssize_t idn, Val *in, double now,
                       Val **out, Py_ssize_t *nusers_out) {
    entry_free(fc, fc->dropped);
    fc->dropped = NULL;
    int has_now = !isnan(now);
    int gained = fc->s_mlfgained >= 0 && val_true(in[fc->s_mlfgained]);
    if (gained && !(fc->s_nofail >= 0 && val_true(in[fc->s_nofail])) && fc->s_nofail >= 0)
        in[fc->s_nofail] = in[fc->s_mlfgained];
    int forget = fc->s_mlfforget >= 0 && val_true(in[fc->s_mlfforget]);
    if (fc->s_mlfforget >= 0) in[fc->s_mlfforget].p = NULL;
    uint64_t h = bytes_hash(id, idn);
    CEntry *e = cache_find(fc, id, idn, h);
    if (e != NULL && has_now && e->expires <= now) { /* expired */
        cache_unlink(fc, e);
        entry_free(fc, e);
        e = NULL;
    }
    Py_ssize_t users = -1; /* None: this line named no user */
    Val user = fc->s_user >= 0 ? in[fc->s_user] : (Val){NULL, 0};
    Val *result;
    int *pending = NULL;
    if (e != NULL) {
        if (val_true(user)) {
            if (entry_add_user(e, user) < 0) return -1;
            users = e->nusers;
        }
        if (fc->s_nofail >= 0) entry_val_free(e, &e->vals[fc->s_nofail]);
        if (fc->s_mlfgained >= 0) entry_val_free(e, &e->vals[fc->s_mlfgained]);
        if (gained) e->pending = 0;
        for (Py_ssize_t i = 0; i < fc->nslots; i++)
            if (in[i].p != NULL && entry_val_set(e, &e->vals[i], in[i]) < 0) return -1;
        result = e->vals;
        pending = &e->pending;
        *nusers_out = e->nusers;
        if (forget) {
            cache_unlink(fc, e);
            fc->dropped = e;
        }
    } else if (!forget) {
        e = entry_new(fc, id, idn, in);
        if (e == NULL) return -1;
        e->hash = h;
        if (val_true(user)) {
            if (entry_add_user(e, user) < 0) { entry_free(fc, e); return -1; }
            users = e->nusers;
        }
        /* fail2ban's Cache.set: when full, drop from the front the expired ones and one more */
        if (fc->len >= fc->size) {
            while (fc->head != NULL) {
                CEntry *old = fc->head;
                int live = !has_now || old->expires > now;
                cache_unlink(fc, old);
                entry_free(fc, old);
                if (live && fc->len < fc->size) break;
            }
        }
        e->expires = has_now ? now + fc->max_age : INFINITY;
        cache_append(fc, e);
        result = e->vals;
        pending = &e->pending;
        *nusers_out = e->nusers;
    } else {
        memcpy(fc->scratch, in, (size_t)fc->nslots * sizeof(Val));
        result = fc->scratch;
        *nusers_out = 0;
    }
    int was_pending = pending != NULL && *pending;
    if (pending != NULL) *pending = 0;
    if (was_pending || users > 1) { /* result is e's values (pending is set only then) */
        if (fc->s_nofail >= 0) entry_val_free(e, &result[fc->s_nofail]);
        if (fc->s_mlfgained >= 0) entry_val_free(e, &result[fc->s_mlfgained]);
    }
    *out = result;
    return 0;
}

static void cache_pending(FailureCache *fc, const char *id, Py_ssize_t idn) {
    CEntry *e = cache_find(fc, id, idn, bytes_hash(id, idn));
    if (e != NULL) e->pending = 1;
}

static int slot_of(PyObject *index, const char *name) {
    PyObject *v = PyDict_GetItemString(index, name);
    return v == NULL ? -1 : (int)PyLong_AsLong(v);
}

/* FailureCache(names, size=100, max_age=300.0) */
static int fcache_init(FailureCache *fc, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"names", "size", "max_age", NULL};
    PyObject *names;
    Py_ssize_t size = 100;
    double max_age = 300.0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!|nd", kwlist, &PyTuple_Type, &names, &size, &max_age))
        return -1;
    if (fc->names != NULL) { PyErr_SetString(PyExc_RuntimeError, "already initialised"); return -1; }
    if (size < 1) { PyErr_SetString(PyExc_ValueError, "size must be at least 1"); return -1; }
    fc->index = PyDict_New();
    if (fc->index == NULL) return -1;
    fc->nslots = PyTuple_GET_SIZE(names);
    for (Py_ssize_t i = 0; i < fc->nslots; i++) {
        PyObject *name = PyTuple_GET_ITEM(names, i);
        PyObject *num = PyLong_FromSsize_t(i);
        if (!PyUnicode_Check(name) || num == NULL || PyDict_SetItem(fc->index, name, num) < 0) {
            Py_XDECREF(num);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "names must be str");
            return -1;
        }
        Py_DECREF(num);
    }
    Py_INCREF(names);
    fc->names = names;
    fc->size = size;
    fc->max_age = max_age;
    size_t nb = 16;
    while (nb < (size_t)size * 2 && nb < (1u << 20)) nb <<= 1;
    fc->buckets = PyMem_Calloc(nb, sizeof(CEntry *));
    fc->scratch = PyMem_Calloc((size_t)(fc->nslots ? fc->nslots : 1), sizeof(Val));
    if (fc->buckets == NULL || fc->scratch == NULL) { PyErr_NoMemory(); return -1; }
    fc->bmask = nb - 1;
    fc->s_user = slot_of(fc->index, "user");
    fc->s_nofail = slot_of(fc->index, "nofail");
    fc->s_mlfgained = slot_of(fc->index, "mlfgained");
    fc->s_mlfforget = slot_of(fc->index, "mlfforget");
    if (fc->s_mlfgained >= 0 && fc->s_nofail < 0) { /* a success sets nofail */
        PyErr_SetString(PyExc_ValueError, "names: mlfgained needs nofail");
        return -1;
    }
    return 0;
}

static void fcache_dealloc(FailureCache *fc) {
    if (fc->buckets != NULL) cache_clear(fc);
    PyMem_Free(fc->buckets);
    PyMem_Free(fc->scratch);
    Py_XDECREF(fc->names);
    Py_XDECREF(fc->index);
    Py_TYPE(fc)->tp_free((PyObject *)fc);
}

static int fcache_ready(FailureCache *fc) {
    if (fc->names == NULL) { PyErr_SetString(PyExc_RuntimeError, "FailureCache not initialised"); return -1; }
    return 0;
}

static double now_of(PyObject *now) {
    if (now == Py_None) return NAN;
    return PyFloat_AsDouble(now);
}

/* merge(mlfid, groups, now) -> dict, as multiline.FailureCache.merge */
static PyObject *fcache_py_merge(FailureCache *fc, PyObject *const *args, Py_ssize_t nargs) {
    if (fcache_ready(fc) < 0) return NULL;
    if (nargs != 3 || !PyUnicode_Check(args[0]) || !PyDict_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "merge(mlfid: str, groups: dict, now: float | None)");
        return NULL;
    }
    double now = now_of(args[2]);
    if (now == -1.0 && PyErr_Occurred()) return NULL;
    Py_ssize_t idn;
    const char *id = PyUnicode_AsUTF8AndSize(args[0], &idn);
    if (id == NULL) return NULL;
    Val *in = PyMem_Calloc((size_t)(fc->nslots ? fc->nslots : 1), sizeof(Val));
    if (in == NULL) return PyErr_NoMemory();
    PyObject *key, *value, *out = NULL;
    Py_ssize_t pos = 0;
    while (PyDict_Next(args[1], &pos, &key, &value)) {
        PyObject *slot = PyDict_GetItemWithError(fc->index, key);
        if (slot == NULL) {
            if (!PyErr_Occurred()) PyErr_Format(PyExc_KeyError, "not a group of this filter: %R", key);
            goto done;
        }
        if (value == Py_None) continue;
        if (!PyUnicode_Check(value)) { PyErr_Format(PyExc_TypeError, "group %R: a str or None", key); goto done; }
        Py_ssize_t i = PyLong_AsSsize_t(slot);
        in[i].p = PyUnicode_AsUTF8AndSize(value, &in[i].n);
        if (in[i].p == NULL) goto done;
    }
    Val *merged;
    Py_ssize_t nusers;
    if (cache_merge(fc, id, idn, in, now, &merged, &nusers) < 0) goto done;
    out = PyDict_New();
    if (out == NULL) goto done;
    for (Py_ssize_t i = 0; i < fc->nslots; i++) {
        if (merged[i].p == NULL) continue;
        PyObject *v = PyUnicode_DecodeUTF8(merged[i].p, merged[i].n, NULL);
        if (v == NULL || PyDict_SetItem(out, PyTuple_GET_ITEM(fc->names, i), v) < 0) { Py_XDECREF(v); Py_CLEAR(out); goto done; }
        Py_DECREF(v);
    }
    if (nusers > 0) {
        CEntry *e = fc->dropped != NULL ? fc->dropped : cache_find(fc, id, idn, bytes_hash(id, idn));
        PyObject *set = PySet_New(NULL);
        if (set == NULL || e == NULL) { Py_XDECREF(set); Py_CLEAR(out); if (!PyErr_Occurred()) PyErr_SetString(PyExc_AssertionError, "users without entry"); goto done; }
        for (Py_ssize_t i = 0; i < e->nusers; i++) {
            PyObject *u = PyUnicode_DecodeUTF8(e->users[i].p, e->users[i].n, NULL);
            if (u == NULL || PySet_Add(set, u) < 0) { Py_XDECREF(u); Py_DECREF(set); Py_CLEAR(out); goto done; }
            Py_DECREF(u);
        }
        if (PyDict_SetItemString(out, "users", set) < 0) Py_CLEAR(out);
        Py_DECREF(set);
    }
done:
    PyMem_Free(in);
    return out;
}

static PyObject *fcache_py_pending(FailureCache *fc, PyObject *arg) {
    if (fcache_ready(fc) < 0) return NULL;
    Py_ssize_t n;
    const char *id = PyUnicode_AsUTF8AndSize(arg, &n);
    if (id == NULL) return NULL;
    cache_pending(fc, id, n);
    Py_RETURN_NONE;
}

static PyObject *fcache_py_clear(FailureCache *fc, PyObject *Py_UNUSED(ignored)) {
    if (fcache_ready(fc) < 0) return NULL;
    cache_clear(fc);
    Py_RETURN_NONE;
}

static Py_ssize_t fcache_len(FailureCache *fc) { return fc->len; }

static PyMethodDef fcache_methods[] = {
    {"merge", (PyCFunction)(void (*)(void))fcache_py_merge, METH_FASTCALL, NULL},
    {"pending", (PyCFunction)fcache_py_pending, METH_O, NULL},
    {"clear", (PyCFunction)fcache_py_clear, METH_NOARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods fcache_as_sequence = {.sq_length = (lenfunc)fcache_len};

static PyTypeObject FailureCacheType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shieldwall.detect._native.FailureCache",
    .tp_basicsize = sizeof(FailureCache),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)fcache_init,
    .tp_dealloc = (destructor)fcache_dealloc,
    .tp_methods = fcache_methods,
    .tp_as_sequence = &fcache_as_sequence,
    .tp_doc = "fail2ban's multi-line failure cache (multiline.FailureCache) over slot arrays",
};

/* ------------------------------------------------------------------ Filter */

/* A fail2ban filter (dialect = "fail2ban", maxlines = 1) run over a block of ASCII lines:
 * engine.py's _evaluate in C. Per line: the date (the templates in order, as
 * dates.DateFinder.find), cut out; ignoreregex; prefregex and its <F-CONTENT>; the failregex
 * in order, each skipped when the text's first byte is not in its map (or, when some have no
 * map, the union says which one to start from); the groups merged (alternates, the
 * <F-MLFID> FailureCache); <F-NOFAIL>; the source. Every regex is PCRE2 (JIT), translated by
 * native.py with the meaning Python's regex engines give it on ASCII text.
 *
 * A line goes to Python alone (hooks.line) when C cannot decide it exactly: a PCRE2 resource
 * limit, a captured address that is not a dotted quad, or a text that may hold another
 * address (the ambiguity probe, engine._ambiguous). That is decided before the line touches
 * the failure cache, which both paths share. Times: a per-minute cache vouched for by Python
 * (hooks.minute_base), misses through hooks.epoch. */

typedef struct {
    pcre2_code *code;
    int32_t *cap_slot; /* (capture, slot) pairs */
    Py_ssize_t ncaps;
    int32_t ip4, ip6;  /* capture numbers of the address groups, 0: none */
    int32_t *alts;     /* (from slot, to slot) pairs */
    Py_ssize_t nalts;
    int has_first;     /* a match starts at the text's start, with a byte of `first` */
    uint8_t first[32];
    uint32_t groups;   /* capture count */
} Rx;

typedef struct {
    pcre2_code *code;
    int32_t group, second; /* captures: the date text; %S (0: none) */
    int anchored;
    int has_first; /* a match starts at the line's start, with a byte of `first` */
    uint8_t first[32];
} Template;

static int first_map(PyObject *first, int *has, uint8_t *map) {
    if (first == Py_None) return 0;
    if (!PyBytes_Check(first) || PyBytes_GET_SIZE(first) != 32) {
        PyErr_SetString(PyExc_ValueError, "first bytes: 32 bytes or None");
        return -1;
    }
    memcpy(map, PyBytes_AS_STRING(first), 32);
    *has = 1;
    return 0;
}

static inline int may_start(int has, const uint8_t *map, const char *s) {
    uint8_t c = (uint8_t)s[0];
    return !has || (map[c >> 3] >> (c & 7)) & 1;
}

/* The outcome of date_find_in for every line that starts with key[0, k): the templates never
 * looked at a byte past k (a PCRE2_PARTIAL_HARD run over the first k bytes gave the same
 * outcome with no partial match), so the rest of the line cannot change it. Lines of one
 * second share it (syslog: "Mar  1 00:00:01 w", k = the date's end + 2). */
#define MEMO_KEY 64
typedef struct {
    char key[MEMO_KEY];
    size_t k;        /* 0: empty */
    int t;
    size_t start, end;
    Py_ssize_t second;
    int wait;        /* lines before the next probe */
    int backoff;     /* the wait after a remembered date that served no line (doubles, to 64) */
    Py_ssize_t used; /* lines served by the date remembered now */
    Py_ssize_t hits; /* lines whose date came from the memo (Filter.date_memo_hits) */
} DateMemo;

typedef struct {
    Scanner base; /* the address cache, the tally, match data (its own regexes unused) */
    Template *templates;
    Py_ssize_t ntemplates;
    Rx *ignores;
    Py_ssize_t nignores;
    int ignore_first;
    Rx pref;
    int has_pref;
    int32_t content;
    Rx uni;
    int has_union;
    int32_t *markers;
    Rx *fails;
    Py_ssize_t nfails;
    int has_by_byte;       /* nfails <= 64: by_byte[c] has bit i if failregex i may start with c */
    uint64_t by_byte[256];
    PyObject *names;
    Py_ssize_t nslots;
    int s_ip4, s_ip6, s_dns, s_fid, s_mlfid, s_nofail;
    pcre2_code *v4, *v6;   /* engine._V4/_V6: the other addresses of a text */
    pcre2_code *head;      /* the prefregex without its final "(.+)$" (the content), or NULL */
    PCRE2_SIZE *pov, *fov; /* copies of the prefregex's and the failregex's ovectors */
    uint32_t maxcap;
    char *buf, *buf2;
    size_t bufcap, buf2cap;
    Val *vals;
    DateMemo memo;
} Filter;

static void rx_free(Rx *rx) {
    if (rx->code) pcre2_code_free(rx->code);
    PyMem_Free(rx->cap_slot);
    PyMem_Free(rx->alts);
    memset(rx, 0, sizeof *rx);
}

static int int_pairs(PyObject *seq, int32_t **out, Py_ssize_t *n) {
    if (!PyTuple_Check(seq)) { PyErr_SetString(PyExc_TypeError, "pairs must be a tuple"); return -1; }
    *n = PyTuple_GET_SIZE(seq);
    *out = PyMem_Malloc((size_t)(*n * 2 + 1) * sizeof(int32_t));
    if (*out == NULL) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < *n; i++) {
        int a, b;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(seq, i), "ii", &a, &b)) return -1;
        (*out)[2 * i] = a; (*out)[2 * i + 1] = b;
    }
    return 0;
}

/* (pattern, ((capture, slot), ...), ip4 capture, ip6 capture, ((from, to), ...), first bytes:
 * a 32-byte bitmap (native.first_bytes) or None) */
static int rx_init(Filter *f, Rx *rx, PyObject *spec) {
    PyObject *pattern, *caps, *alts, *first;
    int ip4, ip6;
    if (!PyArg_ParseTuple(spec, "UOiiOO", &pattern, &caps, &ip4, &ip6, &alts, &first)) return -1;
    if (first_map(first, &rx->has_first, rx->first) < 0) return -1;
    if (compile_pattern(pattern, 0, &rx->code) < 0) return -1;
    if (int_pairs(caps, &rx->cap_slot, &rx->ncaps) < 0) return -1;
    if (int_pairs(alts, &rx->alts, &rx->nalts) < 0) return -1;
    uint32_t groups;
    pcre2_pattern_info(rx->code, PCRE2_INFO_CAPTURECOUNT, &groups);
    if (groups > f->maxcap) f->maxcap = groups;
    rx->groups = groups;
    for (Py_ssize_t i = 0; i < rx->ncaps; i++) {
        if (rx->cap_slot[2 * i] < 1 || (uint32_t)rx->cap_slot[2 * i] > groups ||
            rx->cap_slot[2 * i + 1] < 0 || rx->cap_slot[2 * i + 1] >= f->nslots) {
            PyErr_SetString(PyExc_ValueError, "capture or slot out of range");
            return -1;
        }
    }
    for (Py_ssize_t i = 0; i < 2 * rx->nalts; i++) {
        if (rx->alts[i] < 0 || rx->alts[i] >= f->nslots) {
            PyErr_SetString(PyExc_ValueError, "alternate slot out of range");
            return -1;
        }
    }
    if (ip4 < 0 || ip6 < 0 || (uint32_t)ip4 > groups || (uint32_t)ip6 > groups) {
        PyErr_SetString(PyExc_ValueError, "address capture out of range");
        return -1;
    }
    rx->ip4 = ip4; rx->ip6 = ip6;
    return 0;
}

static int rx_list(Filter *f, PyObject *seq, Rx **out, Py_ssize_t *n) {
    if (!PyTuple_Check(seq)) { PyErr_SetString(PyExc_TypeError, "a tuple of regex specs"); return -1; }
    *n = PyTuple_GET_SIZE(seq);
    *out = PyMem_Calloc((size_t)(*n ? *n : 1), sizeof(Rx));
    if (*out == NULL) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < *n; i++)
        if (rx_init(f, &(*out)[i], PyTuple_GET_ITEM(seq, i)) < 0) return -1;
    return 0;
}

static int slot_named(PyObject *names, const char *name) {
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(names); i++)
        if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(names, i), name) == 0) return (int)i;
    return -1;
}

/* Filter(names, templates, ignores, ignore_first, pref, content, union, fails)
 *   templates: ((pattern, date capture, %S capture or 0, anchored, first bytes or None), ...)
 *   ignores, fails: regex specs (rx_init); pref: a spec or None, content: its capture or 0
 *   union: None or (pattern, (marker capture per failregex, ...)) */
static int filter_init(Filter *f, PyObject *args, PyObject *kw) {
    static char *kwlist[] = {"names", "templates", "ignores", "ignore_first", "pref", "content",
                             "union", "fails", "v4", "v6", "head", NULL};
    PyObject *names, *templates, *ignores, *pref, *uni, *fails, *v4, *v6, *head = Py_None;
    int ignore_first, content;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O!O!O!pOiOO!UU|O", kwlist, &PyTuple_Type, &names,
                                     &PyTuple_Type, &templates, &PyTuple_Type, &ignores,
                                     &ignore_first, &pref, &content, &uni, &PyTuple_Type, &fails,
                                     &v4, &v6, &head))
        return -1;
    if (f->names != NULL) { PyErr_SetString(PyExc_RuntimeError, "already initialised"); return -1; }
    if (compile_pattern(v4, 0, &f->v4) < 0 || compile_pattern(v6, 0, &f->v6) < 0) return -1;
    Py_INCREF(names);
    f->names = names;
    f->nslots = PyTuple_GET_SIZE(names);
    f->ntemplates = PyTuple_GET_SIZE(templates);
    f->templates = PyMem_Calloc((size_t)(f->ntemplates ? f->ntemplates : 1), sizeof(Template));
    if (f->templates == NULL) { PyErr_NoMemory(); return -1; }
    for (Py_ssize_t i = 0; i < f->ntemplates; i++) {
        PyObject *pattern, *first;
        int group, second, anchored;
        Template *t = &f->templates[i];
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(templates, i), "UiipO", &pattern, &group, &second,
                              &anchored, &first))
            return -1;
        if (first_map(first, &t->has_first, t->first) < 0) return -1;
        if (compile_pattern_jit(pattern, 0, PCRE2_JIT_COMPLETE | PCRE2_JIT_PARTIAL_HARD, &t->code) < 0) return -1;
        uint32_t groups;
        pcre2_pattern_info(t->code, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups > f->maxcap) f->maxcap = groups;
        if (group < 0 || (uint32_t)group > groups || second < 0 || (uint32_t)second > groups) {
            PyErr_SetString(PyExc_ValueError, "template capture out of range");
            return -1;
        }
        t->group = group; t->second = second; t->anchored = anchored;
    }
    if (rx_list(f, ignores, &f->ignores, &f->nignores) < 0) return -1;
    f->ignore_first = ignore_first;
    if (pref != Py_None) {
        if (rx_init(f, &f->pref, pref) < 0) return -1;
        f->has_pref = 1;
        uint32_t groups;
        pcre2_pattern_info(f->pref.code, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (content < 0 || (uint32_t)content > groups) { PyErr_SetString(PyExc_ValueError, "content capture"); return -1; }
        f->content = content;
        if (head != Py_None) { /* native.content_head: the prefregex without its "(.+)$" */
            if (!PyUnicode_Check(head)) { PyErr_SetString(PyExc_TypeError, "head: str or None"); return -1; }
            if (content < 1 || (uint32_t)content != groups) { PyErr_SetString(PyExc_ValueError, "head: the content must be the last group"); return -1; }
            if (compile_pattern(head, 0, &f->head) < 0) return -1;
            uint32_t hg;
            pcre2_pattern_info(f->head, PCRE2_INFO_CAPTURECOUNT, &hg);
            if (hg + 1 != groups) { PyErr_SetString(PyExc_ValueError, "head: one group fewer than the prefregex"); return -1; }
        }
    }
    if (rx_list(f, fails, &f->fails, &f->nfails) < 0) return -1;
    if (f->nfails < 1) { PyErr_SetString(PyExc_ValueError, "at least one failregex"); return -1; }
    f->has_by_byte = f->nfails <= 64;
    for (int c = 0; f->has_by_byte && c < 256; c++) {
        char ch = (char)c;
        f->by_byte[c] = 0;
        for (Py_ssize_t i = 0; i < f->nfails; i++)
            if (may_start(f->fails[i].has_first, f->fails[i].first, &ch)) f->by_byte[c] |= 1ULL << i;
    }
    if (uni != Py_None) {
        PyObject *pattern, *markers;
        if (!PyArg_ParseTuple(uni, "UO!", &pattern, &PyTuple_Type, &markers)) return -1;
        if (PyTuple_GET_SIZE(markers) != f->nfails) { PyErr_SetString(PyExc_ValueError, "one marker per failregex"); return -1; }
        /* engine.py matches the union at the text's start (re.match): anchored */
        if (compile_pattern(pattern, PCRE2_ANCHORED, &f->uni.code) < 0) return -1;
        uint32_t groups;
        pcre2_pattern_info(f->uni.code, PCRE2_INFO_CAPTURECOUNT, &groups);
        if (groups > f->maxcap) f->maxcap = groups;
        f->markers = PyMem_Malloc((size_t)f->nfails * sizeof(int32_t));
        if (f->markers == NULL) { PyErr_NoMemory(); return -1; }
        for (Py_ssize_t i = 0; i < f->nfails; i++) {
            long m = PyLong_AsLong(PyTuple_GET_ITEM(markers, i));
            if (m < 1 || (uint32_t)m > groups) { if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "marker capture"); return -1; }
            f->markers[i] = (int32_t)m;
        }
        f->has_union = 1;
    }
    f->s_ip4 = slot_named(names, "ip4"); f->s_ip6 = slot_named(names, "ip6");
    f->s_dns = slot_named(names, "dns"); f->s_fid = slot_named(names, "fid");
    f->s_mlfid = slot_named(names, "mlfid"); f->s_nofail = slot_named(names, "nofail");
    Scanner *sc = &f->base;
    sc->md = pcre2_match_data_create(f->maxcap + 1, NULL);
    sc->mctx = pcre2_match_context_create(NULL);
    sc->jit_stack = pcre2_jit_stack_create(32 * 1024, 4 * 1024 * 1024, NULL);
    f->pov = PyMem_Malloc(2 * ((size_t)f->maxcap + 1) * sizeof(PCRE2_SIZE));
    f->fov = PyMem_Malloc(2 * ((size_t)f->maxcap + 1) * sizeof(PCRE2_SIZE));
    f->vals = PyMem_Calloc((size_t)(f->nslots ? f->nslots : 1), sizeof(Val));
    if (!sc->md || !sc->mctx || !sc->jit_stack || !f->pov || !f->fov || !f->vals) { PyErr_NoMemory(); return -1; }
    pcre2_jit_stack_assign(sc->mctx, NULL, sc->jit_stack);
    sc->literals = PyTuple_New(0);
    return sc->literals == NULL ? -1 : 0;
}

static void filter_dealloc(Filter *f) {
    for (Py_ssize_t i = 0; f->templates && i < f->ntemplates; i++)
        if (f->templates[i].code) pcre2_code_free(f->templates[i].code);
    PyMem_Free(f->templates);
    for (Py_ssize_t i = 0; f->ignores && i < f->nignores; i++) rx_free(&f->ignores[i]);
    PyMem_Free(f->ignores);
    for (Py_ssize_t i = 0; f->fails && i < f->nfails; i++) rx_free(&f->fails[i]);
    PyMem_Free(f->fails);
    rx_free(&f->pref);
    rx_free(&f->uni);
    if (f->v4) pcre2_code_free(f->v4);
    if (f->v6) pcre2_code_free(f->v6);
    if (f->head) pcre2_code_free(f->head);
    PyMem_Free(f->markers); PyMem_Free(f->pov); PyMem_Free(f->fov); PyMem_Free(f->vals);
    PyMem_Free(f->buf); PyMem_Free(f->buf2);
    Py_XDECREF(f->names);
    scanner_dealloc(&f->base); /* frees the base's fields and the object */
}

typedef struct {
    const char *line;
    size_t n;
    int t;              /* the template, -1: no date */
    size_t start, end;  /* the date text [start, end) */
    Py_ssize_t second;  /* where %S's two digits are (minute cache), -1: not cached */
} Dated;

#define MINUTES 4
typedef struct {
    Run run;
    Filter *f;
    FailureCache *cache;
    double cache_now;
    PyObject *hooks;
    Py_ssize_t dns_host, no_address;
    Dated last;
    int has_last; /* 0: Python's engine holds the last date (none seen here yet) */
    struct {
        int t;
        size_t len;
        Py_ssize_t second;
        char key[64];
        double base;
    } minutes[MINUTES];
    int nminutes, next_minute;
} FRun;

static PyObject *S_line, *S_epoch_of;

static inline int f2b_match(Filter *f, pcre2_code *code, const char *s, size_t n) {
    return pcre2_jit_match(code, (PCRE2_SPTR)s, n, 0, 0, f->base.md, f->base.mctx);
}

#define FALLBACK 1

/* rc of a match: 1 matched, 0 no match, FALLBACK+1 a resource limit, -1 error */
static int f2b_rc(int rc) {
    if (rc >= 0) return 1;
    if (rc == PCRE2_ERROR_NOMATCH) return 0;
    if (resource_limit(rc)) return FALLBACK + 1;
    return match_error(rc);
}

#define DATE_PARTIAL (FALLBACK + 2)

/* dates.DateFinder.find: 1 with d filled (d->t >= 0) or none found (d->t == -1), or the rc
 * of a failed match. `partial`: a probe of the first n bytes (PCRE2_PARTIAL_HARD),
 * DATE_PARTIAL as soon as a template reaches the end of them */
static int date_find_in(Filter *f, const char *line, size_t n, Dated *d, int partial) {
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(f->base.md);
    PCRE2_SIZE best_start = 0;
    d->t = -1;
    d->second = -1;
    for (Py_ssize_t i = 0; i < f->ntemplates; i++) {
        Template *t = &f->templates[i];
        if (t->has_first && (n == 0 || !may_start(1, t->first, line))) continue;
        int raw = partial ? pcre2_jit_match(t->code, (PCRE2_SPTR)line, n, 0, PCRE2_PARTIAL_HARD,
                                            f->base.md, f->base.mctx)
                          : f2b_match(f, t->code, line, n);
        if (raw == PCRE2_ERROR_PARTIAL) return DATE_PARTIAL;
        int rc = f2b_rc(raw);
        if (rc != 1) {
            if (rc == 0) continue;
            return rc;
        }
        PCRE2_SIZE gs = ov[2 * t->group], ge = ov[2 * t->group + 1];
        if (gs == PCRE2_UNSET) continue;
        int wins = t->anchored || ov[0] <= 1;
        if (wins || d->t < 0 || ov[0] < best_start) {
            d->t = (int)i;
            d->start = gs;
            d->end = ge;
            best_start = ov[0];
            d->second = -1;
            if (t->second > 0 && ov[2 * t->second] != PCRE2_UNSET) {
                PCRE2_SIZE s = ov[2 * t->second];
                if (ov[2 * t->second + 1] == s + 2 && is_digit(line[s]) && is_digit(line[s + 1]) &&
                    (line[s] - '0') * 10 + (line[s + 1] - '0') <= 59 && s >= gs && s + 2 <= ge &&
                    ge - gs <= 64)
                    d->second = (Py_ssize_t)s;
            }
        }
        if (wins) break;
    }
    return 1;
}

/* remember the date outcome `d` of `line` (see DateMemo): probe a few prefix lengths */
static void date_remember(Filter *f, const char *line, size_t n, const Dated *d) {
    DateMemo *m = &f->memo;
    if (m->k > 0) { /* the remembered date served `used` lines: probe less while it serves none */
        m->backoff = m->used > 0 ? 0 : m->backoff ? (m->backoff < 64 ? 2 * m->backoff : 64) : 1;
        m->k = 0;
        if (m->backoff > 0) m->wait = m->backoff;
    }
    if (d->t < 0) return; /* an undated line: its date is searched again */
    if (m->wait > 0) { m->wait--; return; }
    static const size_t extra[] = {2, 8, 24};
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++) {
        size_t k = d->end + extra[i];
        if (k > n || k > MEMO_KEY) break;
        Dated p = {line, k, -1, 0, 0, -1};
        int rc = date_find_in(f, line, k, &p, 1);
        if (rc == DATE_PARTIAL) continue;
        if (rc != 1 || p.t != d->t || p.start != d->start || p.end != d->end || p.second != d->second)
            break; /* a limit, or (never seen) another outcome: nothing remembered */
        memcpy(m->key, line, k);
        m->k = k; m->t = d->t; m->start = d->start; m->end = d->end; m->second = d->second;
        m->used = 0;
        return;
    }
    m->wait = 64;
}

/* date_find_in through the memo */
static int date_of(Filter *f, const char *line, size_t n, Dated *d) {
    DateMemo *m = &f->memo;
    if (m->k > 0 && n >= m->k && memcmp(line, m->key, m->k) == 0) {
        d->t = m->t; d->start = m->start; d->end = m->end; d->second = m->second;
        m->hits++;
        m->used++;
        return 1;
    }
    int rc = date_find_in(f, line, n, d, 0);
    if (rc == 1) date_remember(f, line, n, d);
    return rc;
}

static PyObject *line_text(const char *line, size_t n) {
    return PyUnicode_DecodeASCII(line, (Py_ssize_t)n, NULL);
}

/* the time of a hit: the date of `d` (a dated line), or with d == NULL Python's last date */
static int f2b_time(FRun *fr, const Dated *d, double *epoch) {
    int slot = -1;
    int second = 0;
    if (d != NULL && d->second >= 0) {
        size_t len = d->end - d->start, s = (size_t)d->second - d->start;
        second = (d->line[d->second] - '0') * 10 + (d->line[d->second + 1] - '0');
        for (int i = 0; i < fr->nminutes; i++) {
            if (fr->minutes[i].t == d->t && fr->minutes[i].len == len && fr->minutes[i].second == (Py_ssize_t)s &&
                memcmp(fr->minutes[i].key, d->line + d->start, s) == 0 &&
                memcmp(fr->minutes[i].key + s + 2, d->line + d->start + s + 2, len - s - 2) == 0) {
                *epoch = fr->minutes[i].base + second;
                return 1;
            }
        }
        slot = 0;
    }
    PyObject *text = d != NULL ? line_text(d->line, d->n) : Py_NewRef(Py_None);
    if (text == NULL) return -1;
    PyObject *r = PyObject_CallMethodObjArgs(fr->hooks, S_epoch_of, text, NULL);
    if (r == NULL) { Py_DECREF(text); return -1; }
    int found = r != Py_None;
    if (found) *epoch = PyFloat_AsDouble(r);
    Py_DECREF(r);
    if (PyErr_Occurred()) { Py_DECREF(text); return -1; }
    if (found && slot == 0) { /* remember the minute if Python vouches for all of it */
        PyObject *base = PyObject_CallMethod(fr->hooks, "minute_base", "Oinnn", text, d->t,
                                             (Py_ssize_t)d->start, (Py_ssize_t)d->end, d->second);
        if (base == NULL) { Py_DECREF(text); return -1; }
        if (base != Py_None) {
            double b = PyFloat_AsDouble(base);
            if (!(b == -1.0 && PyErr_Occurred()) && b + second == *epoch) {
                int i = fr->nminutes < MINUTES ? fr->nminutes++ : fr->next_minute++ % MINUTES;
                fr->minutes[i].t = d->t;
                fr->minutes[i].len = d->end - d->start;
                fr->minutes[i].second = d->second - (Py_ssize_t)d->start;
                memcpy(fr->minutes[i].key, d->line + d->start, d->end - d->start);
                fr->minutes[i].base = b;
            }
        }
        Py_DECREF(base);
    }
    Py_DECREF(text);
    if (PyErr_Occurred()) return -1;
    return found;
}

/* the line through Python's engine alone (hooks.line), `before`: the last dated line */
static int f2b_python(FRun *fr, const char *line, size_t n, const Dated *before) {
    PyObject *text = line_text(line, n);
    if (text == NULL) return -1;
    PyObject *last = before != NULL ? line_text(before->line, before->n) : Py_NewRef(Py_None);
    if (last == NULL) { Py_DECREF(text); return -1; }
    PyObject *r = PyObject_CallMethodObjArgs(fr->hooks, S_line, text, last, NULL);
    Py_DECREF(last);
    int rc = -1;
    if (r == NULL) goto done;
    if (r == Py_None) { rc = 0; goto done; }
    PyObject *address, *when;
    if (!PyArg_ParseTuple(r, "OO", &address, &when)) goto done;
    Key k;
    Source src;
    if (python_source(&fr->run, address, &k, &src) < 0) goto done;
    double epoch = fr->run.now_epoch;
    if (when == Py_None) fr->run.no_timestamp++;
    else if ((epoch = PyFloat_AsDouble(when)) == -1.0 && PyErr_Occurred()) goto done;
    rc = record_hit(&fr->run, &k, &src, epoch, line, n, text);
done:
    Py_XDECREF(r);
    Py_DECREF(text);
    return rc;
}

static int ensure(char **buf, size_t *cap, size_t want) {
    if (want <= *cap) return 0;
    size_t c = *cap ? *cap : 256;
    while (c < want) c *= 2;
    char *p = PyMem_Realloc(*buf, c);
    if (p == NULL) { PyErr_NoMemory(); return -1; }
    *buf = p;
    *cap = c;
    return 0;
}

/* how many `ch` in [from, to) of s (memchr: lines hold few dots and colons) */
static size_t count_char(const char *s, size_t from, size_t to, char ch) {
    size_t c = 0;
    const char *p = s + from, *e = s + to;
    while (p < e && (p = memchr(p, ch, (size_t)(e - p))) != NULL) {
        c++;
        p++;
    }
    return c;
}

static inline int is_hex(char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* 0 when no engine._V6 match of `s` can pass maybe_ipv6: such a match holds "::", or seven
 * colons each followed by at most four hex digits before the next (the match is
 * (hex{0,4}:){2,7}hex{0,4}). 1: s has such a run, the scan must look. */
static int v6_possible(const char *s, size_t n) {
    const char *p = s, *e = s + n, *prev = NULL;
    int run = 0;
    while (p < e && (p = memchr(p, ':', (size_t)(e - p))) != NULL) {
        if (p + 1 < e && p[1] == ':') return 1;
        int joined = prev != NULL && p - prev - 1 <= 4;
        for (const char *q = joined ? prev + 1 : p; joined && q < p; q++) joined = is_hex(*q);
        run = joined ? run + 1 : 1;
        if (run >= 7) return 1;
        prev = p++;
    }
    return 0;
}

/* 0 when `s` (hex digits and colons, an engine._V6 candidate) is certainly no IPv6 address
 * for Python's ipaddress: without "::" it needs exactly eight groups, so seven colons, none
 * at either end ("port 22:11:" in sshd's disconnect lines). 1: ask Python. */
static int maybe_ipv6(const char *s, size_t n) {
    size_t colons = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] != ':') continue;
        if (i + 1 < n && s[i + 1] == ':') return 1;
        colons++;
    }
    return colons == 7 && n > 0 && s[0] != ':' && s[n - 1] != ':';
}

/* engine._candidates: whether `s` holds, outside [a, b), an address other than `chosen` (an
 * IPv4 address as an int): 1 yes (Python's ambiguity probe must look), 0 no, FALLBACK+1 a
 * resource limit, -1 error. */
static int other_address(FRun *fr, const char *s, size_t n, size_t a, size_t b, uint32_t chosen) {
    Filter *f = fr->f;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(f->base.md);
    size_t lo = a < n ? a : n, hi = b < n ? b : n;
    int scan_v4 = count_char(s, 0, lo, '.') + count_char(s, hi, n, '.') >= 3;
    int scan_v6 = count_char(s, 0, lo, ':') + count_char(s, hi, n, ':') >= 2 && v6_possible(s, n);
    for (int pass = 0; pass < 2; pass++) {
        if (!(pass == 0 ? scan_v4 : scan_v6)) continue;
        pcre2_code *code = pass == 0 ? f->v4 : f->v6;
        size_t pos = 0;
        while (pos <= n) {
            int rc = pcre2_jit_match(code, (PCRE2_SPTR)s, n, pos, 0, f->base.md, f->base.mctx);
            rc = f2b_rc(rc);
            if (rc != 1) {
                if (rc == 0) break;
                return rc;
            }
            size_t start = ov[0], end = ov[1];
            pos = end > start ? end : end + 1;
            if (start < b && end > a) continue; /* the captured address itself */
            uint32_t v4;
            if (pass == 0 && parse_ipv4(s + start, end - start, &v4)) {
                if (v4 != chosen) return 1;
                continue;
            }
            if (pass == 1 && !maybe_ipv6(s + start, end - start)) continue;
            /* anything else: Python's parse decides whether it is an address */
            PyObject *address = python_address(&fr->run, s + start, end - start);
            if (address == NULL) return -1;
            int other = address != Py_None;
            Py_DECREF(address);
            if (other) return 1; /* an address that may equal the chosen one: Python decides */
        }
    }
    return 0;
}

static int any_ignore(FRun *fr, const char *s, size_t n) {
    Filter *f = fr->f;
    for (Py_ssize_t i = 0; i < f->nignores; i++) {
        int rc = f2b_rc(f2b_match(f, f->ignores[i].code, s, n));
        if (rc != 0) return rc; /* 1: ignored */
    }
    return 0;
}

/* one line (d: its date, before: the last dated line or NULL): 0 done, FALLBACK: Python must
 * decide it, -1 error */
static int f2b_evaluate(FRun *fr, const char *line, size_t n, const Dated *d, const Dated *before) {
    Filter *f = fr->f;
    PCRE2_SIZE *ov = pcre2_get_ovector_pointer(f->base.md);
    size_t cut = d->t >= 0 ? d->end - d->start : 0;
    size_t blen = n - cut + 1;
    const char *buf;
    if ((d->t < 0 || d->start == 0) && line[n] == '\n') {
        buf = line + cut; /* the line without its leading date, and its newline: in place */
    } else {
        if (ensure(&f->buf, &f->bufcap, blen) < 0) return -1;
        char *copy = f->buf;
        if (d->t >= 0) {
            memcpy(copy, line, d->start);
            memcpy(copy + d->start, line + d->end, n - d->end);
        } else {
            memcpy(copy, line, n);
        }
        copy[blen - 1] = '\n';
        buf = copy;
    }
    int rc;
    if (f->nignores && f->ignore_first) {
        rc = any_ignore(fr, buf, blen);
        if (rc == 1) { fr->run.ignored++; return 0; }
        if (rc != 0) return rc < 0 ? -1 : FALLBACK;
    }
    const char *text = buf;
    size_t tlen = blen;
    if (f->has_pref) {
        /* the head first (no head, no prefregex): if it leaves content, that is the rest */
        rc = f->head != NULL ? f2b_rc(f2b_match(f, f->head, buf, blen)) : 1;
        if (rc != 1) return rc == 0 ? 0 : rc < 0 ? -1 : FALLBACK;
        if (f->head != NULL && ov[1] < blen - 1) {
            memcpy(f->pov, ov, 2 * (size_t)f->pref.groups * sizeof(PCRE2_SIZE));
            f->pov[1] = blen - 1;
            f->pov[2 * f->content] = ov[1];
            f->pov[2 * f->content + 1] = blen - 1;
        } else {
            rc = f2b_rc(f2b_match(f, f->pref.code, buf, blen));
            if (rc != 1) return rc == 0 ? 0 : rc < 0 ? -1 : FALLBACK;
            memcpy(f->pov, ov, 2 * ((size_t)f->pref.groups + 1) * sizeof(PCRE2_SIZE));
        }
        if (f->content > 0 && f->pov[2 * f->content] != PCRE2_UNSET &&
            f->pov[2 * f->content + 1] > f->pov[2 * f->content]) {
            size_t cs = f->pov[2 * f->content], ce = f->pov[2 * f->content + 1];
            if (ce == blen - 1) { /* the content ends the line: in place, with its newline */
                text = buf + cs;
            } else {
                if (ensure(&f->buf2, &f->buf2cap, ce - cs + 1) < 0) return -1;
                memcpy(f->buf2, buf + cs, ce - cs);
                f->buf2[ce - cs] = '\n';
                text = f->buf2;
            }
            tlen = ce - cs + 1;
        }
    }
    Py_ssize_t first = 0;
    if (f->has_union) {
        rc = f2b_rc(f2b_match(f, f->uni.code, text, tlen));
        if (rc != 1) return rc == 0 ? 0 : rc < 0 ? -1 : FALLBACK;
        first = -1;
        for (Py_ssize_t k = 0; k < f->nfails; k++)
            if (ov[2 * f->markers[k]] != PCRE2_UNSET) { first = k; break; }
        if (first < 0) { PyErr_SetString(PyExc_AssertionError, "union matched no marker"); return -1; }
    }
    for (Py_ssize_t idx = first; idx < f->nfails; idx++) {
        if (f->has_by_byte) { /* to the next failregex that may start with the text's byte */
            uint64_t left = f->by_byte[(uint8_t)text[0]] >> idx;
            if (left == 0) break;
            idx += __builtin_ctzll(left);
        } else if (!may_start(f->fails[idx].has_first, f->fails[idx].first, text)) {
            continue;
        }
        Rx *fail = &f->fails[idx];
        rc = f2b_rc(f2b_match(f, fail->code, text, tlen));
        if (rc == 0) continue;
        if (rc != 1) return rc < 0 ? -1 : FALLBACK;
        PCRE2_SIZE *fov = f->fov;
        memcpy(fov, ov, 2 * ((size_t)fail->groups + 1) * sizeof(PCRE2_SIZE));
        if (f->nignores) {
            rc = any_ignore(fr, text, tlen);
            if (rc == 1) { fr->run.ignored++; return 0; }
            if (rc != 0) return rc < 0 ? -1 : FALLBACK;
        }
        /* the groups: the prefregex's (but its content), then the failregex's that matched */
        Val *vals = f->vals;
        for (Py_ssize_t i = 0; i < f->nslots; i++) vals[i].p = NULL;
        if (f->has_pref) {
            for (Py_ssize_t i = 0; i < f->pref.ncaps; i++) {
                int32_t cap = f->pref.cap_slot[2 * i];
                if (cap == f->content || f->pov[2 * cap] == PCRE2_UNSET) continue;
                Val *v = &vals[f->pref.cap_slot[2 * i + 1]];
                v->p = buf + f->pov[2 * cap];
                v->n = (Py_ssize_t)(f->pov[2 * cap + 1] - f->pov[2 * cap]);
            }
        }
        for (Py_ssize_t i = 0; i < fail->ncaps; i++) {
            int32_t cap = fail->cap_slot[2 * i];
            if (fov[2 * cap] == PCRE2_UNSET) continue;
            Val *v = &vals[fail->cap_slot[2 * i + 1]];
            v->p = text + fov[2 * cap];
            v->n = (Py_ssize_t)(fov[2 * cap + 1] - fov[2 * cap]);
        }
        for (Py_ssize_t i = 0; i < fail->nalts; i++) {
            Val from = vals[fail->alts[2 * i]];
            if (val_true(from) && !val_true(vals[fail->alts[2 * i + 1]])) vals[fail->alts[2 * i + 1]] = from;
        }
        /* the ambiguity probe stays in Python: a line whose address is not a dotted quad, or
         * whose text may hold another address, goes there whole */
        const char *own_text = NULL;
        size_t own_len = 0, os = 0, oe = 0;
        const PCRE2_SIZE *src_ov = NULL;
        int32_t cap = 0;
        if (fail->ip4 && fov[2 * fail->ip4] != PCRE2_UNSET) { src_ov = fov; cap = fail->ip4; own_text = text; own_len = tlen; }
        else if (fail->ip6 && fov[2 * fail->ip6] != PCRE2_UNSET) { src_ov = fov; cap = fail->ip6; own_text = text; own_len = tlen; }
        else if (f->has_pref && f->pref.ip4 && f->pov[2 * f->pref.ip4] != PCRE2_UNSET) { src_ov = f->pov; cap = f->pref.ip4; own_text = buf; own_len = blen; }
        else if (f->has_pref && f->pref.ip6 && f->pov[2 * f->pref.ip6] != PCRE2_UNSET) { src_ov = f->pov; cap = f->pref.ip6; own_text = buf; own_len = blen; }
        if (src_ov != NULL) {
            uint32_t v4;
            os = src_ov[2 * cap]; oe = src_ov[2 * cap + 1];
            if (!parse_ipv4(own_text + os, oe - os, &v4)) return FALLBACK;
            rc = other_address(fr, own_text, own_len, os, oe, v4);
            if (rc != 0) return rc < 0 ? -1 : FALLBACK;
        }
        Val *g = vals;
        const char *mlfid = NULL;
        Py_ssize_t mlfid_n = 0;
        if (f->s_mlfid >= 0 && vals[f->s_mlfid].p != NULL) {
            mlfid = vals[f->s_mlfid].p;
            mlfid_n = vals[f->s_mlfid].n;
            Py_ssize_t nusers;
            if (cache_merge(fr->cache, mlfid, mlfid_n, vals, fr->cache_now, &g, &nusers) < 0) return -1;
        }
        if (f->s_nofail >= 0 && val_true(g[f->s_nofail])) return 0;
        Key k;
        Source src;
        int skip = 0, found = 0;
        for (int which = 0; which < 2 && !found; which++) {
            int s = which == 0 ? f->s_ip4 : f->s_ip6;
            if (s < 0 || g[s].p == NULL) continue;
            if (host_source(&fr->run, g[s].p, (size_t)g[s].n, &k, &src, &skip) < 0) return -1;
            if (skip) { fr->run.invalid_host++; return 0; }
            found = 1;
        }
        if (!found && f->s_dns >= 0 && g[f->s_dns].p != NULL) { fr->dns_host++; return 0; }
        if (!found && f->s_fid >= 0 && g[f->s_fid].p != NULL) {
            if (host_source(&fr->run, g[f->s_fid].p, (size_t)g[f->s_fid].n, &k, &src, &skip) < 0) return -1;
            if (skip) { fr->no_address++; return 0; }
            found = 1;
        }
        if (!found) { /* pending: the failure waits for its address */
            if (mlfid != NULL) cache_pending(fr->cache, mlfid, mlfid_n);
            return 0;
        }
        double epoch;
        int dated = d->t >= 0 && d->end > d->start;
        int when = f2b_time(fr, dated ? d : before, &epoch);
        if (when < 0) return -1;
        if (when == 0) { fr->run.no_timestamp++; epoch = fr->run.now_epoch; }
        return record_hit(&fr->run, &k, &src, epoch, line, n, NULL);
    }
    return 0;
}

static int f2b_line(FRun *fr, const char *line, size_t n) {
    Dated d = {line, n, -1, 0, 0, -1};
    const Dated *before = fr->has_last ? &fr->last : NULL;
    Dated saved;
    if (before != NULL) { saved = *before; before = &saved; }
    int rc = date_of(fr->f, line, n, &d);
    if (rc < 0) return -1;
    if (rc != 1) { /* PCRE2 gave up on a date template: Python decides, and holds the date */
        if (f2b_python(fr, line, n, before) < 0) return -1;
        fr->has_last = 0;
        return 0;
    }
    rc = f2b_evaluate(fr, line, n, &d, before);
    if (rc < 0) return -1;
    if (rc == FALLBACK && f2b_python(fr, line, n, before) < 0) return -1;
    if (d.t >= 0 && d.end > d.start) {
        fr->last = d;
        fr->has_last = 1;
    }
    return 0;
}

/* scan(block, windows, rule, tally, tallied, addresses, resolve, now_epoch, cache, cache_now,
 *      hooks) -> (hits, ignored, invalid_host, no_timestamp, dns_host, no_address, alerts,
 *                 last dated line or None)
 * block: ASCII bytes, "\n" + lines joined by "\n" (no CR, no NUL). */
static PyObject *filter_scan(Filter *f, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 11 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "scan(block: bytes, windows, rule, tally, tallied, "
                        "addresses, resolve, now_epoch, cache, cache_now, hooks)");
        return NULL;
    }
    if (f->names == NULL) { PyErr_SetString(PyExc_RuntimeError, "Filter not initialised"); return NULL; }
    FRun fr;
    memset(&fr, 0, sizeof fr);
    Run *run = &fr.run;
    run->sc = &f->base;
    fr.f = f;
    if (args[1] != Py_None) {
        if (!PyObject_TypeCheck(args[1], &WindowsType)) { PyErr_SetString(PyExc_TypeError, "windows"); return NULL; }
        run->windows = (Windows *)args[1];
    }
    run->rule = args[2];
    run->tally = args[3] == Py_None ? NULL : args[3];
    if (run->tally != NULL && !PyDict_Check(run->tally)) { PyErr_SetString(PyExc_TypeError, "tally"); return NULL; }
    if (!PyDict_Check(args[5])) { PyErr_SetString(PyExc_TypeError, "addresses"); return NULL; }
    run->tallied = args[4]; run->addresses = args[5]; run->resolve = args[6];
    run->now_epoch = PyFloat_AsDouble(args[7]);
    if (run->now_epoch == -1.0 && PyErr_Occurred()) return NULL;
    if (!PyObject_TypeCheck(args[8], &FailureCacheType) || ((FailureCache *)args[8])->names == NULL) {
        PyErr_SetString(PyExc_TypeError, "cache: an initialised FailureCache");
        return NULL;
    }
    fr.cache = (FailureCache *)args[8];
    if (PyObject_RichCompareBool(fr.cache->names, f->names, Py_EQ) != 1) {
        if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "the cache's names are not the filter's");
        return NULL;
    }
    fr.cache_now = now_of(args[9]);
    if (fr.cache_now == -1.0 && PyErr_Occurred()) return NULL;
    fr.hooks = args[10];
    if (f->base.busy) {
        PyErr_SetString(PyExc_RuntimeError, "Filter.scan is not reentrant (one detector, one thread)");
        return NULL;
    }
    run->alerts = PyList_New(0);
    if (run->alerts == NULL) return NULL;
    f->base.busy = 1;
    const char *block = PyBytes_AS_STRING(args[0]);
    size_t size = (size_t)PyBytes_GET_SIZE(args[0]);
    int failed = 0;
    size_t pos = size > 0 && block[0] == '\n' ? 1 : 0;
    while (pos <= size && size > 0) {
        const char *nl = memchr(block + pos, '\n', size - pos);
        size_t end = nl ? (size_t)(nl - block) : size;
        if (f2b_line(&fr, block + pos, end - pos) < 0) { failed = 1; break; }
        pos = end + 1;
        if (nl == NULL) break;
    }
    if (tally_flush(run) < 0) failed = 1;
    f->base.busy = 0;
    if (failed) { Py_DECREF(run->alerts); return NULL; }
    PyObject *last = fr.has_last ? line_text(fr.last.line, fr.last.n) : Py_NewRef(Py_None);
    if (last == NULL) { Py_DECREF(run->alerts); return NULL; }
    return Py_BuildValue("(nnnnnnNN)", run->hits, run->ignored, run->invalid_host, run->no_timestamp,
                         fr.dns_host, fr.no_address, run->alerts, last);
}

static PyMethodDef filter_methods[] = {
    {"scan", (PyCFunction)(void (*)(void))filter_scan, METH_FASTCALL, NULL},
    {NULL, NULL, 0, NULL},
};

static PyObject *filter_memo_hits(Filter *f, void *closure) {
    return PyLong_FromSsize_t(f->memo.hits);
}

static PyGetSetDef filter_getset[] = {
    {"date_memo_hits", (getter)filter_memo_hits, NULL, "lines whose date came from the memo", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject FilterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "shieldwall.detect._native.Filter",
    .tp_basicsize = sizeof(Filter),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)filter_init,
    .tp_dealloc = (destructor)filter_dealloc,
    .tp_methods = filter_methods,
    .tp_getset = filter_getset,
    .tp_doc = "a fail2ban filter (maxlines = 1) over blocks of ASCII lines (see native.py)",
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
    if (PyType_Ready(&WindowsType) < 0 || PyType_Ready(&ScannerType) < 0 ||
        PyType_Ready(&FailureCacheType) < 0 || PyType_Ready(&FilterType) < 0)
        return NULL;
    S_ip = PyUnicode_InternFromString("_ip");
    S_version = PyUnicode_InternFromString("_version");
    S_epoch = PyUnicode_InternFromString("epoch");
    S_minute_base = PyUnicode_InternFromString("minute_base");
    PyObject *ipaddress = PyImport_ImportModule("ipaddress");
    if (ipaddress == NULL) return NULL;
    IPv4Address = PyObject_GetAttrString(ipaddress, "IPv4Address");
    Py_DECREF(ipaddress);
    Four = PyLong_FromLong(4);
    if (IPv4Address == NULL || Four == NULL) return NULL;
    S_line = PyUnicode_InternFromString("line");
    S_epoch_of = PyUnicode_InternFromString("epoch_of");
    if (!S_ip || !S_version || !S_epoch || !S_minute_base || !S_line || !S_epoch_of) return NULL;
    PyObject *m = PyModule_Create(&native_module);
    if (m == NULL) return NULL;
    Py_INCREF(&WindowsType);
    Py_INCREF(&ScannerType);
    Py_INCREF(&FailureCacheType);
    Py_INCREF(&FilterType);
    if (PyModule_AddObject(m, "Windows", (PyObject *)&WindowsType) < 0 ||
        PyModule_AddObject(m, "Scanner", (PyObject *)&ScannerType) < 0 ||
        PyModule_AddObject(m, "FailureCache", (PyObject *)&FailureCacheType) < 0 ||
        PyModule_AddObject(m, "Filter", (PyObject *)&FilterType) < 0) {
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
