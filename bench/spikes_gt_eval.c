/* spikes_gt_eval.c -- spike inference on real ground-truth recordings
 * (calcium imaging with simultaneous electrophysiology), scored by the
 * Spikefinder convention: Pearson correlation of inferred spikes with true
 * spike counts in 40 ms bins.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * Usage: spikes_gt_eval [-v] [-m METHOD]... FILE.h5...
 *
 * Reads the HDF5 layout of ../shared/realdata/spikes-gt (one neuron per
 * file, groups /recN with dff, time, spike_times and attribute frame_rate;
 * root attribute indicator) with HDF5 directly.  Each recording is scored
 * separately; a neuron's score is the mean over its recordings, and the
 * summary is the mean over neurons.  Methods, all run in this program:
 *
 *   deriv     positive part of the frame-to-frame derivative of dF/F
 *   suite2p   Suite2p's defaults: maximin baseline (sigma 10 frames, 60 s)
 *             subtracted, OASIS AR(1) with no penalty, decay from the
 *             indicator (Suite2p's recommended tau: 0.7 s for GCaMP6f,
 *             1.25 s for GCaMP6s; 0.2 s preset for jGCaMP8f)
 *   caimg     the published dF/F minus a running 8th-percentile baseline
 *             (60 s), then caimg deconv with its defaults: AR(2),
 *             thresholded, kinetics, noise and baseline estimated per
 *             neuron (no tuning to these files)
 *   auto2     the same with --method auto
 *   others    variants in the table below (exploration; thr = thresholded,
 *             con = constrained, pen = penalized, digit = AR order)
 *
 * -l LAG shifts the inferred spikes LAG frames earlier before scoring (a
 * diagnostic of the frame-time convention: frame i's value is spread over
 * (t[i-1], t[i]] by default, the interval whose spikes a point sample at
 * t[i] can show; with -l 1 it covers [t[i], t[i+1]), as if the time stamps
 * were frame starts).
 */
#include <config.h>

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hdf5.h>

#include "caimg/caimg.h"
#include "../tests/simtrace.h"

static double *read_vec(hid_t f, const char *name, size_t *n)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    if (d < 0) return NULL;
    hid_t sp = H5Dget_space(d);
    hsize_t dims[4] = {0};
    int rank = H5Sget_simple_extent_dims(sp, dims, NULL);
    size_t len = 1;
    for (int i = 0; i < rank; i++) len *= dims[i];
    double *v = malloc((len ? len : 1) * sizeof *v);
    if (v && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) < 0) {
        free(v);
        v = NULL;
    }
    H5Sclose(sp);
    H5Dclose(d);
    *n = len;
    return v;
}

static int read_attr_double(hid_t obj, const char *name, double *v)
{
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    herr_t e = H5Aread(a, H5T_NATIVE_DOUBLE, v);
    H5Aclose(a);
    return e < 0 ? -1 : 0;
}

static int read_attr_string(hid_t obj, const char *name, char *buf, size_t len)
{
    if (H5Aexists(obj, name) <= 0) return -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    hid_t t = H5Aget_type(a);
    int ok = -1;
    if (H5Tis_variable_str(t) > 0) {
        char *s = NULL;
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, H5T_VARIABLE);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, &s) >= 0 && s) {
            snprintf(buf, len, "%s", s);
            H5free_memory(s);
            ok = 0;
        }
        H5Tclose(mt);
    } else {
        size_t sz = H5Tget_size(t);
        char *s = calloc(sz + 1, 1);
        hid_t mt = H5Tcopy(H5T_C_S1);
        H5Tset_size(mt, sz);
        H5Tset_cset(mt, H5Tget_cset(t));
        if (H5Aread(a, mt, s) >= 0) {
            snprintf(buf, len, "%s", s);
            ok = 0;
        }
        H5Tclose(mt);
        free(s);
    }
    H5Tclose(t);
    H5Aclose(a);
    return ok;
}

/* Suite2p's recommended decay for the indicator. */
static double suite2p_tau(const char *ind)
{
    if (strstr(ind, "6s")) return 1.25;
    if (strstr(ind, "6m")) return 1.0;
    if (strstr(ind, "6f")) return 0.7;
    const caimg_indicator *p = caimg_indicator_find(ind);
    return p ? p->tau_decay : 1.0;
}

typedef struct {
    const char *name;
    int p;
    caimg_deconv_method method;
    double smin_z;
    int detrend;       /* remove a running-percentile baseline first */
    int refine;
    int preset_tau;    /* use the indicator preset instead of estimating */
} variant;

static const variant variants[] = {
    {"caimg",       0, 0, 0, 1, 0, 0},   /* library defaults */
    {"thr1",        1, CAIMG_DECONV_THRESHOLDED, 3, 1, 1, 0},
    {"thr2",        2, CAIMG_DECONV_THRESHOLDED, 3, 1, 1, 0},
    {"con1",        1, CAIMG_DECONV_CONSTRAINED, 3, 1, 1, 0},
    {"con2",        2, CAIMG_DECONV_CONSTRAINED, 3, 1, 1, 0},
    {"thr1-z2",     1, CAIMG_DECONV_THRESHOLDED, 2, 1, 1, 0},
    {"auto2",       2, CAIMG_DECONV_AUTO, 2, 1, 1, 0},
    {"auto1",       1, CAIMG_DECONV_AUTO, 2, 1, 1, 0},
    {"pen2-z1",     2, CAIMG_DECONV_PENALIZED, 1, 1, 1, 0},
    {"pen2-z2",     2, CAIMG_DECONV_PENALIZED, 2, 1, 1, 0},
    {"pen2-z3",     2, CAIMG_DECONV_PENALIZED, 3, 1, 1, 0},
    {"pen1-z2",     1, CAIMG_DECONV_PENALIZED, 2, 1, 1, 0},
    {"thr2-z2",     2, CAIMG_DECONV_THRESHOLDED, 2, 1, 1, 0},
    {"thr1-nodt",   1, CAIMG_DECONV_THRESHOLDED, 3, 0, 1, 0},
    {"thr1-noref",  1, CAIMG_DECONV_THRESHOLDED, 3, 1, 0, 0},
    {"thr1-preset", 1, CAIMG_DECONV_THRESHOLDED, 3, 1, 0, 1},
    {"thr2-preset", 2, CAIMG_DECONV_THRESHOLDED, 3, 1, 0, 1},
};
#define NVAR (sizeof variants / sizeof *variants)

static const variant *find_variant(const char *name)
{
    for (size_t i = 0; i < NVAR; i++)
        if (strcmp(variants[i].name, name) == 0) return &variants[i];
    return NULL;
}

/* Infer spikes of one recording with method `m`; s gets T values. */
static int infer(const char *m, const char *ind, const double *dff, size_t T, double fs,
                 double *s, int verbose)
{
    double *c = malloc(T * sizeof *c), *f0 = malloc(T * sizeof *f0), *y = malloc(T * sizeof *y);
    int rc = 0;
    memcpy(y, dff, T * sizeof *y);
    for (size_t i = 0; i < T; i++)
        if (!isfinite(y[i])) y[i] = i ? y[i - 1] : 0;
    if (strcmp(m, "deriv") == 0) {
        s[0] = 0;
        for (size_t i = 1; i < T; i++) s[i] = y[i] > y[i - 1] ? y[i] - y[i - 1] : 0;
    } else if (strcmp(m, "suite2p") == 0) {
        caimg_baseline_params bp;
        caimg_baseline_params_init(&bp, caimg_baseline_maximin);
        caimg_baseline *base = caimg_baseline_alloc(caimg_baseline_maximin, &bp, fs, T);
        caimg_baseline_compute(base, y, f0, NULL);
        for (size_t i = 0; i < T; i++) y[i] -= f0[i];
        caimg_baseline_free(base);
        caimg_deconv_params rp;
        caimg_deconv_params_init(&rp, fs);
        rp.baseline = CAIMG_DECONV_B_FIXED;
        caimg_deconv_plan *plan = caimg_deconv_plan_create(&rp, T);
        caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
        double g[2] = {exp(-1 / (suite2p_tau(ind) * fs)), 0}, b = 0;
        caimg_oasis_solve(plan, ws, y, T, 1, g, CAIMG_DECONV_PENALIZED, 0, 0, 0, &b, NULL, c, s);
        caimg_deconv_ws_free(ws);
        caimg_deconv_plan_destroy(plan);
    } else {
        const variant *v = find_variant(m);
        if (!v) {
            fprintf(stderr, "unknown method %s\n", m);
            rc = -1;
            goto done;
        }
        if (v->detrend) {
            caimg_baseline_params bp;
            caimg_baseline_params_init(&bp, caimg_baseline_percentile);
            bp.window_s = 60;
            bp.percentile = 8;
            caimg_baseline *base = caimg_baseline_alloc(caimg_baseline_percentile, &bp, fs, T);
            caimg_baseline_compute(base, y, f0, NULL);
            for (size_t i = 0; i < T; i++) y[i] -= f0[i];
            caimg_baseline_free(base);
        }
        caimg_deconv_params pp;
        caimg_deconv_params_init(&pp, fs);
        if (v->p == 0) goto defaults;
        pp.p = v->p;
        pp.method = v->method;
        pp.smin_z = v->smin_z;
        pp.lambda_z = v->smin_z;
        pp.refine_g = v->refine;
        if (v->preset_tau) {
            const caimg_indicator *pr = caimg_indicator_find(ind);
            pp.tau_decay = pr ? pr->tau_decay : 1.0;
            pp.tau_rise = v->p == 2 && pr ? pr->tau_rise : 0;
        }
    defaults:;
        caimg_deconv_plan *plan = caimg_deconv_plan_create(&pp, T);
        if (!plan) {
            fprintf(stderr, "%s\n", caimg_errmsg());
            rc = -1;
            goto done;
        }
        caimg_deconv_ws *ws = caimg_deconv_ws_alloc(plan);
        caimg_deconv_info info;
        caimg_deconv_execute(plan, ws, y, c, s, &info, 0);
        if (verbose) {
            double td = 0, tr = 0;
            caimg_ar_to_tau(info.g, pp.p, fs, &td, &tr);
            fprintf(stderr, "    %s: tau_d %.3f tau_r %.3f sn %.4f b %.4f smin %.4f lam %.4g amp %.4f "
                    "nspk %zu flags %u\n", m, td, tr, info.sn, info.b, info.smin, info.lambda,
                    info.amplitude, info.nspikes, info.flags);
        }
        caimg_deconv_ws_free(ws);
        caimg_deconv_plan_destroy(plan);
    }
done:
    free(c);
    free(f0);
    free(y);
    return rc;
}

int main(int argc, char **argv)
{
    const char *methods[32];
    int nm = 0, verbose = 0, o, lag = 0;
    while ((o = getopt(argc, argv, "m:vl:")) != -1) {
        if (o == 'm' && nm < 32) methods[nm++] = optarg;
        else if (o == 'v') verbose = 1;
        else if (o == 'l') lag = atoi(optarg);   /* diagnostics: shift inferred spikes */
        else return 2;
    }
    if (nm == 0) {
        methods[nm++] = "deriv";
        methods[nm++] = "suite2p";
        methods[nm++] = "caimg";
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: spikes_gt_eval [-v] [-m METHOD]... FILE.h5...\n");
        return 2;
    }
    caimg_init();
    double total[32] = {0};
    int nneur = 0;
    printf("%-44s", "neuron (recordings)");
    for (int k = 0; k < nm; k++) printf(" %10s", methods[k]);
    printf("\n");
    for (int a = optind; a < argc; a++) {
        hid_t f = H5Fopen(argv[a], H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) {
            fprintf(stderr, "%s: cannot open\n", argv[a]);
            return 1;
        }
        char ind[64] = "unknown";
        read_attr_string(f, "indicator", ind, sizeof ind);
        double sc[32] = {0};
        int nrec = 0;
        for (int r = 0; r < 100; r++) {
            char g[32], nm_[64];
            snprintf(g, sizeof g, "rec%d", r);
            if (H5Lexists(f, g, H5P_DEFAULT) <= 0) break;
            hid_t grp = H5Gopen2(f, g, H5P_DEFAULT);
            double fs = 0;
            read_attr_double(grp, "frame_rate", &fs);
            H5Gclose(grp);
            size_t T, nt, ns;
            snprintf(nm_, sizeof nm_, "%s/dff", g);
            double *dff = read_vec(f, nm_, &T);
            snprintf(nm_, sizeof nm_, "%s/time", g);
            double *tm = read_vec(f, nm_, &nt);
            snprintf(nm_, sizeof nm_, "%s/spike_times", g);
            double *sp = read_vec(f, nm_, &ns);
            if (!dff || !tm || !sp || nt != T) {
                fprintf(stderr, "%s: %s unreadable\n", argv[a], g);
                return 1;
            }
            double *s = malloc(T * sizeof *s);
            if (verbose)
                fprintf(stderr, "%s %s: %zu frames at %.2f Hz, %zu spikes, %s\n", argv[a], g, T,
                        fs, ns, ind);
            for (int k = 0; k < nm; k++) {
                if (infer(methods[k], ind, dff, T, fs, s, verbose)) return 1;
                if (lag > 0) {
                    memmove(s, s + lag, (T - lag) * sizeof *s);
                    memset(s + T - lag, 0, lag * sizeof *s);
                } else if (lag < 0) {
                    memmove(s - lag, s, (T + lag) * sizeof *s);
                    memset(s, 0, -lag * sizeof *s);
                }
                double r = sim_score(s, tm, T, sp, ns);
                sc[k] += r;
                if (verbose) fprintf(stderr, "    %-10s r = %.3f\n", methods[k], r);
            }
            nrec++;
            free(s);
            free(dff);
            free(tm);
            free(sp);
        }
        H5Fclose(f);
        const char *base = strrchr(argv[a], '/');
        base = base ? base + 1 : argv[a];
        char label[80];
        snprintf(label, sizeof label, "%.38s (%d)", base, nrec);
        printf("%-44s", label);
        for (int k = 0; k < nm; k++) {
            printf(" %10.3f", sc[k] / nrec);
            total[k] += sc[k] / nrec;
        }
        printf("\n");
        nneur++;
    }
    printf("%-44s", "mean over neurons");
    for (int k = 0; k < nm; k++) printf(" %10.3f", total[k] / nneur);
    printf("\n");
    return 0;
}
