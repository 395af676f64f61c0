/* ann.c -- the response model: architecture language, parameters, noise,
 * and batched forward/backward passes.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "caimg/ann.h"
#include "ann_internal.h"
#include "internal.h"

#ifdef HAVE_OPENBLAS
/* OpenBLAS's own thread control; not part of the CBLAS interface. */
extern void openblas_set_num_threads(int n);
extern int openblas_get_num_threads(void);
#endif

/* ---- random numbers ------------------------------------------------------
 * Philox4x32-10 (Salmon et al., SC 2011): a counter-based generator, so the
 * noise of unit u of sample g in layer l is computed from (u, g, l) alone
 * and does not depend on which thread gets there first. */

void ann_philox(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)0xD2511F53u * c0;
        uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        c1 = (uint32_t)p1;
        c3 = (uint32_t)p0;
        c0 = n0;
        c2 = n2;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

uint64_t ann_mix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static void key_from(uint64_t seed, uint64_t stream, uint32_t key[2])
{
    uint64_t k = ann_mix64(seed ^ ann_mix64(stream));
    key[0] = (uint32_t)k;
    key[1] = (uint32_t)(k >> 32);
}

void ann_rng_init(ann_rng *r, uint64_t seed, uint64_t purpose)
{
    key_from(seed, ~purpose, r->key);
    r->counter = 0;
    r->left = 0;
}

uint32_t ann_rng_u32(ann_rng *r)
{
    if (r->left == 0) {
        uint32_t ctr[4] = {(uint32_t)r->counter, (uint32_t)(r->counter >> 32), 0x52414e44u, 0};
        ann_philox(ctr, r->key, r->buf);
        r->counter++;
        r->left = 4;
    }
    return r->buf[--r->left];
}

double ann_rng_uniform(ann_rng *r)
{
    uint64_t hi = ann_rng_u32(r) >> 5, lo = ann_rng_u32(r) >> 6;   /* 53 bits */
    return (double)(hi * 67108864u + lo) * (1.0 / 9007199254740992.0);
}

double ann_rng_normal(ann_rng *r)
{
    double u1 = 1.0 - ann_rng_uniform(r);    /* (0, 1] */
    double u2 = ann_rng_uniform(r);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

size_t ann_rng_below(ann_rng *r, size_t n)
{
    return n ? (size_t)(ann_rng_uniform(r) * (double)n) % n : 0;
}

void ann_add_noise(const caimg_ann *m, size_t l, float *out, size_t nb,
                   uint64_t stream, uint64_t index0)
{
    const ann_layer *L = &m->L[l];
    const size_t n = L->osize;
    const float sig = (float)L->sigma;
    const float *sd = L->noise_sd && L->noise_mode == CAIMG_ANN_NOISE_REL ? L->noise_sd : NULL;
    uint32_t key[2];
    key_from(m->seed, stream, key);
    float z[1024];
    for (size_t i = 0; i < nb; i++) {
        float *y = out + i * n;
        for (size_t u = 0; u < n; u += 1024) {
            size_t cnt = CAIMG_MIN((size_t)1024, n - u);
            ann_normals(key, index0 + i, (uint32_t)l, u, cnt, z);
            if (sd)
                for (size_t k = 0; k < cnt; k++) y[u + k] += sig * sd[u + k] * z[k];
            else
                for (size_t k = 0; k < cnt; k++) y[u + k] += sig * z[k];
        }
    }
}

/* ---- BLAS and OpenMP threads ------------------------------------------------ */

int ann_blas_single_begin(void)
{
#ifdef HAVE_OPENBLAS
    int saved = openblas_get_num_threads();
    if (saved != 1) openblas_set_num_threads(1);
    return saved;
#else
    return 1;
#endif
}

void ann_blas_single_end(int saved)
{
#ifdef HAVE_OPENBLAS
    if (saved != 1) openblas_set_num_threads(saved);
#else
    CAIMG_UNUSED(saved);
#endif
}

int ann_threads_for(size_t nchunks, int nscratch)
{
    int t = caimg_nthreads();
    if (t > nscratch) t = nscratch;
    if ((size_t)t > nchunks) t = (int)(nchunks ? nchunks : 1);
    return t < 1 ? 1 : t;
}

/* ---- presets --------------------------------------------------------------- */

/* The MLP: one hidden layer of 256 ELUs with a noise point, a dense readout.
 * The 2-layer conv core with factorised readout follows Klindt et al.
 * (2017) and Cadena et al. (2019): a smooth first-layer filter bank, a
 * second conv layer, and per-neuron spatial masks and feature weights with
 * sparsity and smoothness penalties. */
/* The energy preset is one conv layer whose last 48 channels are squared
 * (the energy model of complex cells, Adelson & Bergen 1985) beside 16
 * rectified ones.  A complex cell is learned (to 0.7-0.9) or not (about 0)
 * depending on whether a quadrature pair of squared channels fits its
 * orientation and frequency, so the squared channels must be many: with
 * 16 of them the held-out correlation of complex cells with their true
 * rates was 0.53 or 0.21 by seed on caimg simulate data at 6 repeats, with
 * 48 it is 0.64 and 0.66 (conv2: 0.42 and 0.41), simple cells 0.75-0.78
 * (conv2: 0.78-0.80).  It needs fewer multiply-adds than conv2 (about
 * 60 % for 60 neurons of 24x24 pixels, the readout included). */
static const char *const preset_names[] = {"mlp", "conv2", "ln", "energy", NULL};
static const char *const preset_texts[] = {
    "input; dense 256 name=fc1; elu name=elu1; noise name=h1; "
    "readout dense l1=0.0001; softplus name=output",
    "input; conv 16 9x9 pad=same smooth=0.01 name=conv1; elu name=elu1; noise name=h1; "
    "conv 16 7x7 pad=same name=conv2; elu name=elu2; noise name=h2; "
    "readout factorised l1=0.01 smooth=0.01; softplus name=output",
    "input; readout dense l1=0.0001; softplus name=output",
    "input; conv 64 9x9 pad=same smooth=0.01 name=conv1; square channels=48; elu name=elu1; "
    "noise name=h1; readout factorised l1=0.01 smooth=0.01; softplus name=output",
};

const char *caimg_ann_preset(const char *name)
{
    for (size_t i = 0; preset_names[i]; i++)
        if (name && strcmp(name, preset_names[i]) == 0) return preset_texts[i];
    return NULL;
}

const char *const *caimg_ann_preset_names(void)
{
    return preset_names;
}

/* ---- the architecture language ---------------------------------------------- */

typedef struct {
    const char *kw;
    ann_ltype type;
} keyword;

static const keyword keywords[] = {
    {"input", ANN_INPUT}, {"conv", ANN_CONV}, {"dense", ANN_DENSE},
    {"pool", ANN_POOLMAX}, {"relu", ANN_RELU}, {"elu", ANN_ELU},
    {"elu1", ANN_ELU1}, {"softplus", ANN_SOFTPLUS}, {"square", ANN_SQUARE},
    {"noise", ANN_NOISE},
    {"readout", ANN_READOUT_FACT}, {NULL, ANN_INPUT}
};

static const char *type_keyword(ann_ltype t)
{
    switch (t) {
    case ANN_POOLAVG: return "pool";
    case ANN_READOUT_DENSE: return "readout";
    default:
        for (const keyword *k = keywords; k->kw; k++)
            if (k->type == t) return k->kw;
        return "?";
    }
}

static int is_elementwise(ann_ltype t)
{
    return t == ANN_RELU || t == ANN_ELU || t == ANN_ELU1 || t == ANN_SOFTPLUS ||
           t == ANN_SQUARE || t == ANN_NOISE;
}

/* Context for messages: which layer of the text is being read. */
typedef struct {
    size_t index;        /* 1-based layer number in the text */
    char text[96];       /* the layer's text, shortened */
} pctx;

static int perr(const pctx *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int perr(const pctx *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return caimg_error(CAIMG_EINVAL, "architecture layer %zu ('%s'): %s", p->index, p->text, msg);
}

static int parse_size(const char *s, size_t *v)
{
    char *end;
    if (!*s || !isdigit((unsigned char)*s)) return -1;
    errno = 0;
    unsigned long long x = strtoull(s, &end, 10);
    if (errno || *end || x == 0 || x > 1000000) return -1;
    *v = (size_t)x;
    return 0;
}

static int parse_nonneg(const char *s, double *v)
{
    char *end;
    errno = 0;
    double x = strtod(s, &end);
    if (errno || end == s || *end || !(x >= 0) || !isfinite(x)) return -1;
    *v = x;
    return 0;
}

/* "9" or "9x7" (rows x columns). */
static int parse_kernel(const char *s, size_t *kh, size_t *kw)
{
    char buf[32];
    if (strlen(s) >= sizeof buf) return -1;
    strcpy(buf, s);
    char *x = strchr(buf, 'x');
    if (!x) {
        if (parse_size(buf, kh)) return -1;
        *kw = *kh;
        return 0;
    }
    *x = '\0';
    if (parse_size(buf, kh) || parse_size(x + 1, kw)) return -1;
    return 0;
}

static int valid_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= ANN_NAME_MAX) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '-') return 0;
    return 1;
}

/* Parse one layer statement (already split into tokens). */
static int parse_layer(const pctx *p, char **tok, size_t ntok, ann_layer *L)
{
    memset(L, 0, sizeof *L);
    L->stride = 1;
    L->noise_mode = CAIMG_ANN_NOISE_REL;
    L->p_w = L->p_b = L->p_mask = L->p_feat = SIZE_MAX;
    const keyword *k = keywords;
    while (k->kw && strcmp(k->kw, tok[0]) != 0) k++;
    if (!k->kw)
        return perr(p, "unknown layer type '%s' (expected input, conv, dense, pool, relu, "
                    "elu, elu1, softplus, square, noise or readout)", tok[0]);
    L->type = k->type;
    size_t npos = 0;
    char *pos[4];
    for (size_t i = 1; i < ntok; i++) {
        char *eq = strchr(tok[i], '=');
        if (!eq) {
            if (npos == 4) return perr(p, "too many arguments");
            pos[npos++] = tok[i];
            continue;
        }
        *eq = '\0';
        const char *key = tok[i], *val = eq + 1;
        if (!strcmp(key, "name")) {
            if (!valid_name(val))
                return perr(p, "bad name '%s' (use up to %d letters, digits, '_' or '-')",
                            val, ANN_NAME_MAX - 1);
            strcpy(L->name, val);
        } else if (!strcmp(key, "noise_rel") || !strcmp(key, "noise_abs")) {
            if (parse_nonneg(val, &L->sigma))
                return perr(p, "%s must be a non-negative number, not '%s'", key, val);
            L->noise_mode = key[6] == 'r' ? CAIMG_ANN_NOISE_REL : CAIMG_ANN_NOISE_ABS;
        } else if (!strcmp(key, "stride") && (L->type == ANN_CONV || L->type == ANN_POOLMAX)) {
            if (parse_size(val, &L->stride)) return perr(p, "bad stride '%s'", val);
            L->stride_given = 1;
        } else if (!strcmp(key, "pad") && L->type == ANN_CONV) {
            if (!strcmp(val, "same")) L->pad_mode = ANN_PAD_SAME;
            else if (!strcmp(val, "valid")) L->pad_mode = ANN_PAD_VALID;
            else {
                char *end;
                errno = 0;
                unsigned long v = strtoul(val, &end, 10);
                if (errno || end == val || *end || v > 1000)
                    return perr(p, "bad padding '%s' (same, valid or a number)", val);
                L->pad_mode = ANN_PAD_EXPLICIT;
                L->pad = v;
            }
        } else if (!strcmp(key, "smooth") &&
                   (L->type == ANN_CONV || L->type == ANN_READOUT_FACT)) {
            if (parse_nonneg(val, &L->smooth)) return perr(p, "bad smooth '%s'", val);
        } else if (!strcmp(key, "channels") && L->type == ANN_SQUARE) {
            if (parse_size(val, &L->nsq)) return perr(p, "bad channel count '%s'", val);
        } else if (!strcmp(key, "l1") && L->type == ANN_READOUT_FACT) {
            if (parse_nonneg(val, &L->l1)) return perr(p, "bad l1 '%s'", val);
        } else {
            return perr(p, "option '%s' does not apply to a %s layer", key, tok[0]);
        }
    }
    size_t want = 0;
    switch (L->type) {
    case ANN_CONV:
        want = 2;
        if (npos == 2) {
            if (parse_size(pos[0], &L->oc)) return perr(p, "bad channel count '%s'", pos[0]);
            if (parse_kernel(pos[1], &L->kh, &L->kw))
                return perr(p, "bad kernel size '%s' (expected K or KxK)", pos[1]);
        }
        break;
    case ANN_DENSE:
        want = 1;
        if (npos == 1 && parse_size(pos[0], &L->oc))
            return perr(p, "bad unit count '%s'", pos[0]);
        break;
    case ANN_POOLMAX:
        want = 2;
        if (npos == 2) {
            if (!strcmp(pos[0], "avg")) L->type = ANN_POOLAVG;
            else if (strcmp(pos[0], "max"))
                return perr(p, "pool type must be max or avg, not '%s'", pos[0]);
            if (parse_kernel(pos[1], &L->kh, &L->kw))
                return perr(p, "bad window size '%s' (expected K or KxK)", pos[1]);
            if (!L->stride_given) {
                if (L->kh != L->kw)
                    return perr(p, "a non-square window needs an explicit stride");
                L->stride = L->kh;
            }
        }
        break;
    case ANN_READOUT_FACT:
        want = 1;
        if (npos == 1) {
            if (!strcmp(pos[0], "dense")) {
                L->type = ANN_READOUT_DENSE;
                if (L->smooth > 0) return perr(p, "smooth applies to factorised readouts only");
            } else if (strcmp(pos[0], "factorised") && strcmp(pos[0], "factorized"))
                return perr(p, "readout must be factorised or dense, not '%s'", pos[0]);
        }
        break;
    default:
        want = 0;
        break;
    }
    if (npos != want)
        return perr(p, "%s takes %zu argument%s, got %zu", tok[0], want, want == 1 ? "" : "s", npos);
    return 0;
}

/* Split the text into layer statements and parse each. */
static int parse_arch(const char *text, ann_layer **out, size_t *nout)
{
    size_t len = strlen(text);
    char *buf = caimg_malloc(len + 1, 1, "architecture text");
    if (!buf) return CAIMG_ENOMEM;
    /* Strip comments, turn newlines into ';'. */
    size_t j = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '#') {
            while (i < len && text[i] != '\n') i++;
            if (i < len) buf[j++] = ';';
            continue;
        }
        buf[j++] = text[i] == '\n' ? ';' : text[i];
    }
    buf[j] = '\0';
    size_t cap = 8, n = 0;
    ann_layer *L = caimg_malloc(cap, sizeof *L, "architecture");
    if (!L) { free(buf); return CAIMG_ENOMEM; }
    int st = 0;
    char *save = NULL;
    for (char *stmt = buf; stmt && !st; stmt = save) {
        char *semi = strchr(stmt, ';');
        if (semi) { *semi = '\0'; save = semi + 1; } else save = NULL;
        char *tok[32];
        size_t ntok = 0;
        pctx p = {n + 1, ""};
        /* Keep the statement for messages, whitespace collapsed. */
        {
            size_t q = 0;
            int sp = 0;
            for (const char *c = stmt; *c && q + 4 < sizeof p.text; c++) {
                if (isspace((unsigned char)*c)) { sp = q > 0; continue; }
                if (sp) { p.text[q++] = ' '; sp = 0; }
                p.text[q++] = *c;
            }
            p.text[q] = '\0';
        }
        for (char *t = strtok(stmt, " \t\r"); t; t = strtok(NULL, " \t\r")) {
            if (ntok == 32) { st = perr(&p, "too many words"); break; }
            tok[ntok++] = t;
        }
        if (st) break;
        if (ntok == 0) continue;
        if (n == cap) {
            ann_layer *nl = realloc(L, 2 * cap * sizeof *L);
            if (!nl) { st = caimg_error(CAIMG_ENOMEM, "out of memory parsing architecture"); break; }
            L = nl;
            cap *= 2;
        }
        st = parse_layer(&p, tok, ntok, &L[n]);
        if (!st && L[n].type == ANN_INPUT && n > 0)
            st = perr(&p, "input can only be the first layer");
        n++;
    }
    free(buf);
    if (!st && n == 0) st = caimg_error(CAIMG_EINVAL, "architecture is empty");
    if (st) { free(L); return st; }
    *out = L;
    *nout = n;
    return 0;
}

/* ---- building a model -------------------------------------------------------- */

static int add_tensor(caimg_ann *m, size_t layer, const char *what, int kind, int rank,
                      size_t d0, size_t d1, size_t d2, size_t d3, size_t *off)
{
    ann_tensor_info *t = &m->tens[m->ntens++];
    snprintf(t->name, sizeof t->name, "%s/%s", m->L[layer].name, what);
    t->rank = rank;
    size_t d[4] = {d0, d1, d2, d3};
    t->size = 1;
    for (int i = 0; i < 4; i++) {
        t->dims[i] = i < rank ? d[i] : 1;
        if (i < rank) t->size *= d[i];
    }
    t->off = m->nparam;
    t->layer = (int)layer;
    t->kind = kind;
    *off = t->off;
    m->nparam += t->size;
    return 0;
}

/* Infer shapes layer by layer and lay out the parameters. */
static int build_shapes(caimg_ann *m, size_t C, size_t H, size_t W)
{
    size_t c = C, h = H, w = W;
    int nread = 0;
    m->ntens = 0;
    m->nparam = 0;
    m->max_col = 0;
    for (size_t l = 0; l < m->nl; l++) {
        ann_layer *L = &m->L[l];
        pctx p = {l, ""};
        snprintf(p.text, sizeof p.text, "%s %s", type_keyword(L->type), L->name);
        L->ic = c; L->ih = h; L->iw = w;
        if (nread && !is_elementwise(L->type))
            return perr(&p, "only elementwise layers may follow the readout");
        switch (L->type) {
        case ANN_INPUT:
            break;
        case ANN_CONV: {
            size_t ph, pw;
            if (L->pad_mode == ANN_PAD_SAME) {
                if (L->kh % 2 == 0 || L->kw % 2 == 0 || L->stride != 1)
                    return perr(&p, "pad=same needs an odd kernel and stride 1");
                ph = (L->kh - 1) / 2;
                pw = (L->kw - 1) / 2;
            } else {
                ph = pw = L->pad_mode == ANN_PAD_EXPLICIT ? L->pad : 0;
            }
            if (h + 2 * ph < L->kh || w + 2 * pw < L->kw)
                return perr(&p, "kernel %zux%zu is larger than its padded %zux%zu input",
                            L->kh, L->kw, h + 2 * ph, w + 2 * pw);
            L->pad_t = ph;
            L->pad_l = pw;
            h = (h + 2 * ph - L->kh) / L->stride + 1;
            w = (w + 2 * pw - L->kw) / L->stride + 1;
            c = L->oc;
            L->col_size = L->ic * L->kh * L->kw * h * w;
            m->max_col = CAIMG_MAX(m->max_col, L->col_size);
            break;
        }
        case ANN_DENSE:
            c = L->oc; h = w = 1;
            break;
        case ANN_POOLMAX:
        case ANN_POOLAVG:
            if (h < L->kh || w < L->kw)
                return perr(&p, "window %zux%zu is larger than its %zux%zu input", L->kh, L->kw, h, w);
            h = (h - L->kh) / L->stride + 1;
            w = (w - L->kw) / L->stride + 1;
            break;
        case ANN_READOUT_FACT:
        case ANN_READOUT_DENSE:
            if (nread) return perr(&p, "a model has exactly one readout");
            nread = 1;
            m->readout = l;
            c = m->nout; h = w = 1;
            break;
        case ANN_SQUARE:
            if (L->nsq > c)
                return perr(&p, "channels=%zu, but its input has only %zu", L->nsq, c);
            break;
        default:
            break;
        }
        L->oc = c; L->oh = h; L->ow = w;
        L->isize = L->ic * L->ih * L->iw;
        L->osize = c * h * w;
        if (L->osize == 0) return perr(&p, "output is empty");
    }
    if (!nread) return caimg_error(CAIMG_EINVAL, "architecture has no readout layer");
    if (m->L[m->nl - 1].sigma > 0)
        return caimg_error(CAIMG_EINVAL, "architecture: noise on the output layer '%s' is not "
                           "supported (it could make predicted rates negative)",
                           m->L[m->nl - 1].name);
    /* Parameters, in layer order. */
    m->tens = caimg_calloc(3 * m->nl + 1, sizeof *m->tens, "tensor table");
    if (!m->tens) return CAIMG_ENOMEM;
    for (size_t l = 0; l < m->nl; l++) {
        ann_layer *L = &m->L[l];
        switch (L->type) {
        case ANN_CONV:
            add_tensor(m, l, "weight", ANN_T_WEIGHT, 4, L->oc, L->ic, L->kh, L->kw, &L->p_w);
            add_tensor(m, l, "bias", ANN_T_BIAS, 1, L->oc, 0, 0, 0, &L->p_b);
            break;
        case ANN_DENSE:
        case ANN_READOUT_DENSE:
            add_tensor(m, l, "weight", ANN_T_WEIGHT, 2, L->osize, L->isize, 0, 0, &L->p_w);
            add_tensor(m, l, "bias", ANN_T_BIAS, 1, L->osize, 0, 0, 0, &L->p_b);
            break;
        case ANN_READOUT_FACT:
            add_tensor(m, l, "mask", ANN_T_MASK, 3, L->osize, L->ih, L->iw, 0, &L->p_mask);
            add_tensor(m, l, "features", ANN_T_FEAT, 2, L->osize, L->ic, 0, 0, &L->p_feat);
            add_tensor(m, l, "bias", ANN_T_BIAS, 1, L->osize, 0, 0, 0, &L->p_b);
            break;
        default:
            break;
        }
    }
    return 0;
}

/* Default names: the type keyword and a counter ("conv1", "elu2"); the
 * input is "input", the readout "readout".  A keyword that ends in a digit
 * gets an underscore first ("elu1_1"), so names cannot be mistaken. */
static int assign_names(caimg_ann *m)
{
    for (size_t l = 0; l < m->nl; l++) {
        ann_layer *L = &m->L[l];
        if (L->name[0]) continue;
        if (L->type == ANN_INPUT) { strcpy(L->name, "input"); continue; }
        if (L->type == ANN_READOUT_FACT || L->type == ANN_READOUT_DENSE) {
            strcpy(L->name, "readout");
            continue;
        }
        const char *kw = type_keyword(L->type);
        size_t count = 0;
        for (size_t q = 0; q <= l; q++)
            if (!strcmp(type_keyword(m->L[q].type), kw)) count++;
        size_t kl = strlen(kw);
        for (;; count++) {
            snprintf(L->name, sizeof L->name, "%s%s%zu", kw,
                     isdigit((unsigned char)kw[kl - 1]) ? "_" : "", count);
            int clash = 0;
            for (size_t q = 0; q < m->nl; q++)
                if (q != l && !strcmp(m->L[q].name, L->name)) clash = 1;
            if (!clash) break;
        }
    }
    for (size_t a = 0; a < m->nl; a++)
        for (size_t b = a + 1; b < m->nl; b++)
            if (!strcmp(m->L[a].name, m->L[b].name))
                return caimg_error(CAIMG_EINVAL, "architecture: two layers are named '%s'",
                                   m->L[a].name);
    return 0;
}

static int alloc_noise_sd(ann_layer *L)
{
    if (L->noise_sd || L->sigma <= 0 || L->noise_mode != CAIMG_ANN_NOISE_REL) return 0;
    L->noise_sd = caimg_malloc(L->osize, sizeof *L->noise_sd, "noise scales");
    if (!L->noise_sd) return CAIMG_ENOMEM;
    /* Until calibrated on data the scale is 1, i.e. the noise is absolute. */
    for (size_t i = 0; i < L->osize; i++) L->noise_sd[i] = 1.0f;
    return 0;
}

static void init_params(caimg_ann *m)
{
    ann_rng r;
    ann_rng_init(&r, m->seed, 0x494e4954u);   /* "INIT" */
    for (size_t k = 0; k < m->ntens; k++) {
        const ann_tensor_info *t = &m->tens[k];
        const ann_layer *L = &m->L[t->layer];
        float *p = m->theta + t->off;
        double sd = 0.0;
        switch (t->kind) {
        case ANN_T_WEIGHT:
            /* He initialisation keeps activations of order one through
             * ELU stacks; readouts start small so that the first
             * predictions sit near the biases (the mean responses). */
            if (L->type == ANN_CONV) sd = sqrt(2.0 / (double)(L->ic * L->kh * L->kw));
            else if (L->type == ANN_DENSE) sd = sqrt(2.0 / (double)L->isize);
            else sd = 0.1 / sqrt((double)L->isize);
            break;
        case ANN_T_MASK: sd = 1.0 / sqrt((double)(L->ih * L->iw)); break;
        case ANN_T_FEAT: sd = 0.1 / sqrt((double)L->ic); break;
        default: sd = 0.0; break;
        }
        for (size_t i = 0; i < t->size; i++)
            p[i] = sd > 0 ? (float)(sd * ann_rng_normal(&r)) : 0.0f;
    }
}

caimg_ann *caimg_ann_create(const char *arch, size_t channels, size_t height,
                            size_t width, size_t nout, uint64_t seed)
{
    if (!arch) { caimg_error(CAIMG_EINVAL, "no architecture given"); return NULL; }
    if (!channels || !height || !width || !nout) {
        caimg_error(CAIMG_EINVAL, "model needs a non-empty input (%zux%zux%zu) and at least one neuron",
                    channels, height, width);
        return NULL;
    }
    const char *preset = caimg_ann_preset(arch);
    if (preset) arch = preset;
    caimg_ann *m = caimg_calloc(1, sizeof *m, "model");
    if (!m) return NULL;
    m->nout = nout;
    m->seed = seed;
    m->in_mean = 0.0;
    m->in_sd = 1.0;
    m->in_lo = m->in_hi = NAN;
    ann_layer *parsed;
    size_t np;
    if (parse_arch(arch, &parsed, &np)) { free(m); return NULL; }
    /* The input layer is implicit when the text does not start with one. */
    if (parsed[0].type != ANN_INPUT) {
        m->L = caimg_malloc(np + 1, sizeof *m->L, "layers");
        if (!m->L) { free(parsed); free(m); return NULL; }
        memset(&m->L[0], 0, sizeof m->L[0]);
        m->L[0].type = ANN_INPUT;
        m->L[0].stride = 1;
        m->L[0].p_w = m->L[0].p_b = m->L[0].p_mask = m->L[0].p_feat = SIZE_MAX;
        memcpy(m->L + 1, parsed, np * sizeof *parsed);
        free(parsed);
        m->nl = np + 1;
    } else {
        m->L = parsed;
        m->nl = np;
    }
    size_t nread = 0;
    for (size_t l = 0; l < m->nl; l++)
        nread += m->L[l].type == ANN_READOUT_FACT || m->L[l].type == ANN_READOUT_DENSE;
    if (nread > 1) {
        caimg_error(CAIMG_EINVAL, "architecture: a model has exactly one readout, this one has %zu",
                    nread);
        caimg_ann_free(m);
        return NULL;
    }
    if (strcmp(m->L[0].name, "") && strcmp(m->L[0].name, "input")) {
        caimg_error(CAIMG_EINVAL, "architecture: the input layer is always named 'input'");
        caimg_ann_free(m);
        return NULL;
    }
    if (assign_names(m) || build_shapes(m, channels, height, width)) {
        caimg_ann_free(m);
        return NULL;
    }
    m->theta = caimg_calloc(m->nparam ? m->nparam : 1, sizeof *m->theta, "model parameters");
    m->out_scale = caimg_malloc(nout, sizeof *m->out_scale, "output scale");
    m->out_offset = caimg_calloc(nout, sizeof *m->out_offset, "output offset");
    if (!m->theta || !m->out_scale || !m->out_offset) { caimg_ann_free(m); return NULL; }
    for (size_t k = 0; k < nout; k++) m->out_scale[k] = 1.0f;
    for (size_t l = 0; l < m->nl; l++)
        if (alloc_noise_sd(&m->L[l])) { caimg_ann_free(m); return NULL; }
    caimg_ann_prep_init(&m->prep, height, width);
    init_params(m);
    return m;
}

caimg_ann *caimg_ann_clone(const caimg_ann *src)
{
    caimg_ann *m = caimg_calloc(1, sizeof *m, "model");
    if (!m) return NULL;
    *m = *src;
    m->L = NULL; m->theta = NULL; m->tens = NULL;
    m->nmem = 0; m->mem = NULL;
    m->L = caimg_malloc(src->nl, sizeof *m->L, "layers");
    m->tens = caimg_malloc(src->ntens ? src->ntens : 1, sizeof *m->tens, "tensor table");
    m->theta = caimg_malloc(src->nparam ? src->nparam : 1, sizeof *m->theta, "model parameters");
    m->out_scale = caimg_malloc(src->nout, sizeof *m->out_scale, "output scale");
    m->out_offset = caimg_malloc(src->nout, sizeof *m->out_offset, "output offset");
    if (!m->L || !m->tens || !m->theta || !m->out_scale || !m->out_offset) {
        free(m->L); free(m->tens); free(m->theta); free(m->out_scale); free(m->out_offset);
        free(m);
        return NULL;
    }
    memcpy(m->out_scale, src->out_scale, src->nout * sizeof *m->out_scale);
    memcpy(m->out_offset, src->out_offset, src->nout * sizeof *m->out_offset);
    memcpy(m->L, src->L, src->nl * sizeof *m->L);
    memcpy(m->tens, src->tens, src->ntens * sizeof *m->tens);
    memcpy(m->theta, src->theta, src->nparam * sizeof *m->theta);
    for (size_t l = 0; l < m->nl; l++) m->L[l].noise_sd = NULL;
    for (size_t l = 0; l < m->nl; l++) {
        if (!src->L[l].noise_sd) continue;
        m->L[l].noise_sd = caimg_malloc(m->L[l].osize, sizeof(float), "noise scales");
        if (!m->L[l].noise_sd) { caimg_ann_free(m); return NULL; }
        memcpy(m->L[l].noise_sd, src->L[l].noise_sd, m->L[l].osize * sizeof(float));
    }
    for (size_t k = 0; k < src->nmem; k++) {
        caimg_ann *c = caimg_ann_clone(src->mem[k]);
        if (!c || caimg_ann_ensemble_add(m, c)) {
            caimg_ann_free(c);
            caimg_ann_free(m);
            return NULL;
        }
    }
    return m;
}

void caimg_ann_free(caimg_ann *m)
{
    if (!m) return;
    if (m->L)
        for (size_t l = 0; l < m->nl; l++) free(m->L[l].noise_sd);
    free(m->L);
    free(m->tens);
    free(m->theta);
    free(m->out_scale);
    free(m->out_offset);
    for (size_t k = 0; k < m->nmem; k++) caimg_ann_free(m->mem[k]);
    free(m->mem);
    free(m);
}

/* ---- ensembles ----------------------------------------------------------------- */

int caimg_ann_ensemble_add(caimg_ann *m, caimg_ann *member)
{
    if (!member || member == m || member->nmem)
        return caimg_error(CAIMG_EINVAL, "an ensemble member must be a single network");
    const caimg_ann_prep *a = &m->prep, *b = &member->prep;
    if (member->L[0].osize != m->L[0].osize || member->L[0].oc != m->L[0].oc ||
        member->L[0].oh != m->L[0].oh || member->nout != m->nout)
        return caimg_error(CAIMG_EINVAL, "ensemble members must share the input (%zux%zux%zu, not "
                           "%zux%zux%zu) and the neurons (%zu, not %zu)", m->L[0].oc, m->L[0].oh,
                           m->L[0].ow, member->L[0].oc, member->L[0].oh, member->L[0].ow, m->nout,
                           member->nout);
    if (a->src_h != b->src_h || a->src_w != b->src_w || a->crop_y != b->crop_y ||
        a->crop_x != b->crop_x || a->crop_h != b->crop_h || a->crop_w != b->crop_w)
        return caimg_error(CAIMG_EINVAL, "ensemble members must share the image preprocessing");
    caimg_ann **mem = realloc(m->mem, (m->nmem + 1) * sizeof *mem);
    if (!mem) return caimg_error(CAIMG_ENOMEM, "out of memory");
    m->mem = mem;
    m->mem[m->nmem++] = member;
    return 0;
}

size_t caimg_ann_members(const caimg_ann *m)
{
    return 1 + m->nmem;
}

const caimg_ann *caimg_ann_member(const caimg_ann *m, size_t k)
{
    return k == 0 ? m : k <= m->nmem ? m->mem[k - 1] : NULL;
}

/* ---- canonical text ---------------------------------------------------------- */

typedef struct {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (k < 0) { b->oom = 1; return; }
        if ((size_t)k < b->cap - b->len) { b->len += (size_t)k; return; }
        size_t nc = 2 * b->cap + (size_t)k;
        char *ns = realloc(b->s, nc);
        if (!ns) { b->oom = 1; return; }
        b->s = ns;
        b->cap = nc;
    }
}

char *caimg_ann_arch_text(const caimg_ann *m)
{
    sbuf b = {NULL, 0, 256, 0};
    b.s = caimg_malloc(b.cap, 1, "architecture text");
    if (!b.s) return NULL;
    b.s[0] = '\0';
    for (size_t l = 0; l < m->nl; l++) {
        const ann_layer *L = &m->L[l];
        sb_printf(&b, "%s", type_keyword(L->type));
        switch (L->type) {
        case ANN_CONV:
            sb_printf(&b, " %zu %zux%zu stride=%zu", L->oc, L->kh, L->kw, L->stride);
            if (L->pad_mode == ANN_PAD_SAME) sb_printf(&b, " pad=same");
            else sb_printf(&b, " pad=%zu", L->pad_mode == ANN_PAD_EXPLICIT ? L->pad : (size_t)0);
            sb_printf(&b, " smooth=%.9g", L->smooth);
            break;
        case ANN_DENSE:
            sb_printf(&b, " %zu", L->oc);
            break;
        case ANN_POOLMAX:
        case ANN_POOLAVG:
            sb_printf(&b, " %s %zux%zu stride=%zu", L->type == ANN_POOLMAX ? "max" : "avg",
                      L->kh, L->kw, L->stride);
            break;
        case ANN_READOUT_FACT:
            sb_printf(&b, " factorised l1=%.9g smooth=%.9g", L->l1, L->smooth);
            break;
        case ANN_READOUT_DENSE:
            sb_printf(&b, " dense l1=%.9g", L->l1);
            break;
        case ANN_SQUARE:
            if (L->nsq) sb_printf(&b, " channels=%zu", L->nsq);
            break;
        default:
            break;
        }
        if (L->type != ANN_INPUT) sb_printf(&b, " name=%s", L->name);
        if (L->sigma > 0)
            sb_printf(&b, " noise_%s=%.9g", L->noise_mode == CAIMG_ANN_NOISE_REL ? "rel" : "abs",
                      L->sigma);
        sb_printf(&b, "\n");
    }
    if (b.oom) {
        free(b.s);
        caimg_error(CAIMG_ENOMEM, "out of memory formatting the architecture");
        return NULL;
    }
    return b.s;
}

/* ---- queries -------------------------------------------------------------------- */

uint64_t caimg_ann_seed(const caimg_ann *m) { return m->seed; }
size_t caimg_ann_input_size(const caimg_ann *m) { return m->L[0].osize; }
size_t caimg_ann_output_size(const caimg_ann *m) { return m->nout; }
size_t caimg_ann_nlayers(const caimg_ann *m) { return m->nl; }
size_t caimg_ann_nparams(const caimg_ann *m) { return m->nparam; }

int caimg_ann_layer_find(const caimg_ann *m, const char *name)
{
    for (size_t l = 0; name && l < m->nl; l++)
        if (!strcmp(m->L[l].name, name)) return (int)l;
    return -1;
}

const char *caimg_ann_layer_name(const caimg_ann *m, size_t l)
{
    return l < m->nl ? m->L[l].name : NULL;
}

const char *caimg_ann_layer_type(const caimg_ann *m, size_t l)
{
    if (l >= m->nl) return NULL;
    switch (m->L[l].type) {
    case ANN_POOLMAX: return "pool max";
    case ANN_POOLAVG: return "pool avg";
    case ANN_READOUT_FACT: return "readout factorised";
    case ANN_READOUT_DENSE: return "readout dense";
    default: return type_keyword(m->L[l].type);
    }
}

void caimg_ann_layer_shape(const caimg_ann *m, size_t l, size_t shape[3])
{
    if (l >= m->nl) { shape[0] = shape[1] = shape[2] = 0; return; }
    shape[0] = m->L[l].oc;
    shape[1] = m->L[l].oh;
    shape[2] = m->L[l].ow;
}

size_t caimg_ann_layer_size(const caimg_ann *m, size_t l)
{
    return l < m->nl ? m->L[l].osize : 0;
}

/* Tensors: trainable ones in layer order, then noise scales, then the
 * output scale and offset. */
size_t caimg_ann_ntensors(const caimg_ann *m)
{
    size_t n = m->ntens + 2;
    for (size_t l = 0; l < m->nl; l++) n += m->L[l].noise_sd != NULL;
    return n;
}

int caimg_ann_tensor_get(caimg_ann *m, size_t k, caimg_ann_tensor *t)
{
    if (k < m->ntens) {
        const ann_tensor_info *ti = &m->tens[k];
        t->name = ti->name;
        t->rank = ti->rank;
        memcpy(t->dims, ti->dims, sizeof t->dims);
        t->size = ti->size;
        t->trainable = 1;
        t->data = m->theta + ti->off;
        return 0;
    }
    k -= m->ntens;
    for (size_t l = 0; l < m->nl; l++) {
        ann_layer *L = &m->L[l];
        if (!L->noise_sd) continue;
        if (k-- > 0) continue;
        snprintf(L->sd_name, sizeof L->sd_name, "%s/noise_sd", L->name);
        t->name = L->sd_name;
        t->rank = 3;
        t->dims[0] = L->oc; t->dims[1] = L->oh; t->dims[2] = L->ow; t->dims[3] = 1;
        t->size = L->osize;
        t->trainable = 0;
        t->data = L->noise_sd;
        return 0;
    }
    if (k < 2) {
        t->name = k == 0 ? "output/scale" : "output/offset";
        t->rank = 1;
        t->dims[0] = m->nout; t->dims[1] = t->dims[2] = t->dims[3] = 1;
        t->size = m->nout;
        t->trainable = 0;
        t->data = k == 0 ? m->out_scale : m->out_offset;
        return 0;
    }
    return caimg_error(CAIMG_EINVAL, "model has no such tensor");
}

int caimg_ann_tensor_find(const caimg_ann *m, const char *name)
{
    for (size_t k = 0; k < m->ntens; k++)
        if (!strcmp(m->tens[k].name, name)) return (int)k;
    size_t k = m->ntens;
    for (size_t l = 0; l < m->nl; l++) {
        if (!m->L[l].noise_sd) continue;
        size_t ln = strlen(m->L[l].name);
        if (!strncmp(name, m->L[l].name, ln) && !strcmp(name + ln, "/noise_sd")) return (int)k;
        k++;
    }
    if (!strcmp(name, "output/scale")) return (int)k;
    if (!strcmp(name, "output/offset")) return (int)k + 1;
    return -1;
}

int caimg_ann_set_input_norm(caimg_ann *m, double mean, double sd)
{
    if (!isfinite(mean) || !(sd > 0) || !isfinite(sd))
        return caimg_error(CAIMG_EINVAL, "input normalisation needs a finite mean and a positive sd "
                           "(got %g, %g)", mean, sd);
    m->in_mean = mean;
    m->in_sd = sd;
    return 0;
}

int caimg_ann_set_output_affine(caimg_ann *m, const float *scale, const float *offset)
{
    for (size_t k = 0; k < m->nout; k++) {
        if (scale && (!(scale[k] > 0) || !isfinite(scale[k])))
            return caimg_error(CAIMG_EINVAL, "output scale of neuron %zu is %g; it must be positive",
                               k, (double)scale[k]);
        if (offset && !isfinite(offset[k]))
            return caimg_error(CAIMG_EINVAL, "output offset of neuron %zu is not finite", k);
    }
    if (scale) memcpy(m->out_scale, scale, m->nout * sizeof *scale);
    if (offset) memcpy(m->out_offset, offset, m->nout * sizeof *offset);
    return 0;
}

void caimg_ann_get_input_norm(const caimg_ann *m, double *mean, double *sd)
{
    if (mean) *mean = m->in_mean;
    if (sd) *sd = m->in_sd;
}

int caimg_ann_set_input_range(caimg_ann *m, double lo, double hi)
{
    if (isnan(lo) && isnan(hi)) {
        m->in_lo = m->in_hi = NAN;
        return 0;
    }
    if (!isfinite(lo) || !isfinite(hi) || !(hi > lo))
        return caimg_error(CAIMG_EINVAL, "input range needs finite lo < hi (got %g, %g)", lo, hi);
    m->in_lo = lo;
    m->in_hi = hi;
    return 0;
}

int caimg_ann_get_input_range(const caimg_ann *m, double *lo, double *hi)
{
    if (lo) *lo = m->in_lo;
    if (hi) *hi = m->in_hi;
    return isnan(m->in_lo) ? -1 : 0;
}

/* ---- noise settings ------------------------------------------------------------- */

int caimg_ann_noise_set(caimg_ann *m, const char *name, double sigma, int mode)
{
    int l = caimg_ann_layer_find(m, name);
    if (l < 0) {
        char names[512] = "";
        for (size_t q = 0; q < m->nl; q++) {
            size_t u = strlen(names);
            snprintf(names + u, sizeof names - u, "%s%s", q ? ", " : "", m->L[q].name);
        }
        return caimg_error(CAIMG_EINVAL, "no layer named '%s' for noise (layers: %s)",
                           name ? name : "(null)", names);
    }
    if (!(sigma >= 0) || !isfinite(sigma))
        return caimg_error(CAIMG_EINVAL, "noise sigma for '%s' must be >= 0, not %g", name, sigma);
    if (mode != CAIMG_ANN_NOISE_REL && mode != CAIMG_ANN_NOISE_ABS)
        return caimg_error(CAIMG_EINVAL, "unknown noise mode %d", mode);
    ann_layer *L = &m->L[l];
    if ((size_t)l == m->nl - 1)
        return caimg_error(CAIMG_EINVAL, "noise on the output layer '%s' is not supported "
                           "(it would make predicted rates negative)", name);
    L->sigma = sigma;
    L->noise_mode = mode;
    int st = alloc_noise_sd(L);
    for (size_t k = 0; !st && k < m->nmem; k++) st = caimg_ann_noise_set(m->mem[k], name, sigma, mode);
    return st;
}

int caimg_ann_noise_get(const caimg_ann *m, size_t layer, double *sigma, int *mode)
{
    if (layer >= m->nl) return -1;
    if (sigma) *sigma = m->L[layer].sigma;
    if (mode) *mode = m->L[layer].noise_mode;
    return 0;
}

int caimg_ann_is_noisy(const caimg_ann *m)
{
    for (size_t l = 0; l < m->nl; l++)
        if (m->L[l].sigma > 0) return 1;
    return 0;
}

/* ---- work spaces ------------------------------------------------------------------ */

void caimg_ann_work_free(caimg_ann_work *w)
{
    if (!w) return;
    if (w->act)
        for (size_t l = 0; l < w->m->nl; l++) free(w->act[l]);
    if (w->grad)
        for (size_t l = 0; l < w->m->nl; l++) free(w->grad[l]);
    if (w->scratch)
        for (int t = 0; t < w->nscratch; t++) free(w->scratch[t]);
    free(w->act);
    free(w->grad);
    free(w->scratch);
    free(w->aux);
    free(w->cgrad);
    free(w->pgrad);
    if (w->sub)
        for (size_t k = 0; k < w->m->nmem; k++) caimg_ann_work_free(w->sub[k]);
    free(w->sub);
    free(w->ens_out);
    free(w->ens_dout);
    free(w->ens_dx);
    free(w);
}

/* A work space for m; for an ensemble, with its members' (`members`) or
 * for the first network alone (forward_one() only). */
static caimg_ann_work *work_alloc(const caimg_ann *m, size_t max_batch, int members)
{
    if (max_batch == 0) {
        caimg_error(CAIMG_EINVAL, "work space needs a batch of at least one image");
        return NULL;
    }
    caimg_ann_work *w = caimg_calloc(1, sizeof *w, "network work space");
    if (!w) return NULL;
    w->m = m;
    w->cap = max_batch;
    w->act = caimg_calloc(m->nl, sizeof *w->act, "activations");
    w->grad = caimg_calloc(m->nl, sizeof *w->grad, "gradients");
    if (!w->act || !w->grad) goto fail;
    for (size_t l = 0; l < m->nl; l++) {
        w->act[l] = caimg_calloc(caimg_mul(max_batch, m->L[l].osize), sizeof(float), "activations");
        w->grad[l] = caimg_calloc(caimg_mul(max_batch, m->L[l].osize), sizeof(float), "gradients");
        if (!w->act[l] || !w->grad[l]) goto fail;
    }
    size_t aux = ann_aux_size(m, m->readout);
    if (aux) {
        w->aux = caimg_malloc(caimg_mul(max_batch, aux), sizeof(float), "readout work space");
        if (!w->aux) goto fail;
    }
    w->nscratch = caimg_nthreads();
    if (w->nscratch < 1) w->nscratch = 1;
    w->scratch_size = ann_scratch_size(m);
    w->scratch = caimg_calloc((size_t)w->nscratch, sizeof *w->scratch, "scratch");
    if (!w->scratch) goto fail;
    for (int t = 0; t < w->nscratch; t++) {
        w->scratch[t] = caimg_malloc(w->scratch_size, sizeof(float), "convolution scratch");
        if (!w->scratch[t]) goto fail;
    }
    w->pgrad = caimg_calloc(m->nparam ? m->nparam : 1, sizeof(float), "parameter gradient");
    if (!w->pgrad) goto fail;
    if (m->nmem && members) {
        w->sub = caimg_calloc(m->nmem, sizeof *w->sub, "ensemble work spaces");
        w->ens_out = caimg_malloc(caimg_mul(max_batch, m->nout), sizeof(float), "ensemble output");
        w->ens_dout = caimg_malloc(caimg_mul(max_batch, m->nout), sizeof(float), "ensemble output");
        w->ens_dx = caimg_malloc(caimg_mul(max_batch, m->L[0].osize), sizeof(float), "ensemble input");
        if (!w->sub || !w->ens_out || !w->ens_dout || !w->ens_dx) goto fail;
        for (size_t k = 0; k < m->nmem; k++)
            if (!(w->sub[k] = caimg_ann_work_alloc(m->mem[k], max_batch))) goto fail;
    }
    return w;
fail:
    caimg_ann_work_free(w);
    return NULL;
}

caimg_ann_work *caimg_ann_work_alloc(const caimg_ann *m, size_t max_batch)
{
    return work_alloc(m, max_batch, 1);
}

const float *caimg_ann_work_activation(const caimg_ann_work *w, size_t layer)
{
    if (w->m->nmem && w->have_fwd && layer == w->m->nl - 1) return w->ens_out;
    return (w->have_fwd && layer < w->m->nl) ? w->act[layer] : NULL;
}

const float *caimg_ann_work_gradient(const caimg_ann_work *w, size_t layer)
{
    return (w->have_bwd && layer < w->m->nl) ? w->grad[layer] : NULL;
}

const float *caimg_ann_work_param_grad(const caimg_ann_work *w)
{
    return w->pgrad;
}

/* ---- forward ---------------------------------------------------------------------- */

static int check_work(const caimg_ann *m, const caimg_ann_work *w, size_t n)
{
    if (!w || w->m != m)
        return caimg_error(CAIMG_EINVAL, "work space was made for another model");
    if (n == 0 || n > w->cap)
        return caimg_error(CAIMG_EINVAL, "batch of %zu images, work space holds 1 to %zu", n, w->cap);
    return 0;
}

static void forward_chunk(const caimg_ann *m, caimg_ann_work *w, const float *x,
                          size_t b0, size_t nb, const caimg_ann_noise_draw *nd,
                          float *scratch)
{
    const size_t insz = m->L[0].osize;
    const float mu = (float)m->in_mean, inv = (float)(1.0 / m->in_sd);
    float *a0 = w->act[0] + b0 * insz;
    const float *xs = x + b0 * insz;
    for (size_t i = 0; i < nb * insz; i++) a0[i] = (xs[i] - mu) * inv;
    if (nd && m->L[0].sigma > 0) ann_add_noise(m, 0, a0, nb, nd->stream, nd->index0 + b0);
    size_t aux = ann_aux_size(m, m->readout);
    for (size_t l = 1; l < m->nl; l++) {
        const ann_layer *L = &m->L[l];
        float *out = w->act[l] + b0 * L->osize;
        ann_layer_forward(m, l, w->act[l - 1] + b0 * L->isize, out,
                          l == m->readout ? w->aux + b0 * aux : NULL, nb, scratch);
        if (nd && L->sigma > 0) ann_add_noise(m, l, out, nb, nd->stream, nd->index0 + b0);
    }
    float *y = w->act[m->nl - 1] + b0 * m->nout;
    for (size_t i = 0; i < nb; i++)
        for (size_t k = 0; k < m->nout; k++)
            y[i * m->nout + k] = y[i * m->nout + k] * m->out_scale[k] + m->out_offset[k];
}

/* The forward pass of the first network alone. */
static int forward_one(const caimg_ann *m, caimg_ann_work *w, const float *x, size_t n,
                       const caimg_ann_noise_draw *noise)
{
    int st = check_work(m, w, n);
    if (st) return st;
    size_t nch = (n + CAIMG_ANN_CHUNK - 1) / CAIMG_ANN_CHUNK;
    int nt = ann_threads_for(nch, w->nscratch);
    int saved = ann_blas_single_begin();
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (size_t c = 0; c < nch; c++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        size_t b0 = c * CAIMG_ANN_CHUNK;
        size_t nb = CAIMG_MIN((size_t)CAIMG_ANN_CHUNK, n - b0);
        forward_chunk(m, w, x, b0, nb, noise, w->scratch[tid]);
    }
    ann_blas_single_end(saved);
    w->n = n;
    w->have_fwd = 1;
    w->have_bwd = 0;
    return 0;
}

int caimg_ann_forward(const caimg_ann *m, caimg_ann_work *w, const float *x,
                      size_t n, const caimg_ann_noise_draw *noise, float *out)
{
    int st = forward_one(m, w, x, n, noise);
    /* An ensemble predicts the mean of its members, each drawing its own
     * noise (the noise is keyed by the member's seed). */
    for (size_t k = 0; !st && k < m->nmem; k++) st = forward_one(m->mem[k], w->sub[k], x, n, noise);
    if (st) return st;
    if (m->nmem) {
        const double inv = 1.0 / (double)(m->nmem + 1);
        for (size_t i = 0; i < n * m->nout; i++) {
            double s = w->act[m->nl - 1][i];
            for (size_t k = 0; k < m->nmem; k++) s += w->sub[k]->act[m->mem[k]->nl - 1][i];
            w->ens_out[i] = (float)(s * inv);
        }
    }
    if (out) memcpy(out, caimg_ann_work_activation(w, m->nl - 1), n * m->nout * sizeof *out);
    return 0;
}

/* ---- backward --------------------------------------------------------------------- */

typedef struct {
    const float *dout;
    const caimg_ann_grad_seed *seeds;
    size_t nseeds;
    size_t top, lowest;   /* gradient flows from layer top down to layer lowest */
} bwd_plan;

static void add_seeds(const caimg_ann *m, caimg_ann_work *w, const bwd_plan *p, size_t l,
                      size_t b0, size_t nb)
{
    const size_t sz = m->L[l].osize;
    for (size_t k = 0; k < p->nseeds; k++) {
        if ((size_t)p->seeds[k].layer != l) continue;
        float *g = w->grad[l] + b0 * sz;
        const float *s = p->seeds[k].grad + b0 * sz;
        for (size_t i = 0; i < nb * sz; i++) g[i] += s[i];
    }
}

static void backward_chunk(const caimg_ann *m, caimg_ann_work *w, const bwd_plan *p,
                           size_t b0, size_t nb, float *g, float *scratch)
{
    const size_t top = p->top;
    for (size_t l = 0; l < m->nl; l++)
        if (l > top || l < p->lowest)
            memset(w->grad[l] + b0 * m->L[l].osize, 0, nb * m->L[l].osize * sizeof(float));
    float *gt = w->grad[top] + b0 * m->L[top].osize;
    if (top == m->nl - 1 && p->dout)
        memcpy(gt, p->dout + b0 * m->nout, nb * m->nout * sizeof *gt);
    else
        memset(gt, 0, nb * m->L[top].osize * sizeof *gt);
    add_seeds(m, w, p, top, b0, nb);
    if (top == m->nl - 1)
        for (size_t i = 0; i < nb; i++)
            for (size_t k = 0; k < m->nout; k++) gt[i * m->nout + k] *= m->out_scale[k];
    size_t aux = ann_aux_size(m, m->readout);
    for (size_t l = top; l >= 1; l--) {
        const ann_layer *L = &m->L[l];
        float *gin = l - 1 >= p->lowest ? w->grad[l - 1] + b0 * L->isize : NULL;
        ann_layer_backward(m, l, w->act[l - 1] + b0 * L->isize, w->act[l] + b0 * L->osize,
                           l == m->readout ? w->aux + b0 * aux : NULL,
                           w->grad[l] + b0 * L->osize, gin, g, nb, scratch);
        if (!gin) break;
        add_seeds(m, w, p, l - 1, b0, nb);
        if (l - 1 < p->lowest || l == 1) break;
    }
}

/* The backward pass of the first network alone. */
static int backward_one(const caimg_ann *m, caimg_ann_work *w, const float *dout,
                        const caimg_ann_grad_seed *seeds, size_t nseeds, float *dx,
                        int want_params)
{
    if (!w || w->m != m) return caimg_error(CAIMG_EINVAL, "work space was made for another model");
    if (!w->have_fwd) return caimg_error(CAIMG_EINVAL, "backward pass without a forward pass");
    const size_t n = w->n;
    bwd_plan p = {dout, seeds, nseeds, 0, m->nl};
    /* Where the gradient starts: the output if dout is given, else the
     * highest seed; where it must reach: the input for dx, the lowest seed,
     * and the first layer with parameters for want_params. */
    if (dout) p.top = m->nl - 1;
    for (size_t k = 0; k < nseeds; k++) {
        if (seeds[k].layer < 0 || (size_t)seeds[k].layer >= m->nl || !seeds[k].grad)
            return caimg_error(CAIMG_EINVAL, "gradient seed for layer %d is invalid", seeds[k].layer);
        p.top = CAIMG_MAX(p.top, (size_t)seeds[k].layer);
        p.lowest = CAIMG_MIN(p.lowest, (size_t)seeds[k].layer);
    }
    if (dx) p.lowest = 0;
    if (want_params) {
        size_t first = m->nl;
        for (size_t l = 1; l < m->nl; l++)
            if (m->L[l].p_b != SIZE_MAX) { first = l; break; }
        /* Layer `first` needs the gradient at its own output. */
        p.lowest = CAIMG_MIN(p.lowest, first);
    }
    if (p.lowest > p.top) p.lowest = p.top;
    size_t nch = (n + CAIMG_ANN_CHUNK - 1) / CAIMG_ANN_CHUNK;
    if (want_params && w->nchunk_grad < nch) {
        size_t need = (w->cap + CAIMG_ANN_CHUNK - 1) / CAIMG_ANN_CHUNK;
        free(w->cgrad);
        w->cgrad = caimg_malloc(caimg_mul(need, m->nparam ? m->nparam : 1), sizeof(float),
                                "per-chunk gradients");
        w->nchunk_grad = w->cgrad ? need : 0;
        if (!w->cgrad) return CAIMG_ENOMEM;
    }
    int nt = ann_threads_for(nch, w->nscratch);
    int saved = ann_blas_single_begin();
    #pragma omp parallel for schedule(dynamic, 1) num_threads(nt)
    for (size_t c = 0; c < nch; c++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        size_t b0 = c * CAIMG_ANN_CHUNK;
        size_t nb = CAIMG_MIN((size_t)CAIMG_ANN_CHUNK, n - b0);
        float *g = NULL;
        if (want_params) {
            g = w->cgrad + c * m->nparam;
            memset(g, 0, m->nparam * sizeof *g);
        }
        backward_chunk(m, w, &p, b0, nb, g, w->scratch[tid]);
    }
    ann_blas_single_end(saved);
    if (want_params) {
        /* Sum the chunk gradients in chunk order, whatever the threads. */
        const size_t P = m->nparam;
        #pragma omp parallel for schedule(static) num_threads(nt)
        for (size_t i = 0; i < P; i++) {
            float s = 0.0f;
            for (size_t c = 0; c < nch; c++) s += w->cgrad[c * P + i];
            w->pgrad[i] = s;
        }
    }
    if (dx) {
        const float inv = (float)(1.0 / m->in_sd);
        const size_t sz = n * m->L[0].osize;
        for (size_t i = 0; i < sz; i++) dx[i] = w->grad[0][i] * inv;
    }
    w->have_bwd = 1;
    return 0;
}

int caimg_ann_backward(const caimg_ann *m, caimg_ann_work *w, const float *dout,
                       const caimg_ann_grad_seed *seeds, size_t nseeds, float *dx,
                       int want_params)
{
    if (!m->nmem) return backward_one(m, w, dout, seeds, nseeds, dx, want_params);
    if (want_params)
        return caimg_error(CAIMG_EINVAL, "an ensemble is not trained as one network; train its "
                           "members one by one");
    if (!w || w->m != m) return caimg_error(CAIMG_EINVAL, "work space was made for another model");
    if (!w->have_fwd) return caimg_error(CAIMG_EINVAL, "backward pass without a forward pass");
    /* Each member gets 1/K of the gradient of the mean prediction; the
     * hidden layers of an ensemble, and so the seeds, are the first
     * network's. */
    const size_t n = w->n, K = m->nmem + 1;
    const float *d = NULL;
    if (dout) {
        for (size_t i = 0; i < n * m->nout; i++) w->ens_dout[i] = dout[i] / (float)K;
        d = w->ens_dout;
    }
    int st = backward_one(m, w, d, seeds, nseeds, dx, 0);
    for (size_t k = 0; !st && d && k < m->nmem; k++) {
        st = backward_one(m->mem[k], w->sub[k], d, NULL, 0, dx ? w->ens_dx : NULL, 0);
        if (!st && dx)
            for (size_t i = 0; i < n * m->L[0].osize; i++) dx[i] += w->ens_dx[i];
    }
    return st;
}

/* ---- prediction and calibration ---------------------------------------------------- */

#define ANN_EVAL_BATCH 256

int caimg_ann_predict(const caimg_ann *m, const float *x, size_t n,
                      size_t samples, uint64_t stream0, float *out)
{
    if (n == 0) return 0;
    size_t bs = CAIMG_MIN(n, (size_t)ANN_EVAL_BATCH);
    caimg_ann_work *w = caimg_ann_work_alloc(m, bs);
    if (!w) return CAIMG_ENOMEM;
    const size_t N = m->nout, insz = m->L[0].osize;
    double *acc = NULL;
    if (samples > 0) {
        acc = caimg_malloc(bs * N, sizeof *acc, "prediction sums");
        if (!acc) { caimg_ann_work_free(w); return CAIMG_ENOMEM; }
    }
    int st = 0;
    for (size_t b0 = 0; b0 < n && !st; b0 += bs) {
        size_t nb = CAIMG_MIN(bs, n - b0);
        if (samples == 0) {
            st = caimg_ann_forward(m, w, x + b0 * insz, nb, NULL, out + b0 * N);
            continue;
        }
        memset(acc, 0, nb * N * sizeof *acc);
        for (size_t k = 0; k < samples && !st; k++) {
            caimg_ann_noise_draw nd = {stream0 + k, b0};
            st = caimg_ann_forward(m, w, x + b0 * insz, nb, &nd, NULL);
            const float *y = caimg_ann_work_activation(w, m->nl - 1);
            for (size_t i = 0; !st && i < nb * N; i++) acc[i] += y[i];
        }
        for (size_t i = 0; i < nb * N; i++) out[b0 * N + i] = (float)(acc[i] / (double)samples);
    }
    free(acc);
    caimg_ann_work_free(w);
    return st;
}

int caimg_ann_noise_calibrate(caimg_ann *m, const float *x, size_t n)
{
    for (size_t k = 0; k < m->nmem; k++) {
        int st = caimg_ann_noise_calibrate(m->mem[k], x, n);
        if (st) return st;
    }
    int any = 0;
    for (size_t l = 0; l < m->nl; l++)
        if (m->L[l].noise_sd) any = 1;
    if (!any || n == 0) return 0;
    size_t bs = CAIMG_MIN(n, (size_t)ANN_EVAL_BATCH);
    /* The members were calibrated above; this is the first network's. */
    caimg_ann_work *w = work_alloc(m, bs, 0);
    if (!w) return CAIMG_ENOMEM;
    double **s1 = caimg_calloc(m->nl, sizeof *s1, "noise statistics");
    double **s2 = caimg_calloc(m->nl, sizeof *s2, "noise statistics");
    int st = (!s1 || !s2) ? CAIMG_ENOMEM : 0;
    for (size_t l = 0; l < m->nl && !st; l++) {
        if (!m->L[l].noise_sd) continue;
        s1[l] = caimg_calloc(m->L[l].osize, sizeof **s1, "noise statistics");
        s2[l] = caimg_calloc(m->L[l].osize, sizeof **s2, "noise statistics");
        if (!s1[l] || !s2[l]) st = CAIMG_ENOMEM;
    }
    const size_t insz = m->L[0].osize;
    for (size_t b0 = 0; b0 < n && !st; b0 += bs) {
        size_t nb = CAIMG_MIN(bs, n - b0);
        st = forward_one(m, w, x + b0 * insz, nb, NULL);
        for (size_t l = 0; l < m->nl && !st; l++) {
            if (!m->L[l].noise_sd) continue;
            const size_t sz = m->L[l].osize;
            const float *a = w->act[l];
            double *p1 = s1[l], *p2 = s2[l];
            /* Each unit's sums run over samples in order: the same result
             * for any number of threads. */
            #pragma omp parallel for schedule(static)
            for (size_t u = 0; u < sz; u++) {
                double t1 = 0.0, t2 = 0.0;
                for (size_t i = 0; i < nb; i++) {
                    double v = a[i * sz + u];
                    t1 += v;
                    t2 += v * v;
                }
                p1[u] += t1;
                p2[u] += t2;
            }
        }
    }
    for (size_t l = 0; l < m->nl && !st; l++) {
        if (!m->L[l].noise_sd) continue;
        for (size_t u = 0; u < m->L[l].osize; u++) {
            double mean = s1[l][u] / (double)n;
            double var = n > 1 ? (s2[l][u] - (double)n * mean * mean) / (double)(n - 1) : 0.0;
            m->L[l].noise_sd[u] = var > 0 ? (float)sqrt(var) : 0.0f;
        }
    }
    if (s1) for (size_t l = 0; l < m->nl; l++) free(s1[l]);
    if (s2) for (size_t l = 0; l < m->nl; l++) free(s2[l]);
    free(s1);
    free(s2);
    caimg_ann_work_free(w);
    return st;
}
