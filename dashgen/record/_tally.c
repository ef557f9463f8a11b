/* The per-measurement work of recording mode, in C: the app calls `Tally.record` as its
 * instrument's add/record/set on every measurement, so its cost is recording mode's cost.
 *
 * Same behaviour as dashgen/record/tally.py (the fallback where no compiler was at hand;
 * tests/test_record_tally.py runs both on the same cases): count, hand an attribute
 * combination not seen before to `keep`, and find who recorded it by walking the frames
 * past those `judge` calls "other" (verdicts cached per code object id).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <frameobject.h>
#include <structmember.h>

/* Verdicts, as in dashgen/record/capture.py: the app's code, a test's, or a frame to look past. */
enum { VERDICT_APP = 0, VERDICT_TEST = 1, VERDICT_OTHER = 2 };

/* Direct-mapped caches in front of the dict and set the Python side reads, so that a
 * measurement from a known place with a known combination allocates nothing. Each slot
 * holds a strong reference to its code object, so no pointer here can be reused. */
#define VERDICT_SLOTS 16
#define SITE_SLOTS 64
/* Combinations `keep` said to treat as known: it says so for at most 64, so the table
 * stays half empty. */
#define KNOWN_SLOTS 128

typedef struct {
    PyCodeObject *code;
    long verdict;
} VerdictSlot;

typedef struct {
    PyCodeObject *code;
    int lasti;
} SiteSlot;

typedef struct {
    Py_hash_t hash;
    PyObject *attributes; /* a copy of the dict, to tell equal hashes apart */
} KnownSlot;

typedef struct {
    PyObject_HEAD
    Py_ssize_t measurements;
    Py_ssize_t production;
    PyObject *judge;    /* callable(frame) -> int, storing it in verdicts; or None */
    PyObject *keep;     /* callable(attributes) -> bool: treat the combination as known now */
    PyObject *verdicts; /* dict: id(code) -> verdict */
    PyObject *sites;    /* set: (id(code), f_lasti) of each frame that recorded */
    VerdictSlot verdict_cache[VERDICT_SLOTS];
    SiteSlot site_cache[SITE_SLOTS];
    KnownSlot known[KNOWN_SLOTS];
} Tally;

/* A hash over the items in order, as hash(tuple(attributes.items())) tells combinations
 * apart. -1 with an exception set: a value that cannot be hashed (a list). */
static Py_hash_t
combination_hash(PyObject *attributes)
{
    Py_uhash_t hash = 0x345678UL;
    Py_ssize_t position = 0;
    PyObject *key, *value;
    while (PyDict_Next(attributes, &position, &key, &value)) {
        Py_INCREF(key);
        Py_INCREF(value);
        Py_hash_t key_hash = PyObject_Hash(key);
        Py_hash_t value_hash = key_hash == -1 ? -1 : PyObject_Hash(value);
        Py_DECREF(key);
        Py_DECREF(value);
        if (value_hash == -1) {
            return -1;
        }
        hash = (hash ^ (Py_uhash_t)key_hash) * 1000003UL;
        hash = (hash ^ (Py_uhash_t)value_hash) * 1000003UL;
    }
    return hash == (Py_uhash_t)-1 ? -2 : (Py_hash_t)hash;
}

/* 1 if the two dicts hold equal items in the same order (as two tuple(d.items()) compare),
 * 0 if not, -1 on error. */
static int
same_items(PyObject *first, PyObject *second)
{
    if (PyDict_GET_SIZE(first) != PyDict_GET_SIZE(second)) {
        return 0;
    }
    Py_ssize_t first_position = 0, second_position = 0;
    PyObject *first_key, *first_value, *second_key, *second_value;
    while (PyDict_Next(first, &first_position, &first_key, &first_value) &&
           PyDict_Next(second, &second_position, &second_key, &second_value)) {
        int equal = first_key == second_key ||
                    PyObject_RichCompareBool(first_key, second_key, Py_EQ);
        if (equal == 1 && first_value != second_value) {
            equal = PyObject_RichCompareBool(first_value, second_value, Py_EQ);
        }
        if (equal != 1) {
            return equal;
        }
    }
    return 1;
}

/* The slot of an equal combination kept before (`*found` 1), or of the free slot where it
 * goes (`*found` 0); NULL when the table is full; -1 in `*found` on error. */
static KnownSlot *
known_slot(Tally *self, Py_hash_t hash, PyObject *attributes, int *found)
{
    for (size_t probe = 0; probe < KNOWN_SLOTS; probe++) {
        KnownSlot *slot = &self->known[((size_t)hash + probe) % KNOWN_SLOTS];
        if (slot->attributes == NULL) {
            *found = 0;
            return slot;
        }
        if (slot->hash == hash) {
            *found = same_items(slot->attributes, attributes);
            if (*found != 0) {
                return slot;
            }
        }
    }
    *found = 0;
    return NULL;
}

/* 1 if `keep` said to treat the combination as known from now on, 0 if not, -1 on error. */
static int
call_keep(Tally *self, PyObject *attributes)
{
    PyObject *answer = PyObject_CallOneArg(self->keep, attributes);
    if (answer == NULL) {
        return -1;
    }
    int keep = PyObject_IsTrue(answer);
    Py_DECREF(answer);
    return keep;
}

static int
note(Tally *self, PyObject *attributes)
{
    if (!PyDict_CheckExact(attributes)) {
        return call_keep(self, attributes) < 0 ? -1 : 0; /* another Mapping: rare */
    }
    Py_hash_t hash = combination_hash(attributes);
    if (hash == -1) {
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) {
            return -1;
        }
        PyErr_Clear(); /* unhashable values, as tuple(...) in a set raises TypeError */
        return call_keep(self, attributes) < 0 ? -1 : 0;
    }
    int found;
    KnownSlot *slot = known_slot(self, hash, attributes, &found);
    if (found != 0) {
        return found < 0 ? -1 : 0;
    }
    int keep = call_keep(self, attributes);
    if (keep != 1) {
        return keep;
    }
    /* `keep` ran Python code: another thread may have filled the slot meanwhile. */
    slot = known_slot(self, hash, attributes, &found);
    if (found != 0 || slot == NULL) {
        return found < 0 ? -1 : 0;
    }
    PyObject *copy = PyDict_Copy(attributes);
    if (copy == NULL) {
        return -1;
    }
    slot->attributes = copy;
    slot->hash = hash;
    return 0;
}

/* The verdict on a frame's code: from the cache, the verdicts dict, or `judge` (which
 * stores it in the dict); -1 with an exception set on error. */
static long
verdict_of(Tally *self, PyFrameObject *frame, PyCodeObject *code)
{
    VerdictSlot *slot = &self->verdict_cache[((uintptr_t)code >> 4) % VERDICT_SLOTS];
    if (slot->code == code) {
        return slot->verdict;
    }
    PyObject *code_id = PyLong_FromVoidPtr(code);
    if (code_id == NULL) {
        return -1;
    }
    PyObject *cached = PyDict_GetItemWithError(self->verdicts, code_id);
    Py_DECREF(code_id);
    PyObject *judged = NULL;
    if (cached == NULL) {
        if (PyErr_Occurred()) {
            return -1;
        }
        cached = judged = PyObject_CallOneArg(self->judge, (PyObject *)frame);
        if (judged == NULL) {
            return -1;
        }
    }
    long verdict = PyLong_AsLong(cached);
    Py_XDECREF(judged);
    if (verdict == -1 && PyErr_Occurred()) {
        return -1;
    }
    Py_INCREF(code);
    Py_XSETREF(slot->code, code);
    slot->verdict = verdict;
    return verdict;
}

/* Add (id(code), lasti) to the sites set, unless the cache says it is there. */
static int
add_site(Tally *self, PyCodeObject *code, int lasti)
{
    size_t index = (((uintptr_t)code >> 4) ^ ((size_t)lasti * 2654435761u)) % SITE_SLOTS;
    SiteSlot *slot = &self->site_cache[index];
    if (slot->code == code && slot->lasti == lasti) {
        return 0;
    }
    PyObject *site = Py_BuildValue("(Ni)", PyLong_FromVoidPtr(code), lasti);
    if (site == NULL) {
        return -1;
    }
    int added = PySet_Add(self->sites, site);
    Py_DECREF(site);
    if (added == 0) {
        Py_INCREF(code);
        Py_XSETREF(slot->code, code);
        slot->lasti = lasti;
    }
    return added;
}

static int
attribute(Tally *self)
{
    PyFrameObject *frame = PyEval_GetFrame(); /* the caller: sys._getframe(1) in Python */
    Py_XINCREF(frame);
    int result = 0;
    while (frame != NULL) {
        PyCodeObject *code = PyFrame_GetCode(frame);
        long verdict = verdict_of(self, frame, code);
        if (verdict == -1 || verdict != VERDICT_OTHER) {
            if (verdict == -1) {
                result = -1;
            }
            else {
                result = add_site(self, code, PyFrame_GetLasti(frame));
                self->production += verdict == VERDICT_APP;
            }
            Py_DECREF(code);
            Py_DECREF(frame);
            return result;
        }
        Py_DECREF(code);
        PyFrameObject *back = PyFrame_GetBack(frame);
        Py_DECREF(frame);
        frame = back;
    }
    return result;
}

static PyObject *
Tally_record(Tally *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    /* The signature of the OTel API's add/record/set: (amount, attributes=None, context=None). */
    static const char *const names[] = {"amount", "attributes", "context"};
    PyObject *given[3] = {NULL, NULL, NULL};
    if (nargs > 3) {
        PyErr_Format(PyExc_TypeError, "record() takes at most 3 arguments (%zd given)", nargs);
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) {
        given[i] = args[i];
    }
    for (Py_ssize_t i = 0; kwnames != NULL && i < PyTuple_GET_SIZE(kwnames); i++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, i);
        int slot = 0;
        while (slot < 3 && PyUnicode_CompareWithASCIIString(name, names[slot]) != 0) {
            slot++;
        }
        if (slot == 3 || given[slot] != NULL) {
            PyErr_Format(PyExc_TypeError,
                         slot == 3 ? "record() got an unexpected keyword argument %R"
                                   : "record() got multiple values for argument %R",
                         name);
            return NULL;
        }
        given[slot] = args[nargs + i];
    }
    if (given[0] == NULL) {
        PyErr_SetString(PyExc_TypeError, "record() missing required argument 'amount'");
        return NULL;
    }
    PyObject *attributes = given[1] == NULL ? Py_None : given[1];
    self->measurements++;
    if (attributes != Py_None) {
        int present = PyDict_CheckExact(attributes) ? PyDict_GET_SIZE(attributes) > 0
                                                    : PyObject_IsTrue(attributes);
        if (present < 0 || (present && note(self, attributes) < 0)) {
            return NULL;
        }
    }
    if (self->judge != Py_None && attribute(self) < 0) {
        return NULL;
    }
    Py_RETURN_NONE;
}

static int
Tally_init(Tally *self, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"judge", "keep", "verdicts", "sites", NULL};
    PyObject *judge, *keep, *verdicts, *sites;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOO!O!", keywords, &judge, &keep,
                                     &PyDict_Type, &verdicts, &PySet_Type, &sites)) {
        return -1;
    }
    Py_INCREF(judge);
    Py_INCREF(keep);
    Py_INCREF(verdicts);
    Py_INCREF(sites);
    Py_XSETREF(self->judge, judge);
    Py_XSETREF(self->keep, keep);
    Py_XSETREF(self->verdicts, verdicts);
    Py_XSETREF(self->sites, sites);
    return 0;
}

static int
Tally_traverse(Tally *self, visitproc visit, void *arg)
{
    Py_VISIT(self->judge);
    Py_VISIT(self->keep);
    Py_VISIT(self->verdicts);
    Py_VISIT(self->sites);
    for (size_t i = 0; i < KNOWN_SLOTS; i++) {
        Py_VISIT(self->known[i].attributes);
    }
    return 0;
}

static int
Tally_clear(Tally *self)
{
    Py_CLEAR(self->judge);
    Py_CLEAR(self->keep);
    Py_CLEAR(self->verdicts);
    Py_CLEAR(self->sites);
    for (size_t i = 0; i < VERDICT_SLOTS; i++) {
        Py_CLEAR(self->verdict_cache[i].code);
    }
    for (size_t i = 0; i < SITE_SLOTS; i++) {
        Py_CLEAR(self->site_cache[i].code);
    }
    for (size_t i = 0; i < KNOWN_SLOTS; i++) {
        Py_CLEAR(self->known[i].attributes);
    }
    return 0;
}

static void
Tally_dealloc(Tally *self)
{
    PyObject_GC_UnTrack(self);
    Tally_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef Tally_methods[] = {
    {"record", (PyCFunction)(void (*)(void))Tally_record, METH_FASTCALL | METH_KEYWORDS,
     "record(amount, attributes=None, context=None): count one measurement of the app's."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef Tally_members[] = {
    {"measurements", T_PYSSIZET, offsetof(Tally, measurements), 0, "measurements counted"},
    {"production", T_PYSSIZET, offsetof(Tally, production), 0, "of them, the app's own"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject TallyType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "dashgen.record._tally.Tally",
    .tp_doc = PyDoc_STR("What recording mode counts for one instrument."),
    .tp_basicsize = sizeof(Tally),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Tally_init,
    .tp_dealloc = (destructor)Tally_dealloc,
    .tp_traverse = (traverseproc)Tally_traverse,
    .tp_clear = (inquiry)Tally_clear,
    .tp_methods = Tally_methods,
    .tp_members = Tally_members,
};

static struct PyModuleDef tally_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "dashgen.record._tally",
    .m_doc = "Recording mode's per-measurement work (see dashgen/record/tally.py).",
    .m_size = -1,
};

PyMODINIT_FUNC
PyInit__tally(void)
{
    if (PyType_Ready(&TallyType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&tally_module);
    if (module == NULL) {
        return NULL;
    }
    Py_INCREF(&TallyType);
    if (PyModule_AddObject(module, "Tally", (PyObject *)&TallyType) < 0) {
        Py_DECREF(&TallyType);
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
