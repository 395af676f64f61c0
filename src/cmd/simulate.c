/* simulate.c -- caimg simulate: a synthetic recording and its ground truth.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 *
 * The numeric parameters of caimg_sim_params are exposed through one table,
 * which drives option parsing, the -h text (with the defaults of the preset
 * in effect) and the provenance record, so the three cannot drift apart.
 */
#include <config.h>

#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "caimg/caimg.h"
#include "caimg/h5io.h"
#include "caimg/simulate.h"
#include "caimg/tiffio.h"
#include "caimg/tsv.h"
#include "cmd.h"

typedef struct {
    const char *name;
    char type;            /* 'd' double, 'z' size_t, 'i' int */
    size_t off;           /* offset in caimg_sim_params */
    double lo, hi;
    const char *arg, *help;
} numopt;

#define P(f) offsetof(caimg_sim_params, f)
static const numopt numopts[] = {
    {"frames", 'z', P(frames), 0, 1e9, "T", "frames; 0 with --stim: what the schedule needs"},
    {"pixel-um", 'd', P(pixel_um), 1e-6, 1e6, "UM", "pixel size (metadata)"},
    {"neurons", 'z', P(neurons), 0, 1e6, "N", "neurons; 0 = from --density"},
    {"density", 'd', P(density), 0, 1e4, "D", "neurons per 100x100 pixels"},
    {"diameter", 'd', P(diameter), 3, 200, "PX", "mean soma diameter"},
    {"diameter-sd", 'd', P(diameter_sd), 0, 100, "PX", "s.d. of soma diameters"},
    {"aspect", 'd', P(aspect_max), 1, 4, "R", "largest major/minor axis ratio"},
    {"edge", 'd', P(edge), 0.1, 50, "PX", "soft-edge half-width"},
    {"nucleus", 'd', P(nucleus), 0, 0.89, "F", "nucleus diameter / soma diameter"},
    {"nucleus-brightness", 'd', P(nucleus_brightness), 0, 1, "F", "nucleus / cytosol brightness"},
    {"overlap", 'd', P(overlap), 0, 0.9, "F", "allowed soma overlap (0 = none)"},
    {"brightness", 'd', P(brightness), 1e-3, 1e3, "F", "soma / mean neuropil brightness"},
    {"brightness-sd", 'd', P(brightness_sd), 0, 5, "S", "log-normal s.d. of soma brightness"},
    {"rate", 'd', P(rate), 0, 1000, "HZ", "mean spontaneous firing rate"},
    {"rate-sd", 'd', P(rate_sd), 0, 5, "S", "log-normal s.d. of rates across neurons"},
    {"rate-mod-sd", 'd', P(rate_mod_sd), 0, 5, "S", "log s.d. of slow rate modulation"},
    {"rate-mod-tau", 'd', P(rate_mod_tau), 1e-3, 1e5, "S", "time constant of rate modulation"},
    {"tau-rise", 'd', P(tau_rise), 0, 100, "S", "indicator rise time constant (0 = preset)"},
    {"tau-decay", 'd', P(tau_decay), 0, 100, "S", "indicator decay time constant (0 = preset)"},
    {"amplitude", 'd', P(amplitude), 0, 100, "DFF", "peak dF/F of one spike (0 = preset)"},
    {"amplitude-cv", 'd', P(amplitude_cv), 0, 5, "CV", "variation of the amplitude across neurons"},
    {"tau-cv", 'd', P(tau_cv), 0, 5, "CV", "variation of time constants across neurons"},
    {"ar", 'i', P(ar_order), 1, 2, "1|2", "calcium model order (1: instantaneous rise)"},
    {"saturation", 'd', P(saturation), 0, 1e3, "DFF", "Hill saturation dF/F (0 = linear)"},
    {"hill", 'd', P(hill), 0.1, 8, "N", "Hill coefficient"},
    {"photons", 'd', P(photons), 1e-6, 1e6, "N", "mean neuropil photons per pixel per frame"},
    {"snr", 'd', P(snr), 0, 1e4, "S", "median per-spike SNR; > 0 overrides --photons"},
    {"dark", 'd', P(dark), 0, 1e6, "N", "dark counts per pixel per frame"},
    {"gain", 'd', P(gain), 1e-6, 1e6, "ADU", "ADU per photon"},
    {"read-noise", 'd', P(read_noise), 0, 1e6, "ADU", "read noise s.d."},
    {"offset", 'd', P(offset), -1e6, 1e6, "ADU", "offset"},
    {"texture", 'd', P(texture_sd), 0, 10, "S", "relative s.d. of the neuropil texture"},
    {"texture-scale", 'd', P(texture_scale), 0.7, 50, "PX", "grain size of the texture"},
    {"vessels", 'd', P(vessels), 0, 100, "N", "blood vessels per 512x512 pixels"},
    {"vignetting", 'd', P(vignetting), 0, 0.99, "F", "brightness loss at the corners"},
    {"np-sd", 'd', P(np_sd), 0, 10, "DFF", "s.d. of neuropil activity"},
    {"np-scale", 'd', P(np_scale), 8, 1e5, "PX", "spatial scale of neuropil activity"},
    {"np-tau", 'd', P(np_tau), 1e-3, 1e5, "S", "time constant of neuropil activity"},
    {"np-coupling", 'd', P(np_coupling), 0, 100, "K", "neuropil dF/F per mean somatic dF/F"},
    {"np-contamination", 'd', P(np_contamination), 0, 1, "F", "neuropil seen through a soma"},
    {"bleach", 'd', P(bleach), 0, 0.99, "F", "fraction of brightness bleached eventually"},
    {"bleach-tau", 'd', P(bleach_tau), 1e-3, 1e7, "S", "bleaching time constant"},
    {"drift", 'd', P(drift_sd), 0, 0.29, "S", "global brightness drift s.d."},
    {"drift-tau", 'd', P(drift_tau), 1e-3, 1e7, "S", "its time constant"},
    {"baseline-drift", 'd', P(baseline_drift_sd), 0, 0.29, "S", "per-neuron baseline drift s.d."},
    {"baseline-drift-tau", 'd', P(baseline_drift_tau), 1e-3, 1e7, "S", "its time constant"},
    {"motion-sd", 'd', P(motion_sd), 0, 1000, "PX", "s.d. of the slow random walk per axis"},
    {"motion-tau", 'd', P(motion_tau), 1e-3, 1e5, "S", "its time constant"},
    {"jitter", 'd', P(jitter_sd), 0, 100, "PX", "frame-to-frame jitter s.d."},
    {"jump-rate", 'd', P(jump_rate), 0, 1e3, "HZ", "sudden jumps per second"},
    {"jump-sd", 'd', P(jump_sd), 0, 1000, "PX", "s.d. of positions after a jump"},
    {"max-shift", 'd', P(max_shift), 0, 1000, "PX", "shifts are clipped to this"},
    {"deform-sd", 'd', P(deform_sd), 0, 50, "PX", "non-rigid node displacement s.d. (0 = rigid)"},
    {"deform-grid", 'z', P(deform_grid), 2, 64, "G", "deformation nodes per side"},
    {"deform-tau", 'd', P(deform_tau), 1e-3, 1e5, "S", "time constant of the deformation"},
    {"bidi", 'd', P(bidi), -50, 50, "PX", "bidirectional-scan offset of odd rows"},
    {"stim-n", 'z', P(stim_n), 1, 1e6, "N", "number of 1/f images"},
    {"stim-alpha", 'd', P(stim_alpha), -10, 10, "A", "1/f spectral exponent"},
    {"stim-contrast", 'd', P(stim_contrast), 1e-3, 1, "C", "contrast (RMS for 1/f images)"},
    {"grating-ori", 'z', P(grating_ori), 1, 360, "N", "grating orientations"},
    {"grating-phase", 'z', P(grating_phase), 1, 64, "N", "grating phases"},
    {"stim-duration", 'd', P(stim_duration), 1e-3, 1e4, "S", "presentation duration"},
    {"stim-isi", 'd', P(stim_isi), 0, 1e4, "S", "blank between presentations"},
    {"stim-start", 'd', P(stim_start), 0, 1e5, "S", "blank before the first presentation"},
    {"repeats", 'z', P(stim_repeats), 1, 1e6, "N", "presentations of each image"},
    {"latency", 'd', P(stim_latency), 0, 10, "S", "response latency"},
    {"frac-complex", 'd', P(frac_complex), 0, 1, "F", "fraction of complex cells"},
    {"frac-responsive", 'd', P(frac_responsive), 0, 1, "F", "fraction of neurons with an RF"},
    {"peak-rate", 'd', P(peak_rate), 0, 1e3, "HZ", "median rate at the best image"},
    {"peak-rate-sd", 'd', P(peak_rate_sd), 0, 5, "S", "log-normal s.d. of peak rates"},
    {"rf-sigma", 'd', P(rf_sigma), 1e-3, 10, "F", "RF envelope s.d. / image width"},
    {"rf-cycles", 'd', P(rf_cycles), 0.05, 10, "C", "RF envelope s.d. in carrier wavelengths"},
    {"rf-exponent", 'd', P(rf_exponent), 0.1, 6, "E", "output nonlinearity exponent"},
    {"retino-span", 'd', P(retino_span), 0, 10, "F", "RF-centre span across the FOV / width"},
    {"retino-scatter", 'd', P(retino_scatter), 0, 10, "F", "RF-centre scatter / width"},
};
#undef P
#define NNUM (sizeof numopts / sizeof numopts[0])

enum {
    OPT_TRUTH = OPT_FIRST_PRIVATE, OPT_PRESET, OPT_SIZE, OPT_INDICATOR, OPT_SHIFTS, OPT_STIM,
    OPT_STIMSIZE, OPT_SF, OPT_ORDER, OPT_DTYPE, OPT_DEFLATE, OPT_STIMOUT, OPT_SCHEDULE,
    OPT_NUM   /* numeric options are OPT_NUM + index */
};

static struct option longopts[NNUM + 32];

static void build_longopts(void)
{
    static const struct option fixed[] = {
        CMD_COMMON_LONGOPTS,
        {"truth", required_argument, NULL, OPT_TRUTH},
        {"preset", required_argument, NULL, OPT_PRESET},
        {"size", required_argument, NULL, OPT_SIZE},
        {"indicator", required_argument, NULL, OPT_INDICATOR},
        {"shifts", required_argument, NULL, OPT_SHIFTS},
        {"stim", required_argument, NULL, OPT_STIM},
        {"stim-size", required_argument, NULL, OPT_STIMSIZE},
        {"grating-sf", required_argument, NULL, OPT_SF},
        {"order", required_argument, NULL, OPT_ORDER},
        {"dtype", required_argument, NULL, OPT_DTYPE},
        {"deflate", required_argument, NULL, OPT_DEFLATE},
        {"stim-out", required_argument, NULL, OPT_STIMOUT},
        {"schedule", required_argument, NULL, OPT_SCHEDULE},
    };
    size_t n = sizeof fixed / sizeof fixed[0];
    memcpy(longopts, fixed, sizeof fixed);
    for (size_t i = 0; i < NNUM; i++)
        longopts[n + i] = (struct option){numopts[i].name, required_argument, NULL, OPT_NUM + (int)i};
    longopts[n + NNUM] = (struct option){NULL, 0, NULL, 0};
}

static void numopt_show(const numopt *o, const caimg_sim_params *p, char *buf, size_t n)
{
    const char *base = (const char *)p + o->off;
    if (o->type == 'd') snprintf(buf, n, "%g", *(const double *)base);
    else if (o->type == 'z') snprintf(buf, n, "%zu", *(const size_t *)base);
    else snprintf(buf, n, "%d", *(const int *)base);
}

static int numopt_set(cmd_ctx *c, const numopt *o, const char *arg, caimg_sim_params *p)
{
    char name[64];
    snprintf(name, sizeof name, "--%s", o->name);
    char *base = (char *)p + o->off;
    if (o->type == 'd') return cmd_parse_double(c, name, arg, o->lo, o->hi, (double *)base);
    long v;
    if (cmd_parse_long(c, name, arg, (long)o->lo, (long)o->hi, &v)) return -1;
    if (o->type == 'z') *(size_t *)base = (size_t)v;
    else *(int *)base = (int)v;
    return 0;
}

static void usage(FILE *fp, const caimg_sim_params *p)
{
    fprintf(fp,
"Usage: caimg simulate [options] -o MOVIE.h5|MOVIE.tif [--truth TRUTH.h5]\n"
"\n"
"Simulate a two-photon calcium-imaging recording (neurons, neuropil, vessels,\n"
"bleaching, shot and read noise, motion) and write the movie and its ground\n"
"truth.  The same seed gives the same bytes.\n"
"\n"
"Output:\n"
"  -o, --output FILE       movie: .h5 (caimg HDF5) or .tif (TIFF); give -o twice\n"
"                          for both\n"
"      --truth FILE        ground truth, caimg HDF5 (may be the -o .h5 file)\n"
"      --dtype TYPE        movie samples: uint16 or float32 [uint16]\n"
"      --deflate LEVEL     HDF5 movie compression 0-9 [0]\n"
"      --stim-out FILE     stimulus images as a float32 TIFF stack\n"
"      --schedule FILE     stimulus schedule TSV (onset_frame, stimulus, duration)\n"
"Field:\n"
"      --preset NAME       typical or hard (applied before other options) [typical]\n"
"      --size YxX          field of view in pixels [%zux%zu]\n"
"      --fs HZ             frame rate [%g]\n"
"      --seed N            random seed [%llu]\n"
"      --indicator NAME    gcamp6f gcamp6m gcamp6s jgcamp7f jgcamp8f jgcamp8m\n"
"                          jgcamp8s [%s]\n"
"      --shifts FILE       TSV of T rows (dy, dx) replacing the random motion\n"
"Stimuli:\n"
"      --stim MODE         none, gratings, pink, or a TIFF of images [none]\n"
"      --stim-size HxW     size of generated images [%zux%zu]\n"
"      --grating-sf LIST   spatial frequencies, cycles per width [2,4,8]\n"
"      --order ORDER       random or fixed order within each repeat [random]\n",
            p->height, p->width, p->fs, (unsigned long long)p->seed,
            p->indicator ? p->indicator : "", p->stim_h, p->stim_w);
    fprintf(fp, "Model parameters (see caimg-simulate(1)):\n");
    for (size_t i = 0; i < NNUM; i++) {
        char opt[64], def[32];
        snprintf(opt, sizeof opt, "--%s %s", numopts[i].name, numopts[i].arg);
        numopt_show(&numopts[i], p, def, sizeof def);
        fprintf(fp, "      %-24s %s [%s]\n", opt, numopts[i].help, def);
    }
    fprintf(fp,
"Common:\n"
"  -@, --threads N         threads [all cores]\n"
"      --config FILE       read options from section [simulate] of FILE\n"
"  -q, --quiet             no progress or warnings\n"
"  -v, --verbose           more detail\n"
"  -h, --help              this help\n");
}

static int ends_with(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && strcasecmp(s + a - b, suf) == 0;
}

static int is_h5(const char *p) { return ends_with(p, ".h5") || ends_with(p, ".hdf5"); }
static int is_tif(const char *p) { return ends_with(p, ".tif") || ends_with(p, ".tiff"); }

static int parse_pair(const char *s, size_t *a, size_t *b)
{
    char *end;
    unsigned long x = strtoul(s, &end, 10);
    if (end == s || (*end != 'x' && *end != 'X')) return -1;
    const char *q = end + 1;
    unsigned long y = strtoul(q, &end, 10);
    if (end == q || *end || x == 0 || y == 0 || x > 65536 || y > 65536) return -1;
    *a = x;
    *b = y;
    return 0;
}

/* User stimulus images: every page of a TIFF, integers scaled by the
 * type's maximum (so 8- and 16-bit images map onto [0, 1]). */
static int read_stim_tiff(const char *path, float **out, size_t *n, size_t *h, size_t *w)
{
    caimg_tiff *t = caimg_tiff_open(path);
    if (!t) return CAIMG_EFORMAT;
    const caimg_tiff_info *in = caimg_tiff_get_info(t);
    size_t np = in->npages, H = in->height, W = in->width;
    double scale = 1.0;
    switch (in->dtype) {
    case CAIMG_DT_U8: scale = 1.0 / 255.0; break;
    case CAIMG_DT_U16: scale = 1.0 / 65535.0; break;
    case CAIMG_DT_F32: case CAIMG_DT_F64: scale = 1.0; break;
    default:
        caimg_tiff_close(t);
        return caimg_error(CAIMG_EUNSUP, "%s: stimulus images must be 8- or 16-bit unsigned or "
                           "floating point (grey levels in [0, 1])", path);
    }
    float *img = malloc(np * H * W * sizeof(float));
    void *raw = malloc(H * W * caimg_dtype_size(in->dtype));
    int rc = (!img || !raw) ? caimg_error(CAIMG_ENOMEM, "out of memory reading %s", path) : 0;
    for (size_t k = 0; !rc && k < np; k++) {
        rc = caimg_tiff_read_page(t, k, raw);
        if (rc) break;
        caimg_to_float(raw, in->dtype, img + k * H * W, H * W);
        for (size_t i = 0; !rc && i < H * W; i++) {
            float v = (float)(img[k * H * W + i] * scale);
            if (!(v >= 0.0f && v <= 1.0f))
                rc = caimg_error(CAIMG_EFORMAT, "%s: page %zu, pixel (%zu, %zu) is %g; floating-point "
                                 "stimulus images must hold grey levels in [0, 1]", path, k + 1,
                                 i / W, i % W, (double)v);
            img[k * H * W + i] = v;
        }
    }
    free(raw);
    caimg_tiff_close(t);
    if (rc) {
        free(img);
        return rc;
    }
    *out = img;
    *n = np;
    *h = H;
    *w = W;
    return 0;
}

static int read_shifts(const char *path, size_t T, float **out)
{
    caimg_table *t = caimg_table_read(path);
    if (!t) return CAIMG_EFORMAT;
    int rc = 0;
    long cy = caimg_table_column(t, "dy"), cx = caimg_table_column(t, "dx");
    if (cy < 0 || cx < 0) {
        cy = 0;
        cx = 1;
    }
    if (t->ncols < 2)
        rc = caimg_error(CAIMG_EFORMAT, "%s: shifts need two columns (dy, dx)", path);
    else if (T && t->nrows != T)
        rc = caimg_error(CAIMG_EFORMAT, "%s: %zu rows of shifts for %zu frames", path, t->nrows, T);
    float *s = rc ? NULL : malloc(2 * t->nrows * sizeof(float));
    if (!rc && !s) rc = caimg_error(CAIMG_ENOMEM, "out of memory reading %s", path);
    for (size_t r = 0; !rc && r < t->nrows; r++) {
        s[2 * r] = (float)t->data[r * t->ncols + (size_t)cy];
        s[2 * r + 1] = (float)t->data[r * t->ncols + (size_t)cx];
        if (!isfinite(s[2 * r]) || !isfinite(s[2 * r + 1]))
            rc = caimg_error(CAIMG_EFORMAT, "%s: row %zu: shifts must be finite numbers", path, r + 1);
    }
    if (rc) free(s);
    else *out = s;
    caimg_table_free(t);
    return rc;
}

typedef struct {
    const char *path;
    int h5;
} movie_out;

int main_simulate(int argc, char **argv)
{
    build_longopts();
    cmd_ctx c;
    int rc = cmd_begin(&c, "simulate", argc, argv, longopts);
    if (rc) return rc;
    caimg_sim_params p;
    caimg_sim_params_init(&p);
    movie_out outs[2];
    size_t nout = 0;
    const char *truth = NULL, *stim_arg = NULL, *stim_out = NULL, *sched_out = NULL;
    const char *shifts_path = NULL, *preset = "typical";
    const char *dtype_name = "uint16";
    long deflate = 0;
    float *shifts = NULL, *user_img = NULL;
    caimg_sim *sim = NULL;
    caimg_h5 *h5 = NULL, *th5 = NULL;
    caimg_h5_stream *hs = NULL;
    caimg_tiff_writer *tw = NULL, *sw = NULL;
    caimg_outfile *so = NULL;
    float *buf = NULL;
    void *conv = NULL;
    char indicator[64] = "";

    /* The preset must apply before any other option wherever it appears,
     * so it is looked for first. */
    for (int i = 1; i < c.argc; i++) {
        if (!strcmp(c.argv[i], "--preset") && i + 1 < c.argc) preset = c.argv[i + 1];
        else if (!strncmp(c.argv[i], "--preset=", 9)) preset = c.argv[i] + 9;
        else if (!strcmp(c.argv[i], "--")) break;
    }
    if (caimg_sim_params_preset(&p, preset)) {
        rc = cmd_usage_error(&c, "--preset: %s", caimg_errmsg());
        goto done;
    }
    int opt;
    while ((opt = getopt_long(c.argc, c.argv, CMD_COMMON_SHORTOPTS, longopts, NULL)) != -1) {
        if (opt == 'o') {
            if (nout == 2) { rc = cmd_usage_error(&c, "-o given more than twice"); goto done; }
            outs[nout].path = optarg;
            outs[nout].h5 = is_h5(optarg);
            if (!outs[nout].h5 && !is_tif(optarg)) {
                rc = cmd_usage_error(&c, "-o %s: the movie must be .h5/.hdf5 or .tif/.tiff", optarg);
                goto done;
            }
            if (nout == 1 && outs[0].h5 == outs[1].h5) {
                rc = cmd_usage_error(&c, "-o twice must be one .h5 and one .tif file");
                goto done;
            }
            nout++;
            continue;
        }
        int h = cmd_common_option(&c, opt, optarg);
        if (h < 0) { rc = EXIT_USAGE; goto done; }
        if (h > 0) continue;
        if (opt >= OPT_NUM && opt < OPT_NUM + (int)NNUM) {
            if (numopt_set(&c, &numopts[opt - OPT_NUM], optarg, &p)) { rc = EXIT_USAGE; goto done; }
            continue;
        }
        switch (opt) {
        case OPT_TRUTH: truth = optarg; break;
        case OPT_PRESET: break;
        case OPT_SIZE:
            if (parse_pair(optarg, &p.height, &p.width)) {
                rc = cmd_usage_error(&c, "--size: '%s' is not HEIGHTxWIDTH in pixels", optarg);
                goto done;
            }
            break;
        case OPT_INDICATOR:
            snprintf(indicator, sizeof indicator, "%s", optarg);
            p.indicator = indicator;
            break;
        case OPT_SHIFTS: shifts_path = optarg; break;
        case OPT_STIM: stim_arg = optarg; break;
        case OPT_STIMSIZE:
            if (parse_pair(optarg, &p.stim_h, &p.stim_w)) {
                rc = cmd_usage_error(&c, "--stim-size: '%s' is not HEIGHTxWIDTH in pixels", optarg);
                goto done;
            }
            break;
        case OPT_SF: {
            int k = cmd_parse_double_list(&c, "--grating-sf", optarg, p.grating_sf, 8);
            if (k <= 0) { rc = EXIT_USAGE; goto done; }
            p.grating_sf_n = (size_t)k;
            break;
        }
        case OPT_ORDER:
            if (!strcmp(optarg, "random")) p.stim_random = 1;
            else if (!strcmp(optarg, "fixed")) p.stim_random = 0;
            else { rc = cmd_usage_error(&c, "--order: '%s' is not random or fixed", optarg); goto done; }
            break;
        case OPT_DTYPE: dtype_name = optarg; break;
        case OPT_DEFLATE:
            if (cmd_parse_long(&c, "--deflate", optarg, 0, 9, &deflate)) { rc = EXIT_USAGE; goto done; }
            break;
        case OPT_STIMOUT: stim_out = optarg; break;
        case OPT_SCHEDULE: sched_out = optarg; break;
        default: rc = cmd_bad_option(&c); goto done;
        }
    }
    if (c.want_help) { usage(stdout, &p); rc = 0; goto done; }
    if (optind < c.argc) { rc = cmd_usage_error(&c, "unexpected argument '%s'", c.argv[optind]); goto done; }
    if (!nout && !truth) { rc = cmd_usage_error(&c, "nothing to write: give -o MOVIE and/or --truth FILE"); goto done; }
    if (truth && !is_h5(truth)) { rc = cmd_usage_error(&c, "--truth %s: the truth is an .h5 file", truth); goto done; }
    if (stim_out && !is_tif(stim_out)) { rc = cmd_usage_error(&c, "--stim-out %s: must be a .tif file", stim_out); goto done; }
    {
        /* Outputs, and the input files they must not overwrite: --shifts
         * and a --stim TIFF. */
        const char *const ins[2] = {shifts_path,
                                    stim_arg && strcmp(stim_arg, "none") && strcmp(stim_arg, "gratings")
                                        && strcmp(stim_arg, "pink") ? stim_arg : NULL};
        const char *all[5] = {nout > 0 ? outs[0].path : NULL, nout > 1 ? outs[1].path : NULL,
                              truth, stim_out, sched_out};
        for (size_t i = 0; i < 5 && !rc; i++)
            if (!(rc = cmd_check_output(&c, all[i]))) rc = cmd_check_inputs(&c, all[i], ins, 2);
        if (rc) goto done;
    }
    caimg_dtype store = caimg_dtype_from_name(dtype_name);
    if (store != CAIMG_DT_U16 && store != CAIMG_DT_F32) {
        rc = cmd_usage_error(&c, "--dtype: '%s' is not uint16 or float32", dtype_name);
        goto done;
    }
    if (c.fs > 0) p.fs = c.fs;
    if (c.seed_given) p.seed = (uint64_t)c.seed;
    if (stim_arg) {
        if (!strcmp(stim_arg, "none")) p.stim_mode = CAIMG_SIM_STIM_NONE;
        else if (!strcmp(stim_arg, "gratings")) p.stim_mode = CAIMG_SIM_STIM_GRATINGS;
        else if (!strcmp(stim_arg, "pink")) p.stim_mode = CAIMG_SIM_STIM_PINK;
        else {
            p.stim_mode = CAIMG_SIM_STIM_USER;
            rc = read_stim_tiff(stim_arg, &user_img, &p.stim_n, &p.stim_h, &p.stim_w);
            if (rc) { rc = cmd_fail(&c, rc); goto done; }
            p.stim_images = user_img;
        }
    }
    if ((stim_out || sched_out) && p.stim_mode == CAIMG_SIM_STIM_NONE) {
        rc = cmd_usage_error(&c, "--stim-out and --schedule need stimuli (--stim)");
        goto done;
    }
    if (shifts_path) {
        rc = read_shifts(shifts_path, p.frames, &shifts);
        if (rc) { rc = cmd_fail(&c, rc); goto done; }
        p.shifts = shifts;
    }

    sim = caimg_sim_alloc(&p);
    if (!sim) { rc = cmd_fail(&c, caimg_errmsg()[0] && strstr(caimg_errmsg(), "out of memory") ? CAIMG_ENOMEM : CAIMG_EINVAL); goto done; }
    const caimg_sim_params *rp = caimg_sim_get_params(sim);
    const caimg_sim_truth *tr = caimg_sim_get_truth(sim);
    size_t T = caimg_sim_frames_total(sim), Y = caimg_sim_height(sim), X = caimg_sim_width(sim);

    /* Outputs are created under temporary names and appear only when all
     * of them are complete. */
    const movie_out *mh5 = NULL, *mtif = NULL;
    for (size_t i = 0; i < nout; i++) {
        if (outs[i].h5) mh5 = &outs[i];
        else mtif = &outs[i];
    }
    int truth_in_movie = truth && mh5 && !strcmp(truth, mh5->path);
    if (mh5) {
        h5 = caimg_h5_create(mh5->path, "simulate", c.cmdline);
        if (!h5) { rc = CAIMG_EIO; goto fail; }
    }
    if (truth && !truth_in_movie) {
        th5 = caimg_h5_create(truth, "simulate", c.cmdline);
        if (!th5) { rc = CAIMG_EIO; goto fail; }
    }
    /* Provenance: every parameter as it was used. */
    for (int k = 0; k < 2; k++) {
        caimg_h5 *f = k ? th5 : h5;
        if (!f) continue;
        caimg_h5_param(f, "preset", "%s", preset);
        caimg_h5_param(f, "size", "%zux%zu", Y, X);
        caimg_h5_param_double(f, "fs", rp->fs);
        caimg_h5_param(f, "seed", "%llu", (unsigned long long)rp->seed);
        caimg_h5_param(f, "indicator", "%s", rp->indicator ? rp->indicator : "");
        caimg_h5_param(f, "stim", "%s", stim_arg ? stim_arg : "none");
        /* Numbers in full (a preset's time constants are not six-digit
         * numbers), so that the record replays to the last bit. */
        for (size_t i = 0; i < NNUM; i++) {
            char v[32];
            if (numopts[i].type == 'd') {
                caimg_h5_param_double(f, numopts[i].name,
                                      *(const double *)((const char *)rp + numopts[i].off));
                continue;
            }
            numopt_show(&numopts[i], rp, v, sizeof v);
            caimg_h5_param(f, numopts[i].name, "%s", v);
        }
        if (rp->stim_mode != CAIMG_SIM_STIM_NONE) {
            caimg_h5_param(f, "stim-size", "%zux%zu", rp->stim_h, rp->stim_w);
            char sf[256];
            int k = 0;
            for (size_t j = 0; j < rp->grating_sf_n && k < (int)sizeof sf - 32; j++)
                k += snprintf(sf + k, sizeof sf - (size_t)k, "%s%.17g", j ? "," : "", rp->grating_sf[j]);
            caimg_h5_param(f, "grating-sf", "%s", sf);
            caimg_h5_param(f, "order", "%s", rp->stim_random ? "random" : "fixed");
        }
        caimg_h5_param(f, "dtype", "%s", dtype_name);
        caimg_h5_param(f, "deflate", "%ld", deflate);
        if (shifts_path) {
            caimg_h5_param(f, "shifts", "%s", shifts_path);
            caimg_h5_add_input(f, shifts_path, 0);
        }
        if (p.stim_mode == CAIMG_SIM_STIM_USER) caimg_h5_add_input(f, stim_arg, 0);
    }
    if (mtif) {
        caimg_tiff_wopts wo;
        caimg_tiff_wopts_init(&wo, store);
        wo.fs = rp->fs;
        wo.pixel_um = rp->pixel_um;
        tw = caimg_tiff_writer_create(mtif->path, X, Y, T, &wo);
        if (!tw) { rc = CAIMG_EIO; goto fail; }
    }
    if (h5) {
        size_t inner[2] = {Y, X};
        hs = caimg_h5_stream_create(h5, "/movie", store, 3, inner, (int)deflate, T);
        if (!hs) { rc = CAIMG_EIO; goto fail; }
    }
    /* Frames in chunks: generated in parallel, written from this thread
     * (HDF5 is not thread-safe); memory is a chunk, whatever T is. */
    size_t chunk = (16u << 20) / (Y * X * sizeof(float));
    if (chunk < 1) chunk = 1;
    if (chunk > 64) chunk = 64;
    buf = malloc(chunk * Y * X * sizeof(float));
    conv = malloc(Y * X * caimg_dtype_size(store));
    if (!buf || !conv) { rc = caimg_error(CAIMG_ENOMEM, "out of memory for %zu frames", chunk); goto fail; }
    size_t clamped = 0;
    for (size_t t0 = 0; (h5 || tw) && t0 < T; t0 += chunk) {
        size_t n = T - t0 < chunk ? T - t0 : chunk;
        rc = caimg_sim_frames(sim, t0, n, buf);
        if (!rc && hs) rc = caimg_h5_stream_write(hs, buf, CAIMG_DT_F32, n, tw ? NULL : &clamped);
        for (size_t k = 0; !rc && tw && k < n; k++) {
            clamped += caimg_from_float(buf + k * Y * X, conv, store, Y * X);
            rc = caimg_tiff_write_page(tw, conv);
        }
        if (!rc) rc = caimg_progress("simulating frames", (double)(t0 + n), (double)T);
        if (rc) goto fail;
    }
    if (hs) {
        rc = caimg_h5_stream_close(hs);
        hs = NULL;
        if (!rc) rc = caimg_h5_set_attr_double(h5, "/movie", "fs", rp->fs);
        if (!rc) rc = caimg_h5_set_attr_double(h5, "/movie", "pixel_um", rp->pixel_um);
        if (!rc) rc = caimg_h5_set_attr_string(h5, "/movie", "source_files", "caimg simulate");
        if (rc) goto fail;
    }
    if (clamped)
        caimg_warn("%zu samples were outside the range of %s and were clamped (lower --gain or "
                   "--offset, or use --dtype float32)", clamped, caimg_dtype_name(store));
    if (truth) {
        rc = caimg_sim_write_truth(sim, truth_in_movie ? h5 : th5);
        if (rc) goto fail;
    }
    if (stim_out) {
        const caimg_stimset *st = tr->stimuli;
        caimg_tiff_wopts wo;
        caimg_tiff_wopts_init(&wo, CAIMG_DT_F32);
        wo.imagej = 0;
        sw = caimg_tiff_writer_create(stim_out, st->w, st->h, st->n, &wo);
        if (!sw) { rc = CAIMG_EIO; goto fail; }
        for (size_t k = 0; !rc && k < st->n; k++) rc = caimg_tiff_write_page(sw, st->images + k * st->h * st->w);
        if (rc) goto fail;
    }
    if (sched_out) {
        so = caimg_outfile_open(sched_out);
        if (!so) { rc = CAIMG_EIO; goto fail; }
        rc = caimg_schedule_write_tsv(caimg_outfile_fp(so), tr->schedule, tr->npres);
        if (rc) goto fail;
    }

    /* Commit everything; if one commit fails, remove what was committed. */
    const char *done_paths[5];
    int ndone = 0;
    if (th5) {
        rc = caimg_h5_commit(th5);
        th5 = NULL;
        if (rc) goto fail;
        done_paths[ndone++] = truth;
    }
    if (h5) {
        rc = caimg_h5_commit(h5);
        h5 = NULL;
        if (rc) goto undo;
        done_paths[ndone++] = mh5->path;
    }
    if (tw) {
        rc = caimg_tiff_writer_close(tw);
        tw = NULL;
        if (rc) goto undo;
        done_paths[ndone++] = mtif->path;
    }
    if (sw) {
        rc = caimg_tiff_writer_close(sw);
        sw = NULL;
        if (rc) goto undo;
        done_paths[ndone++] = stim_out;
    }
    if (so) {
        rc = caimg_outfile_commit(so);
        so = NULL;
        if (rc) goto undo;
        done_paths[ndone++] = sched_out;
    }
    if (c.verbose)
        cmd_note(&c, "%zu frames of %zux%zu, %zu neurons, %.3g photons per pixel, median SNR %s",
                 T, Y, X, tr->neurons, tr->photons, rp->snr > 0 ? "as requested" : "see /truth/snr");
    rc = 0;
    goto done;
undo:
    for (int i = 0; i < ndone; i++) unlink(done_paths[i]);
fail:
    if (hs) caimg_h5_stream_close(hs);
    caimg_h5_close(h5);
    caimg_h5_close(th5);
    caimg_tiff_writer_abort(tw);
    caimg_tiff_writer_abort(sw);
    caimg_outfile_abort(so);
    rc = cmd_fail(&c, rc);
done:
    free(buf);
    free(conv);
    free(shifts);
    free(user_img);
    caimg_sim_free(sim);
    cmd_end(&c);
    return rc;
}
