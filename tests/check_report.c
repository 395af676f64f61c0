/* check_report.c -- the HTML report shows each stage's results when present
 * and is well formed.
 *
 * Copyright (C) 2026 the caimg authors.  GPL-3.0-or-later.
 */
#include <config.h>

#include <math.h>
#include <stdint.h>

#include "caimg/caimg.h"
#include "testutil.h"

/* A pipeline result with every group the report knows, small. */
static void make_result(const char *path)
{
    enum { T = 300, Y = 32, X = 40, N = 3 };
    caimg_h5 *f = caimg_h5_create(path, "deconv", "caimg deconv dff.h5 -o spikes.h5");
    ck_assert_ptr_nonnull(f);
    static float movie[T * Y * X], shifts[T * 2], corr[T], tr[N * T];
    static int32_t labels[Y * X];
    for (size_t i = 0; i < (size_t)T * Y * X; i++) movie[i] = (float)(i % 97);
    size_t dm[3] = {T, Y, X};
    ck_assert_int_eq(caimg_h5_write(f, "/movie", CAIMG_DT_F32, 3, dm, movie), 0);
    for (int t = 0; t < T; t++) {
        shifts[2 * t] = (float)sin(t * 0.05);
        shifts[2 * t + 1] = (float)cos(t * 0.03);
        corr[t] = 0.9f;
    }
    size_t ds[2] = {T, 2}, dt[1] = {T};
    ck_assert_int_eq(caimg_h5_write(f, "/mc/shifts", CAIMG_DT_F32, 2, ds, shifts), 0);
    ck_assert_int_eq(caimg_h5_write(f, "/mc/corr", CAIMG_DT_F32, 1, dt, corr), 0);
    ck_assert_int_eq(caimg_h5_set_attr_double(f, "/mc", "crispness_before", 1.0), 0);
    ck_assert_int_eq(caimg_h5_set_attr_double(f, "/mc", "crispness_after", 1.5), 0);
    for (int y = 0; y < Y; y++)
        for (int x = 0; x < X; x++)
            for (int k = 0; k < N; k++)
                if (hypot(y - 10.0 - 5 * k, x - 8.0 - 10 * k) < 3.5) labels[y * X + x] = k + 1;
    size_t dl[2] = {Y, X};
    ck_assert_int_eq(caimg_h5_write(f, "/roi/labels", CAIMG_DT_I32, 2, dl, labels), 0);
    uint8_t isc[N] = {1, 0, 1};
    size_t dn[1] = {N};
    ck_assert_int_eq(caimg_h5_write(f, "/roi/iscell", CAIMG_DT_U8, 1, dn, isc), 0);
    double snr[N] = {5, 9, 3};
    ck_assert_int_eq(caimg_h5_write(f, "/roi/stats/snr", CAIMG_DT_F64, 1, dn, snr), 0);
    for (int i = 0; i < N * T; i++) tr[i] = (float)(100 + 10 * sin(i * 0.1));
    size_t dtr[2] = {N, T};
    ck_assert_int_eq(caimg_h5_write(f, "/roi/F", CAIMG_DT_F32, 2, dtr, tr), 0);
    ck_assert_int_eq(caimg_h5_write(f, "/dff/dff", CAIMG_DT_F32, 2, dtr, tr), 0);
    ck_assert_int_eq(caimg_h5_write(f, "/deconv/spikes", CAIMG_DT_F32, 2, dtr, tr), 0);
    ck_assert_int_eq(caimg_h5_set_attr_double(f, "/roi", "fs", 30.0), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
}

/* A model with its held-out evaluation and robustness curves. */
static void make_model(const char *path)
{
    enum { N = 3, S = 4, P = 8, E = 5, B = 3 };
    caimg_h5 *f = caimg_h5_create(path, "attack", "caimg attack model.h5 -o robustness.h5");
    ck_assert_ptr_nonnull(f);
    double corr[N] = {0.9, 0.2, 0.5}, curve[E] = {0.1, 0.3, 0.5, 0.55, 0.5};
    size_t dn[1] = {N}, de[1] = {E}, ds[1] = {S}, dp[1] = {P}, dpn[2] = {P, N}, dsn[2] = {S, N};
    ck_assert_int_eq(caimg_h5_write(f, "/fit/eval/corr_avg", CAIMG_DT_F64, 1, dn, corr), 0);
    ck_assert_int_eq(caimg_h5_set_attr_double(f, "/fit/eval", "mean_corr_avg", 0.5333), 0);
    ck_assert_int_eq(caimg_h5_set_attr_string(f, "/fit", "loss", "poisson"), 0);
    ck_assert_int_eq(caimg_h5_write(f, "/fit/curve/val_corr", CAIMG_DT_F64, 1, de, curve), 0);
    ck_assert_int_eq(caimg_h5_write(f, "/fit/curve/train_loss", CAIMG_DT_F64, 1, de, curve), 0);
    int32_t stim[S] = {3, 5, 7, 9}, pstim[P] = {3, 5, 7, 9, 3, 5, 7, 9};
    float pred[S * N], resp[P * N];
    for (int i = 0; i < S * N; i++) pred[i] = (float)i;
    for (int i = 0; i < P * N; i++) resp[i] = (float)(i % (S * N)) + (i < S * N ? 1.0f : -1.0f);
    ck_assert_int_eq(caimg_h5_write(f, "/fit/test/stimulus", CAIMG_DT_I32, 1, ds, stim), 0);
    ck_assert_int_eq(caimg_h5_write(f, "/fit/test/pred", CAIMG_DT_F32, 2, dsn, pred), 0);
    ck_assert_int_eq(caimg_h5_write(f, "/fit/presentation_stimulus", CAIMG_DT_I32, 1, dp, pstim), 0);
    ck_assert_int_eq(caimg_h5_write(f, "/fit/responses", CAIMG_DT_F32, 2, dpn, resp), 0);
    double budget[B] = {0, 0.01, 0.02}, rel[B] = {0, 0.4, 0.9}, acc[B] = {1, 0.7, 0.3};
    size_t db[1] = {B};
    const char *curves[] = {"/attack/curves/pgd-linf-response", "/attack/curves/fgsm-linf-response"};
    for (int k = 0; k < 2; k++) {
        char n[128];
        snprintf(n, sizeof n, "%s/budget", curves[k]);
        ck_assert_int_eq(caimg_h5_write(f, n, CAIMG_DT_F64, 1, db, budget), 0);
        snprintf(n, sizeof n, "%s/rel_change", curves[k]);
        ck_assert_int_eq(caimg_h5_write(f, n, CAIMG_DT_F64, 1, db, rel), 0);
        snprintf(n, sizeof n, "%s/decode_acc", curves[k]);
        ck_assert_int_eq(caimg_h5_write(f, n, CAIMG_DT_F64, 1, db, acc), 0);
        ck_assert_int_eq(caimg_h5_set_attr_string(f, curves[k], "budget_type", "linf"), 0);
    }
    ck_assert_int_eq(caimg_h5_commit(f), 0);
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    char *s = malloc((size_t)n + 1);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, fp), (size_t)n);
    s[n] = '\0';
    fclose(fp);
    return s;
}

static int count(const char *s, const char *needle)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, needle)); p++) n++;
    return n;
}

/* Occurrences of a word printed as a number (not inside another word such
 * as "provenance"). */
static int count_number_word(const char *s, const char *w)
{
    int n = 0;
    size_t k = strlen(w);
    for (const char *p = s; (p = strstr(p, w)); p++) {
        int before = p > s && ((p[-1] >= 'a' && p[-1] <= 'z') || (p[-1] >= 'A' && p[-1] <= 'Z'));
        int after = (p[k] >= 'a' && p[k] <= 'z') || (p[k] >= 'A' && p[k] <= 'Z');
        n += !before && !after;
    }
    return n;
}

START_TEST(all_sections)
{
    char *d = tu_tmpdir();
    const char *in = tu_path(d, "spikes.h5"), *out = tu_path(d, "r.html");
    make_result(in);
    ck_assert_int_eq(caimg_report_write(&in, 1, out, NULL), 0);
    char *h = slurp(out);
    /* CAIMG_REPORT_SAMPLE=FILE keeps a copy to look at in a browser. */
    const char *keep = getenv("CAIMG_REPORT_SAMPLE");
    if (keep) {
        FILE *fp = fopen(keep, "w");
        if (fp) { fputs(h, fp); fclose(fp); }
    }
    for (const char *id = "summary\0images\0motion\0traces\0stats\0provenance\0"; *id; id += strlen(id) + 1) {
        char tag[64];
        snprintf(tag, sizeof tag, "<section id='%s'>", id);
        ck_assert_msg(strstr(h, tag), "section %s missing", id);
    }
    /* Every ROI outlined, cells and rejected ROIs told apart. */
    ck_assert_int_eq(count(h, "</title></path>"), 3);
    ck_assert_int_eq(count(h, "stroke='#5fa8d3'"), 1);
    /* The cell with the highest SNR among classified cells comes first:
     * ROI 0 (SNR 5) before ROI 2 (SNR 3); ROI 1 (rejected) last. */
    char *a = strstr(h, "<figcaption>ROI 0"), *b = strstr(h, "<figcaption>ROI 2"),
         *c = strstr(h, "<figcaption>ROI 1");
    ck_assert(a && b && c && a < b && b < c);
    ck_assert_ptr_nonnull(strstr(h, "+50.0%"));        /* crispness change */
    ck_assert_ptr_nonnull(strstr(h, "data:image/png;base64,iVBORw0KGgo"));  /* PNG signature */
    /* Balanced markup. */
    ck_assert_int_eq(count(h, "<svg"), count(h, "</svg>"));
    ck_assert_int_eq(count(h, "<section"), count(h, "</section>"));
    ck_assert_int_eq(count(h, "<figure>"), count(h, "</figure>"));
    ck_assert_int_eq(count_number_word(h, "nan"), 0);
    ck_assert_int_eq(count_number_word(h, "inf"), 0);
    free(h);
    tu_rmdir(d);
}
END_TEST

START_TEST(model_and_robustness)
{
    char *d = tu_tmpdir();
    const char *in[2] = {tu_path(d, "spikes.h5"), tu_path(d, "robustness.h5")};
    const char *out = tu_path(d, "r.html");
    make_result(in[0]);
    make_model(in[1]);
    ck_assert_int_eq(caimg_report_write(in, 2, out, NULL), 0);
    char *h = slurp(out);
    ck_assert_ptr_nonnull(strstr(h, "<section id='model'>"));
    ck_assert_ptr_nonnull(strstr(h, "mean 0.533 over 3 neurons"));
    /* The best-predicted neurons first: 0 (r = 0.9), then 2, then 1. */
    char *a = strstr(h, "Model neuron 0: r = 0.90"), *b = strstr(h, "Model neuron 2: r = 0.50"),
         *c = strstr(h, "Model neuron 1: r = 0.20");
    ck_assert(a && b && c && a < b && b < c);
    ck_assert_ptr_nonnull(strstr(h, "<section id='robustness'>"));
    /* Two curves in each of the two charts, with their names as legends. */
    ck_assert_int_eq(count(h, ">pgd-linf-response</text>"), 2);
    ck_assert_int_eq(count(h, ">fgsm-linf-response</text>"), 2);
    /* Provenance of both inputs. */
    ck_assert_ptr_nonnull(strstr(h, "00_deconv"));
    ck_assert_ptr_nonnull(strstr(h, "00_attack"));
    ck_assert_int_eq(count(h, "<svg"), count(h, "</svg>"));
    free(h);
    tu_rmdir(d);
}
END_TEST

START_TEST(movie_only_and_errors)
{
    char *d = tu_tmpdir();
    const char *in = tu_path(d, "raw.h5"), *out = tu_path(d, "r.html");
    caimg_h5 *f = caimg_h5_create(in, "import", "");
    float mv[2 * 4 * 5] = {0};
    mv[7] = 5;
    size_t dm[3] = {2, 4, 5};
    ck_assert_int_eq(caimg_h5_write(f, "/movie", CAIMG_DT_F32, 3, dm, mv), 0);
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    ck_assert_int_eq(caimg_report_write(&in, 1, out, NULL), 0);
    char *h = slurp(out);
    ck_assert_ptr_nonnull(strstr(h, "Mean of the movie"));
    ck_assert_ptr_null(strstr(h, "<section id='motion'>"));
    free(h);
    /* A caimg file with nothing to show is an error, and no page is left. */
    const char *empty = tu_path(d, "empty.h5"), *out2 = tu_path(d, "e.html");
    f = caimg_h5_create(empty, "x", "");
    ck_assert_int_eq(caimg_h5_commit(f), 0);
    ck_assert_int_eq(caimg_report_write(&empty, 1, out2, NULL), CAIMG_EFORMAT);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "holds no results"));
    ck_assert_int_ne(access(out2, F_OK), 0);
    const char *missing = tu_path(d, "missing.h5");
    ck_assert_int_ne(caimg_report_write(&missing, 1, out2, NULL), 0);
    ck_assert_ptr_nonnull(strstr(caimg_errmsg(), "missing.h5"));
    ck_assert_int_eq(tu_count(d, ".tmp."), 0);
    tu_rmdir(d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("report");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, all_sections);
    tcase_add_test(tc, model_and_robustness);
    tcase_add_test(tc, movie_only_and_errors);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
